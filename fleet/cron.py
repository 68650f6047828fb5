"""When a CronJob runs next: a small, pure evaluator of Kubernetes' 5-field cron schedules.

Why our own: neither the `kubernetes` package nor anything else in our environment has a cron
parser, and the next run is all `fleet` needs (no scheduling). The semantics are those of the
CronJob controller, which uses robfig/cron v3's standard parser:

- fields `minute hour day-of-month month day-of-week`; each a comma list of `*`, `N`, `A-B`,
  with an optional step `/S` (`*/S`, `A-B/S`, and `N/S` meaning `N-max/S`); `?` is `*`;
  month names `jan`..`dec` and day names `sun`..`sat` (any case); day-of-week
  `7` is also Sunday (Vixie cron; robfig rejects it, so the API server never stores it);
- `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`;
- the Vixie rule for the two day fields: when both are restricted, a day matches if *either*
  matches; a field counts as unrestricted when it is `*`/`?` (with no step above 1, as robfig);
- a `CRON_TZ=Zone` or `TZ=Zone` prefix, or `spec.timeZone` (the `tz` argument); otherwise UTC
  (the controller-manager's zone, UTC on every cluster we know);
- daylight saving time like robfig: a wall-clock time the clock skips does not run that day,
  a wall-clock time the clock passes twice runs twice.

`@every` and anything else invalid give None, never an exception.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (low, high, names) per field
_BOUNDS = ((0, 59, None), (0, 23, None), (1, 31, None), (1, 12, _MONTHS), (0, 7, _DAYS))
_YEARS = 9  # give up after this many years (robfig: 5; Feb 29 can be 8 years away)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]  # day of month
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_star: bool
    weekdays_star: bool
    tz: tzinfo

    def day_matches(self, d: datetime) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _field(text: str, low: int, high: int, names: dict[str, int] | None
           ) -> tuple[frozenset[int], bool]:
    """(values, unrestricted) of one field."""
    values: set[int] = set()
    star = False
    for part in text.split(","):
        rng, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(part)
            step = int(step_text)
        if rng in ("*", "?"):
            start, end = low, high
            star = star or step == 1
        elif "-" in rng:
            a, _, b = rng.partition("-")
            start, end = _number(a, names), _number(b, names)
        else:
            start = end = _number(rng, names)
            if slash:
                end = high
        if not low <= start <= end <= high:
            raise ValueError(part)
        values.update(range(start, end + 1, step))
    return frozenset(values), star


def parse(expr: str, tz: str | None = None) -> Schedule | None:
    """The parsed schedule, or None when `expr` (or the zone) is invalid."""
    text = (expr or "").strip()
    if text.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, text = text.partition(" ")
        tz = prefix.partition("=")[2]
        text = text.strip()
    try:
        zone: tzinfo = ZoneInfo(tz) if tz else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return None
    text = _DESCRIPTORS.get(text.lower(), text) if text.startswith("@") else text
    fields = text.split()
    if len(fields) != 5:
        return None
    try:
        parsed = [_field(f, lo, hi, names)
                  for f, (lo, hi, names) in zip(fields, _BOUNDS, strict=True)]
    except ValueError:
        return None
    (minutes, _), (hours, _), (days, dstar), (months, _), (weekdays, wstar) = parsed
    if 7 in weekdays:
        weekdays = weekdays - {7} | {0}
    return Schedule(minutes, hours, days, months, weekdays, dstar, wstar, zone)


def _next_wall(s: Schedule, t: datetime, limit: datetime) -> datetime | None:
    """The first naive wall-clock minute >= t that matches, or None past `limit`."""
    while t <= limit:
        if t.month not in s.months:
            year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
            t = datetime(year, month, 1)
            continue
        if not s.day_matches(t):
            t = datetime(t.year, t.month, t.day) + timedelta(days=1)
            continue
        if t.hour not in s.hours:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        later = [m for m in s.minutes if m >= t.minute]
        if not later:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        return t.replace(minute=min(later))
    return None


def _instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """The real instants (UTC) at which the clock of `zone` reads `wall`: none in a gap, two
    in a fold."""
    out = []
    for fold in (0, 1):
        local = wall.replace(tzinfo=zone, fold=fold)
        utc = local.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == wall and utc not in out:
            out.append(utc)
    return sorted(out)


def _first_after(s: Schedule, start: datetime, after: datetime, limit: datetime
                 ) -> datetime | None:
    """The earliest instant > `after` of the first matching wall time >= `start` that has one."""
    t = start
    while (wall := _next_wall(s, t, limit)) is not None:
        for instant in _instants(wall, s.tz):
            if instant > after:
                return instant
        t = wall + _MINUTE
    return None


def next_run(expr: str, after: datetime, tz: str | None = None) -> datetime | None:
    """The first time strictly after `after` at which `expr` fires (aware, UTC), or None if
    the schedule or zone is invalid or never fires within nine years. A naive `after` is UTC."""
    s = parse(expr, tz)
    if s is None:
        return None
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    after = after.astimezone(UTC)
    local = after.astimezone(s.tz)
    wall = local.replace(tzinfo=None, second=0, microsecond=0)
    limit = wall.replace(month=1, day=1, hour=0, minute=0) + timedelta(days=366 * _YEARS)
    best = _first_after(s, wall + _MINUTE, after, limit)
    # In the first pass of a fold (the clock is about to go back), the wall times just before
    # now come round again: the earliest of those may fire before `best`.
    first, second = _instants(wall, s.tz)[:1], _instants(wall, s.tz)[1:]
    if second and local.fold == 0 and first:
        shift = second[0] - first[0]
        alt = _first_after(s, wall - shift, after, wall)
        if alt is not None and (best is None or alt < best):
            best = alt
    return best
