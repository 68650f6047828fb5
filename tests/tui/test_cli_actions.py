"""The subprocess runner behind the sweep actions: lines as they come, exit status, timeout.

A tiny Python script stands in for `fleet`; the real `fleet sweep stop` runs in
test_sweeps_cluster.py."""

from __future__ import annotations

import sys
import threading
import time

from tui.cli_actions import CliResult, fleet_command, run_cli
from tui.viewmodel.sweep_plans import shown_command

SCRIPT = """
import sys, time
print("warning: no $FLEET_OPTUNA_STORAGE", file=sys.stderr, flush=True)
time.sleep(0.3)
print("job.batch/x suspended", file=sys.stderr, flush=True)
print("sweep x stopped", flush=True)
sys.exit(int(sys.argv[1]))
"""


def test_lines_stream_as_they_come_and_the_exit_status_decides():
    got: list[tuple[float, str, str]] = []
    started = time.monotonic()
    r = run_cli([sys.executable, "-c", SCRIPT, "0"],
                lambda stream, line: got.append((time.monotonic() - started, stream, line)))
    assert r.ok and r.returncode == 0 and not r.timed_out
    assert [(s, line) for _, s, line in got if s == "stderr"] == [
        ("stderr", "warning: no $FLEET_OPTUNA_STORAGE"), ("stderr", "job.batch/x suspended")]
    assert r.stdout == ("sweep x stopped",) and r.summary == "sweep x stopped"
    assert got[0][0] < r.elapsed_s - 0.2  # the first line arrived before the end
    failed = run_cli([sys.executable, "-c", SCRIPT + "", "1"])
    assert not failed.ok and failed.status_text == "exit status 1"


def test_the_error_line_is_the_summary_of_a_failure():
    r = run_cli([sys.executable, "-c", "import sys; print('error: no sweep \"x\" in ml', "
                 "file=sys.stderr); print('noise', file=sys.stderr); sys.exit(1)"])
    assert r.summary == 'error: no sweep "x" in ml'


def test_timeout_and_cancel_stop_the_command():
    r = run_cli([sys.executable, "-c", "import time; print('started', flush=True); "
                 "time.sleep(60)"], timeout=1.0)
    assert r.timed_out and not r.ok and r.elapsed_s < 20 and r.stdout == ("started",)
    assert r.summary.startswith("timed out") and r.status_text == "timed out"
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    r = run_cli([sys.executable, "-c", "import time; time.sleep(60)"], cancel=cancel)
    assert not r.timed_out and not r.ok and r.elapsed_s < 20


def test_the_command_line():
    assert fleet_command(["sweep", "stop", "x", "-n", "ml"], context="kind-a",
                         kubeconfig="/k/config") == [
        sys.executable, "-m", "fleet.cli", "sweep", "stop", "x", "-n", "ml", "--context",
        "kind-a", "--kubeconfig", "/k/config"]
    assert fleet_command(["sweep", "ls"]) == [sys.executable, "-m", "fleet.cli", "sweep", "ls"]
    assert shown_command(["sweep", "launch", "/tmp/my spec.yaml"]) == \
        "fleet sweep launch '/tmp/my spec.yaml'"
    assert CliResult((), -9, (), (), 1.0).status_text == "killed by signal 9"
