"""Filter language for the tables: fuzzy text, `-l` label selectors, problems only.

`/llama prod` keeps rows whose "namespace/name model" fuzzily contains every word;
`/-l team=nlp,tier!=canary` applies a Kubernetes label selector; both may be combined
(`/llama -l team=nlp`). Pure functions, no Textual.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.model import ModelDeployment, ProbeHealth, RolloutState

Requirement = Callable[[dict[str, str]], bool]


class SelectorError(ValueError):
    """The label selector could not be parsed."""


def fuzzy_match(query: str, haystack: str) -> bool:
    """True when the characters of `query` appear in order in `haystack` (case-insensitive)."""
    pos = 0
    hay = haystack.lower()
    for ch in query.lower():
        pos = hay.find(ch, pos)
        if pos < 0:
            return False
        pos += 1
    return True


_SET_RE = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_CMP_RE = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*$")


def _split_selector(selector: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_selector(selector: str) -> list[Requirement]:
    """Parse a label selector (=, ==, !=, in, notin, key, !key) into predicates."""
    reqs: list[Requirement] = []
    for part in _split_selector(selector):
        if m := _SET_RE.match(part):
            key, op, raw = m.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            if op == "in":
                reqs.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                reqs.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := _CMP_RE.match(part):
            key, op, value = m.groups()
            if op == "!=":
                reqs.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                reqs.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := _EXISTS_RE.match(part):
            neg, key = m.groups()
            if neg:
                reqs.append(lambda labels, k=key: k not in labels)
            else:
                reqs.append(lambda labels, k=key: k in labels)
        else:
            raise SelectorError(f"cannot parse label selector term {part.strip()!r}")
    return reqs


def is_problem(d: ModelDeployment) -> bool:
    """Stalled rollouts, unready pods and crash loops."""
    return (
        d.rollout_state is RolloutState.STALLED
        or d.probe_health in (ProbeHealth.UNREADY, ProbeHealth.CRASHLOOP)
        or d.unready_pods > 0
        or d.crashlooping_pods > 0
    )


@dataclass(frozen=True)
class RowFilter:
    """A parsed filter; `matches` is applied to every record on change."""

    text: str = ""
    words: tuple[str, ...] = ()
    selector: str = ""
    requirements: tuple[Requirement, ...] = field(default=(), compare=False)
    problems_only: bool = False

    @classmethod
    def parse(cls, text: str, problems_only: bool = False) -> RowFilter:
        text = text.strip()
        words: list[str] = []
        selector = ""
        tokens = text.split()
        i = 0
        while i < len(tokens):
            if tokens[i] == "-l" and i + 1 < len(tokens):
                selector = " ".join(tokens[i + 1 :])
                break
            if tokens[i].startswith("-l") and len(tokens[i]) > 2:
                selector = " ".join([tokens[i][2:], *tokens[i + 1 :]])
                break
            words.append(tokens[i])
            i += 1
        reqs = tuple(parse_selector(selector)) if selector else ()
        return cls(text, tuple(words), selector, reqs, problems_only)

    @property
    def active(self) -> bool:
        return bool(self.words or self.requirements or self.problems_only)

    def matches(self, record: object) -> bool:
        if self.problems_only and not (isinstance(record, ModelDeployment) and is_problem(record)):
            return False
        if self.words:
            hay = f"{record.namespace}/{record.name} {getattr(record, 'model', '')}"  # type: ignore[attr-defined]
            if not all(fuzzy_match(w, hay) for w in self.words):
                return False
        if self.requirements:
            labels = getattr(record, "labels", None) or {}
            if not all(req(labels) for req in self.requirements):
                return False
        return True
