"""Sweep state beside the Optuna study, in the same PostgreSQL database.

Optuna's own tables hold the study (trials, params, values, heartbeats) and are touched only
through Optuna's API. This module adds one table, `modelfleet_sweeps`, for what Optuna does not
have: the sweep's validated spec, its state (running / stopped / aborted / complete) with the
reason, and the **exact** trial budget: a worker reserves a slot with one atomic UPDATE before
it creates a trial, so `max_trials` is never overshot however many workers race (Optuna's
`MaxTrialsCallback` overshoots by up to parallelism - 1).

Connections: `engine()` is a NullPool engine with a connect timeout for the CLI and the
controller (a connection only while a statement runs); a sweep worker passes Optuna's own
pooled engine instead (`tuning.sweep_worker`: at most 2 connections per worker, kept open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

STATES = ("running", "stopped", "aborted", "complete")
# a trial its worker handed back on SIGTERM is failed with this reason and retried (at most
# MAX_RETRY times in a row), by the worker or, if the worker died first, by `fleet sweep stop`
INTERRUPTED = "interrupted: the worker pod was terminated"
MAX_RETRY = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS modelfleet_sweeps (
    study_name  text PRIMARY KEY,
    namespace   text NOT NULL,
    name        text NOT NULL,
    spec        text NOT NULL,
    max_trials  integer NOT NULL CHECK (max_trials > 0),
    started     integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'running',
    reason      text NOT NULL DEFAULT '',
    promotion   text NOT NULL DEFAULT '',
    created     timestamptz NOT NULL DEFAULT now(),
    updated     timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class SweepRow:
    study_name: str
    namespace: str
    name: str
    spec: dict[str, Any]
    max_trials: int
    started: int
    failed: int
    state: str
    reason: str
    promotion: str
    age_s: float = 0.0  # seconds since the sweep was created (the database's clock)


def engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})


def study_name(namespace: str, name: str) -> str:
    return f"{namespace}.{name}"


def ensure_schema(eng: Engine) -> None:
    with eng.begin() as conn:
        # Two launches at once may both try to create the table: serialize on a lock.
        conn.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        conn.execute(text(SCHEMA))


def create(eng: Engine, namespace: str, name: str, spec: dict[str, Any], max_trials: int) -> bool:
    """Insert the sweep; False if one with that name exists."""
    with eng.begin() as conn:
        row = conn.execute(text(
            "INSERT INTO modelfleet_sweeps (study_name, namespace, name, spec, max_trials) "
            "VALUES (:s, :ns, :n, :spec, :m) ON CONFLICT (study_name) DO NOTHING "
            "RETURNING study_name"),
            {"s": study_name(namespace, name), "ns": namespace, "n": name,
             "spec": json.dumps(spec, sort_keys=True), "m": max_trials}).first()
    return row is not None


def delete(eng: Engine, study: str) -> None:
    with eng.begin() as conn:
        conn.execute(text("DELETE FROM modelfleet_sweeps WHERE study_name = :s"), {"s": study})


def get(eng: Engine, study: str) -> SweepRow | None:
    with eng.connect() as conn:
        r = conn.execute(text(
            "SELECT study_name, namespace, name, spec, max_trials, started, failed, state, "
            "reason, promotion, EXTRACT(EPOCH FROM now() - created) "
            "FROM modelfleet_sweeps WHERE study_name = :s"),
            {"s": study}).first()
    if r is None:
        return None
    return SweepRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                    float(r[10]))


def list_rows(eng: Engine, namespace: str | None = None) -> list[SweepRow]:
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT study_name FROM modelfleet_sweeps"
                                 + (" WHERE namespace = :ns" if namespace else "")
                                 + " ORDER BY study_name"), {"ns": namespace}).all()
    return [row for (s,) in rows if (row := get(eng, s)) is not None]


def reserve_slot(eng: Engine, study: str) -> int | None:
    """Take one trial slot (1-based) if the sweep runs and has budget left; else None."""
    with eng.begin() as conn:
        r = conn.execute(text(
            "UPDATE modelfleet_sweeps SET started = started + 1, updated = now() "
            "WHERE study_name = :s AND state = 'running' AND started < max_trials "
            "RETURNING started"), {"s": study}).first()
    return None if r is None else int(r[0])


def release_slot(eng: Engine, study: str) -> None:
    """Give back a slot that did not create a trial (the ask popped a retry instead)."""
    with eng.begin() as conn:
        conn.execute(text("UPDATE modelfleet_sweeps SET started = started - 1, updated = now() "
                          "WHERE study_name = :s AND started > 0"), {"s": study})


def count_failure(eng: Engine, study: str) -> int:
    with eng.begin() as conn:
        r = conn.execute(text("UPDATE modelfleet_sweeps SET failed = failed + 1, "
                              "updated = now() WHERE study_name = :s RETURNING failed"),
                         {"s": study}).first()
    return int(r[0]) if r else 0


def set_state(eng: Engine, study: str, state: str, reason: str = "", *,
              expect: tuple[str, ...] | None = None) -> bool:
    """Move the sweep to `state` (only from one of `expect`, if given); True if it moved."""
    if state not in STATES:
        raise ValueError(f"unknown sweep state {state!r}")
    cond = ""
    params: dict[str, Any] = {"s": study, "st": state, "r": reason}
    if expect:
        cond = " AND state = ANY(:expect)"
        params["expect"] = list(expect)
    with eng.begin() as conn:
        r = conn.execute(text("UPDATE modelfleet_sweeps SET state = :st, reason = :r, "
                              "updated = now() WHERE study_name = :s" + cond
                              + " RETURNING study_name"), params).first()
    return r is not None


def set_budget(eng: Engine, study: str, max_trials: int) -> None:
    with eng.begin() as conn:
        conn.execute(text("UPDATE modelfleet_sweeps SET max_trials = :m, updated = now() "
                          "WHERE study_name = :s"), {"s": study, "m": max_trials})


def record_promotion(eng: Engine, study: str, outcome: dict[str, Any]) -> None:
    with eng.begin() as conn:
        conn.execute(text("UPDATE modelfleet_sweeps SET promotion = :p, updated = now() "
                          "WHERE study_name = :s"),
                     {"s": study, "p": json.dumps(outcome, sort_keys=True)})
