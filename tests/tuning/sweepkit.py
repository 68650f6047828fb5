"""Helpers for sweep tests: specs, studies read back from PostgreSQL, awaited states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.cluster import TestCluster, wait_for
from tests.tuning.trainkit import fleet


def spec_yaml(name: str, code: str, data: str, output: str, **over: Any) -> str:
    doc: dict[str, Any] = {
        "name": name, "code": code, "data": data, "output": output, "epochs": 3,
        "params": {"seed": 7},
        "search_space": {
            # a deliberately bad learning rate: those trials fall behind and get pruned
            "learning_rate": {"type": "categorical", "choices": [0.00001, 0.003]},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "budget": {"max_trials": 6},
        "parallelism": 2,
        "sampler": {"type": "random", "seed": 3},
        "pruner": {"type": "median", "warmup_steps": 1, "startup_trials": 2},
    }
    for key, value in over.items():
        if key == "budget":  # merged; every other block is replaced as given
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return yaml.safe_dump(doc, sort_keys=False)


def launch(cluster: TestCluster, hdfs: Any, ns: str, tmp: Path, text: str, url: str,
           *extra: str, timeout: float = 900) -> Any:
    path = tmp / "sweep.yaml"
    path.write_text(text)
    return fleet(cluster, hdfs, "sweep", "launch", str(path), "-n", ns, "--storage", url,
                 *extra, timeout=timeout)


def study(url: str, ns: str, name: str) -> Any:
    import optuna

    return optuna.load_study(study_name=f"{ns}.{name}", storage=url)


def trials(url: str, ns: str, name: str) -> list[Any]:
    return study(url, ns, name).get_trials(deepcopy=False)


def wait_trials(url: str, ns: str, name: str, pred, timeout: float = 300, what: str = ""):
    def check():
        try:
            got = trials(url, ns, name)
        except KeyError:
            return None
        return got if pred(got) else None

    return wait_for(check, timeout=timeout, interval=0.3, what=what or f"trials of {name}")


def states(ts: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in ts:
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def trial_table(ts: list[Any]) -> str:
    """One line per trial (number, state, retry of, pod, value, fail reason): what an
    assertion about a study's trials prints when it fails."""
    return "\n".join(
        f"#{t.number} {t.state.name} retry-of={t.system_attrs.get('failed_trial')} "
        f"pod={t.user_attrs.get('pod')} value={t.value} "
        f"reason={t.user_attrs.get('fail_reason', '')!r}"
        for t in sorted(ts, key=lambda t: t.number))


def fresh(ts: list[Any]) -> list[Any]:
    """Trials that took a budget slot (not stale-trial retries)."""
    return [t for t in ts if "failed_trial" not in t.system_attrs]
