"""What to watch: every namespace when RBAC allows it, else the namespaces the user can read.

`resolve_scope` decides; `fleet ls` and the TUI build their `FleetCache` from its answer and say
its `reason` once. Rules:

- namespaces named on the command line (`-n a,b`, `-n a -n b`) are watched as given, no probing;
- without `-A` (`fleet ls`), the context's namespace, as kubectl does;
- otherwise one SelfSubjectAccessReview asks "may I list deployments.apps in all namespaces?".
  Allowed (or unknown, e.g. the API is away: the cache reports that itself): cluster-wide, as
  before. Denied: the namespaces of the config file (`fleet.config`), the context's namespace
  and, if the user may list namespaces, every namespace, each kept if an access review allows
  listing its Deployments. None left: `NoWatchableNamespace`, saying what to do.

What "may list" means is a `Listing`: model Deployments by default (the TUI, `fleet ls`,
`fleet undo-wave -A`); `fleet sweep ls -A` asks about its sweep-worker Jobs instead.

`forbidden_by_namespace` tells which resource types a cache could not read, per namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.api_client import Poster, Reader
from fleet.errors import FleetError, Forbidden, NotFound
from fleet.model import COMPONENT_LABEL, MODEL_SERVER_COMPONENT

# fleet.kube and fleet.ops load inside the functions: the TUI parses `-n` before its first
# frame, and `fleet.kube` (urllib3) is not needed for that

REVIEW_WORKERS = 8  # access reviews in flight at once while discovering
MAX_REVIEWED = 2000  # namespaces access-reviewed at most (a bigger cluster: name them)
FROM_CONFIG = "config file"
FROM_CONTEXT = "the context's namespace"
FROM_DISCOVERY = "discovered by access review"
DENIED_ALL = "cannot list deployments in all namespaces (RBAC)"


@dataclass(frozen=True)
class Listing:
    """The collection a user must be able to list for a namespace to count."""

    group_version: str = "apps/v1"
    resource: str = "deployments"
    label_selector: str = f"{COMPONENT_LABEL}={MODEL_SERVER_COMPONENT}"

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0]  # "" for the core group ("v1")

    def denied_all(self) -> str:
        return f"cannot list {self.resource} in all namespaces (RBAC)"


MODEL_DEPLOYMENTS = Listing()


class ScopeClient(Reader, Poster, Protocol):
    """What resolving a scope needs from `KubeClient`: access reviews (POST), the LIST probe
    and namespace discovery (a fake implements it in unit tests)."""


class NoWatchableNamespace(Forbidden):
    """Listing across all namespaces is forbidden and no namespace to watch instead was found."""


@dataclass(frozen=True)
class WatchScope:
    """The namespaces to watch (None: all of them, cluster-wide) and why, in one line to show
    once ("" when there is nothing to say: cluster-wide, or exactly what was asked for)."""

    namespaces: list[str] | None
    reason: str = ""
    cluster_wide: bool = False

    @property
    def fallback(self) -> bool:
        """True when RBAC made us watch a namespace list instead of the whole cluster."""
        return not self.cluster_wide and bool(self.reason)

    def label(self) -> str:
        """`all`, `team-a, team-b`, or `team-a, team-b (RBAC)` after a fallback."""
        if self.namespaces is None:
            return "all"
        names = ", ".join(self.namespaces)
        return f"{names} (RBAC)" if self.fallback else names


def parse_namespaces(values: Iterable[str] | None) -> list[str] | None:
    """`-n a,b -n c` -> ["a", "b", "c"] (order kept, duplicates and empty items dropped);
    None when no namespace was named."""
    out: list[str] = []
    for value in values or ():
        for name in value.split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out or None


def resolve_scope(
    client: ScopeClient,
    *,
    requested: Sequence[str] | None,
    all_namespaces: bool,
    context_namespace: str | None,
    configured: Sequence[str] | None,
    config_file: str | None = None,
    listing: Listing = MODEL_DEPLOYMENTS,
) -> WatchScope:
    """Decide what to watch (see the module docstring); may call the API (access reviews, one
    namespace LIST). `config_file` names the config file in the error's hint; `listing` is
    what the user must be able to list (model Deployments unless told otherwise)."""
    if requested:
        return WatchScope(list(requested))
    if not all_namespaces:
        return WatchScope([context_namespace or "default"])
    reviewer = _Reviewer(client, listing)
    try:
        if reviewer.can_list(None):
            return WatchScope(None, cluster_wide=True)
    except FleetError:
        # unknown (API away, credentials): watch cluster-wide as before; the cache retries and
        # reports the connection itself
        return WatchScope(None, cluster_wide=True)
    return _fallback(client, reviewer, context_namespace, configured or (), config_file)


def _fallback(client: ScopeClient, reviewer: _Reviewer, context_namespace: str | None,
              configured: Sequence[str], config_file: str | None) -> WatchScope:
    sources: dict[str, str] = {}  # namespace -> where it came from, first source wins
    for ns in configured:
        sources.setdefault(ns, FROM_CONFIG)
    if context_namespace:
        sources.setdefault(context_namespace, FROM_CONTEXT)
    notes: list[str] = []
    try:
        listed = sorted(item["metadata"]["name"]
                        for item in client.list_all("/api/v1/namespaces").get("items") or [])
    except Forbidden:
        listed = []
        notes.append("cannot list namespaces to discover others")
    if len(listed) > MAX_REVIEWED:
        notes.append(f"reviewed only the first {MAX_REVIEWED} of {len(listed)} namespaces")
        listed = listed[:MAX_REVIEWED]
    for ns in listed:
        sources.setdefault(ns, FROM_DISCOVERY)
    names = list(sources)
    with ThreadPoolExecutor(max_workers=max(1, min(REVIEW_WORKERS, len(names))),
                            thread_name_prefix="fleet-scope") as pool:
        allowed = dict(zip(names, pool.map(reviewer.can_list, names), strict=True))
    denied = [ns for ns in names if not allowed[ns] and sources[ns] != FROM_DISCOVERY]
    if denied:
        notes.insert(0, "no access to " + _by_source(denied, sources))
    watched = [ns for ns in names if allowed[ns]]
    if not watched:
        where = config_file or _default_config_file()
        detail = "; ".join(notes) or "no namespace allows it"
        raise NoWatchableNamespace(
            f"{reviewer.listing.denied_all()}, and no namespace to watch instead was found "
            f"({detail}): name them with -n NAMESPACE[,NAMESPACE...], or list them under "
            f"`namespaces:` in {where}", status=403, reason="Forbidden")
    reason = f"{reviewer.listing.denied_all()}; watching {_by_source(watched, sources)}"
    if notes:
        reason += f" ({'; '.join(notes)})"
    return WatchScope(sorted(watched), reason)


def _by_source(names: list[str], sources: dict[str, str]) -> str:
    """`a, b (config file), c (discovered by access review)`: grouped, in source order."""
    groups: dict[str, list[str]] = {}
    for ns in names:
        groups.setdefault(sources[ns], []).append(ns)
    order = (FROM_CONFIG, FROM_CONTEXT, FROM_DISCOVERY)
    return ", ".join(f"{', '.join(groups[s])} ({s})" for s in order if s in groups)


def _default_config_file() -> str:
    from fleet.config import config_path

    return str(config_path()[0])


class _Reviewer:
    """May the user list the `listing` in a namespace (None: all of them)? Asked with a
    SelfSubjectAccessReview; where those are not served or not allowed, with a LIST of one."""

    def __init__(self, client: ScopeClient, listing: Listing = MODEL_DEPLOYMENTS) -> None:
        self.client = client
        self.listing = listing
        self.reviews = True

    def can_list(self, namespace: str | None) -> bool:
        from fleet.kube import collection_path
        from fleet.ops import access

        what = self.listing
        if self.reviews:
            try:
                return access.can_i(self.client, "list", what.resource, namespace or "",
                                    group=what.group)[0]
            except (Forbidden, NotFound):
                self.reviews = False
        try:
            self.client.get(collection_path(what.group_version, what.resource, namespace),
                            {"limit": 1, "labelSelector": what.label_selector})
        except Forbidden:
            return False
        return True


def forbidden_by_namespace(cache: Any) -> dict[str | None, list[str]]:
    """Resource types (plurals, e.g. `cronjobs`) RBAC hides from a `FleetCache`, per namespace
    scope (None: a cluster-wide watch). Types the API does not serve (404) are not listed."""
    out: dict[str | None, set[str]] = {}
    for r in list(getattr(cache, "_reflectors", ())):
        message = r.forbidden or ""
        if message and "forbidden" in message.lower():
            out.setdefault(r.namespace, set()).add(r.res.plural)
    return {ns: sorted(kinds) for ns, kinds in out.items()}


def forbidden_lines(cache: Any) -> list[str]:
    """One line per namespace with forbidden types: `cronjobs forbidden in team-b (RBAC)`."""
    by_ns = forbidden_by_namespace(cache)
    return [f"{', '.join(by_ns[ns])} forbidden in {ns} (RBAC)"
            for ns in sorted(n for n in by_ns if n is not None)]
