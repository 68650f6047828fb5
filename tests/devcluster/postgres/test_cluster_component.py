"""`fleet cluster up --postgres`: PostgreSQL as a recorded component of the local cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from devcluster import postgres as pg
from devcluster.cluster import binaries, processes

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]
SMALL = ("--nodes", "1", "--gpu-nodes", "0", "--local-nodes", "0")


def _fleet(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "fleet.cli", "cluster", "--state-dir",
                           str(state), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _exports(out: str) -> dict[str, str]:
    return dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
                if line.startswith("export "))


@pytest.fixture
def state() -> Iterator[Path]:
    missing = binaries.find_all()[1]
    if missing:
        pytest.fail(f"control-plane binaries missing ({', '.join(missing)}): run "
                    "`fleet cluster build` first.")
    # A closed (0700) directory above the state dir, as /root is for the default state dir.
    root = Path(tempfile.mkdtemp(prefix="modelfleet-pgcluster-"))
    try:
        yield root / "state"
    finally:
        _fleet(root / "state", "down")
        shutil.rmtree(root, ignore_errors=True)


def _postgres_line(status: str) -> list[str]:
    return next(line for line in status.splitlines() if line.startswith("postgres")).split()


def test_up_postgres_env_status_restart_and_down(state: Path) -> None:
    up = _fleet(state, "up", *SMALL, "--postgres", "--postgres-max-connections", "40")
    assert up.returncode == 0, up.stderr
    assert "postgres ready" in up.stderr
    url = _exports(up.stdout)["FLEET_OPTUNA_STORAGE"]
    assert url.startswith("postgresql+psycopg://fleet_")
    assert url.endswith("/optuna") and "@127.0.0.1:" in url
    assert _exports(_fleet(state, "env").stdout)["FLEET_OPTUNA_STORAGE"] == url

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="cluster", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)

    status = _fleet(state, "status")
    assert status.returncode == 0, status.stdout
    name, pid, health = _postgres_line(status.stdout)
    assert health == "healthy" and processes.alive(int(pid))
    server = pg.load(state / "postgres")
    assert server is not None and server.pid == int(pid) and server.max_connections == 40
    assert server.data_dir.stat().st_uid != 0

    again = _fleet(state, "up", *SMALL, "--postgres")
    assert "reusing the healthy cluster" in again.stderr
    assert "reusing PostgreSQL" in again.stderr

    server.stop()  # the server died: status says so, `up` starts it again on its data
    assert _postgres_line(_fleet(state, "status").stdout)[-1] == "stopped"
    back = _fleet(state, "up", *SMALL, "--postgres")
    assert back.returncode == 0, back.stderr
    assert "reusing the healthy cluster" in back.stderr  # the control plane was left alone
    assert "starting the recorded server again" in back.stderr
    assert _exports(back.stdout)["FLEET_OPTUNA_STORAGE"] == url  # same port and role
    assert len(optuna.load_study(study_name="cluster", storage=url).trials) == 2
    new_pid = int(_postgres_line(_fleet(state, "status").stdout)[1])

    down = _fleet(state, "down")
    assert "postgres" in down.stdout
    assert not processes.alive(new_pid)
    assert not state.exists()
