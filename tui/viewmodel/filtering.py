"""Filter language for the tables: fuzzy text, `-l` label selectors, problems only.

`/llama prod` keeps rows whose "namespace/name model" fuzzily contains every word;
`/-l team=nlp,tier!=canary` applies a Kubernetes label selector; both may be combined
(`/llama -l team=nlp`). Pure functions, no Textual.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
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


def _value_in(key: str, values: set[str]) -> Requirement:
    return lambda labels: labels.get(key) in values


def _value_not_in(key: str, values: set[str]) -> Requirement:
    return lambda labels: labels.get(key) not in values


def _value_is(key: str, value: str) -> Requirement:
    return lambda labels: labels.get(key) == value


def _value_is_not(key: str, value: str) -> Requirement:
    return lambda labels: labels.get(key) != value


def _has(key: str) -> Requirement:
    return lambda labels: key in labels


def _has_not(key: str) -> Requirement:
    return lambda labels: key not in labels


def parse_selector(selector: str) -> list[Requirement]:
    """Parse a label selector (=, ==, !=, in, notin, key, !key) into predicates."""
    reqs: list[Requirement] = []
    for part in _split_selector(selector):
        if m := _SET_RE.match(part):
            key, op, raw = m.groups()
            values = {v.strip() for v in raw.split(",") if v.strip()}
            reqs.append(_value_in(key, values) if op == "in" else _value_not_in(key, values))
        elif m := _CMP_RE.match(part):
            key, op, value = m.groups()
            reqs.append(_value_is_not(key, value) if op == "!=" else _value_is(key, value))
        elif m := _EXISTS_RE.match(part):
            neg, key = m.groups()
            reqs.append(_has_not(key) if neg else _has(key))
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

    def matches(self, record: Any) -> bool:
        """`record`: a table's row (a ModelDeployment, TrainingJob, RetrainSchedule: its
        namespace, name, and model and labels where it has them)."""
        if self.problems_only and not (isinstance(record, ModelDeployment) and is_problem(record)):
            return False
        if self.words:
            hay = f"{record.namespace}/{record.name} {getattr(record, 'model', '')}"
            if not all(fuzzy_match(w, hay) for w in self.words):
                return False
        if self.requirements:
            labels = getattr(record, "labels", None) or {}
            if not all(req(labels) for req in self.requirements):
                return False
        return True
