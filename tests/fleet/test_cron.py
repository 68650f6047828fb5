"""fleet.cron: the CronJob controller's schedule semantics (robfig/cron v3), pure.

The daylight-saving cases are robfig/cron's own test table (spec_test.go, TestNext), so a
schedule here fires when the controller would start the Job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleet.cron import next_run, parse


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


def runs(expr: str, after: str, n: int, tz: str | None = None) -> list[str]:
    """The next `n` runs as ISO strings in UTC (compact, for readable expectations)."""
    out, cur = [], t(after)
    for _ in range(n):
        nxt = next_run(expr, cur, tz)
        assert nxt is not None, expr
        out.append(nxt.astimezone(UTC).strftime("%Y-%m-%d %H:%M %a"))
        cur = nxt
    return out


# --- basics ---------------------------------------------------------------------------------------

def test_every_minute_is_strictly_after():
    assert next_run("* * * * *", t("2026-12-01T12:00:00Z")) == t("2026-12-01T12:01:00Z")
    assert next_run("* * * * *", t("2026-12-01T12:00:59.9Z")) == t("2026-12-01T12:01:00Z")


def test_result_is_aware_utc_and_naive_after_is_utc():
    got = next_run("30 3 * * *", datetime(2026, 12, 1, 4, 0))
    assert got == t("2026-12-02T03:30:00Z") and got.tzinfo is UTC


def test_lists_ranges_steps():
    assert runs("0,30 9-10 * * *", "2026-12-01T08:00:00Z", 5) == [
        "2026-12-01 09:00 Tue", "2026-12-01 09:30 Tue", "2026-12-01 10:00 Tue",
        "2026-12-01 10:30 Tue", "2026-12-02 09:00 Wed"]
    assert runs("*/20 * * * *", "2026-12-01T08:05:00Z", 3) == [
        "2026-12-01 08:20 Tue", "2026-12-01 08:40 Tue", "2026-12-01 09:00 Tue"]
    assert runs("10-30/10 1 * * *", "2026-12-01T00:00:00Z", 4) == [
        "2026-12-01 01:10 Tue", "2026-12-01 01:20 Tue", "2026-12-01 01:30 Tue",
        "2026-12-02 01:10 Wed"]
    # robfig: "N/S" is "N-max/S"
    assert runs("50/5 * * * *", "2026-12-01T00:00:00Z", 3) == [
        "2026-12-01 00:50 Tue", "2026-12-01 00:55 Tue", "2026-12-01 01:50 Tue"]


def test_names_any_case_and_sunday_as_0_or_7():
    assert runs("0 6 * Jan-MAR mon-fri", "2026-12-31T00:00:00Z", 2) == [
        "2027-01-01 06:00 Fri", "2027-01-04 06:00 Mon"]
    assert next_run("0 0 * * 0", t("2026-12-01T00:00:00Z")) == t("2026-12-06T00:00:00Z")
    assert next_run("0 0 * * 7", t("2026-12-01T00:00:00Z")) == t("2026-12-06T00:00:00Z")
    assert next_run("0 0 * * SUN", t("2026-12-01T00:00:00Z")) == t("2026-12-06T00:00:00Z")
    assert next_run("0 0 * * 5-7", t("2026-12-01T00:00:00Z")) == t("2026-12-04T00:00:00Z")


@pytest.mark.parametrize(("expr", "want"), [
    ("@hourly", "2026-12-01T13:00:00Z"),
    ("@daily", "2026-12-02T00:00:00Z"),
    ("@midnight", "2026-12-02T00:00:00Z"),
    ("@weekly", "2026-12-06T00:00:00Z"),  # Sunday
    ("@monthly", "2027-01-01T00:00:00Z"),
    ("@yearly", "2027-01-01T00:00:00Z"),
    ("@annually", "2027-01-01T00:00:00Z"),
])
def test_descriptors(expr, want):
    assert next_run(expr, t("2026-12-01T12:34:00Z")) == t(want)


def test_month_ends_and_leap_days():
    assert runs("0 0 31 * *", "2026-12-01T00:00:00Z", 3) == [
        "2026-12-31 00:00 Thu", "2027-01-31 00:00 Sun", "2027-03-31 00:00 Wed"]
    assert next_run("0 0 29 2 *", t("2026-03-01T00:00:00Z")) == t("2028-02-29T00:00:00Z")
    # 2100 is not a leap year: eight years from 2096 to 2104
    assert next_run("0 0 29 2 *", t("2096-03-01T00:00:00Z")) == t("2104-02-29T00:00:00Z")
    assert next_run("0 0 30 2 *", t("2026-01-01T00:00:00Z")) is None  # never


# --- day-of-month / day-of-week: the Vixie OR rule ----------------------------------------------

def test_both_day_fields_restricted_means_either():
    # the 13th, or any Friday: Fri 4th, Fri 11th, Sun 13th, Fri 18th
    assert runs("0 0 13 * 5", "2026-12-01T00:00:00Z", 4) == [
        "2026-12-04 00:00 Fri", "2026-12-11 00:00 Fri", "2026-12-13 00:00 Sun",
        "2026-12-18 00:00 Fri"]


def test_one_day_field_star_means_only_the_other():
    assert runs("0 0 13 * *", "2026-12-01T00:00:00Z", 2) == [
        "2026-12-13 00:00 Sun", "2027-01-13 00:00 Wed"]
    assert runs("0 0 * * 5", "2026-12-01T00:00:00Z", 2) == [
        "2026-12-04 00:00 Fri", "2026-12-11 00:00 Fri"]
    assert runs("0 0 ? * 5", "2026-12-01T00:00:00Z", 1) == ["2026-12-04 00:00 Fri"]


def test_a_stepped_star_is_a_restriction_like_robfig():
    # "*/2" in day-of-month is not unrestricted (robfig clears the star bit for step > 1):
    # odd days OR Mondays
    assert runs("0 0 */2 * 1", "2026-12-01T00:00:00Z", 4) == [
        "2026-12-03 00:00 Thu", "2026-12-05 00:00 Sat", "2026-12-07 00:00 Mon",
        "2026-12-09 00:00 Wed"]
    # "*/1" stays unrestricted: only Mondays
    assert runs("0 0 */1 * 1", "2026-12-01T00:00:00Z", 1) == ["2026-12-07 00:00 Mon"]


# --- time zones --------------------------------------------------------------------------------

def test_spec_time_zone_and_prefixes():
    after = t("2026-12-01T00:00:00Z")
    want = t("2026-12-01T02:00:00Z")  # 03:00 in Berlin (UTC+1 in winter)
    assert next_run("0 3 * * *", after, "Europe/Berlin") == want
    assert next_run("CRON_TZ=Europe/Berlin 0 3 * * *", after) == want
    assert next_run("TZ=Europe/Berlin 0 3 * * *", after) == want
    assert next_run("0 3 * * *", after, None) == t("2026-12-01T03:00:00Z")
    # summer time: UTC+2
    assert next_run("0 3 * * *", t("2026-07-01T00:00:00Z"), "Europe/Berlin") == t(
        "2026-07-01T01:00:00Z")
    # half-hour zone
    assert next_run("0 9 * * *", after, "Asia/Kolkata") == t("2026-12-01T03:30:00Z")


def test_after_in_another_offset_is_the_same_instant():
    plus2 = timezone(timedelta(hours=2))
    assert next_run("0 * * * *", datetime(2026, 12, 1, 14, 30, tzinfo=plus2)) == t(
        "2026-12-01T13:00:00Z")


NY = "America/New_York"
# robfig/cron spec_test.go TestNext: "TZ=America/New_York 0 <min> <hour> ..." (a seconds field)
ROBFIG_DST = [
    # spring forward, 2am EST -> 3am EDT: a time in the gap does not run that day
    ("2012-03-11T00:00:00-05:00", "30 2 11 Mar *", "2013-03-11T02:30:00-04:00"),
    ("2012-03-11T00:00:00-05:00", "0 * * * *", "2012-03-11T01:00:00-05:00"),
    ("2012-03-11T01:00:00-05:00", "0 * * * *", "2012-03-11T03:00:00-04:00"),
    ("2012-03-11T03:00:00-04:00", "0 * * * *", "2012-03-11T04:00:00-04:00"),
    ("2012-03-11T04:00:00-04:00", "0 * * * *", "2012-03-11T05:00:00-04:00"),
    ("2012-03-11T00:00:00-05:00", "0 1 * * *", "2012-03-11T01:00:00-05:00"),
    ("2012-03-11T01:00:00-05:00", "0 1 * * *", "2012-03-12T01:00:00-04:00"),
    ("2012-03-11T00:00:00-05:00", "0 2 * * *", "2012-03-12T02:00:00-04:00"),
    # fall back, 2am EDT -> 1am EST: a time in the repeated hour runs twice
    ("2012-11-04T00:00:00-04:00", "30 2 04 Nov *", "2012-11-04T02:30:00-05:00"),
    ("2012-11-04T01:45:00-04:00", "30 1 04 Nov *", "2012-11-04T01:30:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 * * * *", "2012-11-04T01:00:00-04:00"),
    ("2012-11-04T01:00:00-04:00", "0 * * * *", "2012-11-04T01:00:00-05:00"),
    ("2012-11-04T01:00:00-05:00", "0 * * * *", "2012-11-04T02:00:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-04:00"),
    ("2012-11-04T01:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-05:00"),
    ("2012-11-04T01:00:00-05:00", "0 1 * * *", "2012-11-05T01:00:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 2 * * *", "2012-11-04T02:00:00-05:00"),
    ("2012-11-04T02:00:00-05:00", "0 2 * * *", "2012-11-05T02:00:00-05:00"),
]


@pytest.mark.parametrize(("after", "expr", "want"), ROBFIG_DST)
def test_daylight_saving_like_robfig(after, expr, want):
    assert next_run(f"TZ={NY} {expr}", t(after)) == t(want)
    assert next_run(expr, t(after), NY) == t(want)


def test_fold_is_walked_in_real_time_order():
    """Every 15 minutes across the fall-back: 01:45 EDT, then 01:00 EST again, no skips."""
    got = runs("*/15 * * * *", "2012-11-04T01:30:00-04:00", 6, NY)
    assert got == ["2012-11-04 05:45 Sun", "2012-11-04 06:00 Sun", "2012-11-04 06:15 Sun",
                   "2012-11-04 06:30 Sun", "2012-11-04 06:45 Sun", "2012-11-04 07:00 Sun"]
    # and from inside the first pass, the next is still in the first pass
    assert next_run("*/15 * * * *", t("2012-11-04T01:10:00-04:00"), NY) == t(
        "2012-11-04T01:15:00-04:00")


def test_spring_gap_every_15_minutes_skips_only_the_missing_hour():
    got = runs("*/15 * * * *", "2026-03-08T01:40:00-05:00", 3, NY)
    assert got == ["2026-03-08 06:45 Sun", "2026-03-08 07:00 Sun", "2026-03-08 07:15 Sun"]
    assert next_run("*/15 * * * *", t("2026-03-08T01:45:00-05:00"), NY) == t(
        "2026-03-08T03:00:00-04:00")


# --- invalid -------------------------------------------------------------------------------------

@pytest.mark.parametrize("expr", [
    "", "   ", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
    "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "1,,2 * * * *",
    "-1 * * * *", "* * * foo *", "@every 1h", "@often", "1.5 * * * *",
    "TZ=Nowhere/City 0 * * * *", "CRON_TZ=", "TZ=Europe/Berlin",
])
def test_invalid_is_none(expr):
    assert parse(expr) is None
    assert next_run(expr, t("2026-12-01T00:00:00Z")) is None


def test_invalid_zone_is_none():
    assert next_run("0 * * * *", t("2026-12-01T00:00:00Z"), "Not/AZone") is None
    assert next_run("0 * * * *", t("2026-12-01T00:00:00Z"), "../etc/passwd") is None


def test_a_year_of_hourly_runs_is_fast_and_ordered():
    import time

    cur, seen, end = t("2026-01-01T00:00:00Z"), 0, t("2026-12-31T00:00:00Z")
    t0 = time.monotonic()
    while (nxt := next_run("17 * * * *", cur, "Europe/Berlin")) < end:
        assert nxt > cur
        cur, seen = nxt, seen + 1
    # one run per real hour: the spring gap's 02:17 is skipped, the autumn fold's runs twice
    assert seen == 364 * 24
    assert time.monotonic() - t0 < 10


def _brute(expr: str, after: datetime, tz: str) -> datetime | None:
    """The definition, minute by minute over real instants: the first whose wall clock
    matches (so a skipped wall time never matches and a repeated one matches twice)."""
    from zoneinfo import ZoneInfo

    s = parse(expr, tz)
    zone = ZoneInfo(tz)
    cur = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(60 * 24 * 8):
        w = cur.astimezone(zone)
        if (w.minute in s.minutes and w.hour in s.hours and w.month in s.months
                and s.day_matches(w)):
            return cur
        cur += timedelta(minutes=1)
    return None


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe"])
def test_matches_the_minute_by_minute_definition_around_transitions(tz):
    """Random schedules from random instants near the 2026 transitions (Lord Howe shifts by
    30 minutes) agree with the brute-force definition."""
    import random

    rnd = random.Random(tz)
    transitions = {"America/New_York": ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"],
                   "Europe/Berlin": ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"],
                   "Australia/Lord_Howe": ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"]}[tz]
    minutes = ["*", "0", "30", "*/15", "5,35", "10-20", "45/5", "59"]
    hours = ["*", "1", "2", "1-3", "*/2", "0,2,3"]
    for _ in range(150):
        expr = f"{rnd.choice(minutes)} {rnd.choice(hours)} * * *"
        base = t(rnd.choice(transitions))
        after = base + timedelta(minutes=rnd.randint(-200, 200), seconds=rnd.choice([0, 30]))
        assert next_run(expr, after, tz) == _brute(expr, after, tz), (expr, after.isoformat())
