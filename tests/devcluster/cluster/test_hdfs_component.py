"""`fleet cluster up --hdfs`: the HDFS minicluster as a recorded component of the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devcluster.cluster import processes

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


def _fleet(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, "-m", "fleet.cli", "cluster", "--state-dir",
                           str(state), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_up_hdfs_env_status_and_down(tmp_path: Path, cluster) -> None:  # noqa: ANN001, ARG001
    state = tmp_path / "state"
    try:
        up = _fleet(state, "up", "--nodes", "1", "--gpu-nodes", "0", "--local-nodes", "0",
                    "--hdfs")
        assert up.returncode == 0, up.stderr
        assert "hdfs ready" in up.stderr
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in _fleet(state, "env").stdout.splitlines())
        assert env["FLEET_HDFS_URL"].startswith("hdfs://127.0.0.1:")
        webhdfs = env["FLEET_WEBHDFS_URL"]
        assert webhdfs.startswith("http://127.0.0.1:")
        r = httpx.get(f"{webhdfs}/webhdfs/v1/?op=GETFILESTATUS&user.name=t", trust_env=False)
        assert r.status_code == 200
        status = _fleet(state, "status")
        assert status.returncode == 0, status.stdout
        hdfs_line = next(line for line in status.stdout.splitlines()
                         if line.startswith("hdfs"))
        pid = int(hdfs_line.split()[1])
        assert hdfs_line.endswith("healthy") and processes.alive(pid)
        again = _fleet(state, "up", "--nodes", "1", "--gpu-nodes", "0", "--local-nodes", "0",
                       "--hdfs")
        assert "reusing HDFS" in again.stderr
        down = _fleet(state, "down")
        assert "hdfs" in down.stdout
        assert not processes.alive(pid)
    finally:
        _fleet(state, "down")
