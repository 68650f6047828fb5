"""Side-by-side benchmark of `fleet tui` and k9s v0.50.16 in tmux on the same local cluster.

  python bench/tui/bench_tui.py [--deployments 1000] [--runs 5] [--size 200x50]
                                [--events 30] [--idle 30] [--kubeconfig K] [--out FILE]

Needs tmux (apt-get install -y tmux) and Go (k9s is built from the module proxy into
~/.cache/modelfleet/bench by build_k9s.sh when missing). Without --kubeconfig it brings up a
LocalCluster in its own state dir (127.0.0.1 only) and seeds N deployments (bench-0..4
namespaces, `model-NNNN`, replicas 1-3, probes). Tools run one after the other, alternating
which goes first, never concurrently. Scenarios per run and tool:

  start   launch -> title `deployments(all)[N]` with N = all and the first sorted row visible
  keys    Down -> the captured screen (with escapes) changes (highlight moved)
  event   scale a deployment kept visible by a filter -> its READY `/<desired>` shows it;
          timed from the API's acknowledgement of the PATCH
  filter  `/` + name + Enter -> title count becomes 1 (part of the event set-up)
  idle    CPU seconds over --idle seconds without changes, and RSS after full sync
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tmux import Pane, proc_cpu_seconds, proc_rss_mb, require_tmux  # noqa: E402

from devcluster.demo.plan import DeploymentPlan, FleetPlan, RevisionPlan  # noqa: E402
from devcluster.demo.seed import print_progress, seed_fleet  # noqa: E402
from fleet.kube import MERGE_PATCH, KubeClient, deployment_path  # noqa: E402

TITLE_RE = re.compile(r"deployments\(all\)\[([\d,]+)\]", re.IGNORECASE)
NAMESPACES = 5
K9S_CONFIG = """k9s:
  skipLatestRevCheck: true
  readOnly: true
  refreshRate: 2
  ui:
    splashless: true
    headless: true
    logoless: true
    crumbsless: true
    noIcons: true
    enableMouse: false
"""


def bench_plan(n: int) -> FleetPlan:
    plan = FleetPlan()
    for i in range(n):
        rev = RevisionPlan("v1", f"hdfs://hdfs.fleet.local:8020/models/bench/{i}",
                           "registry.fleet.local/modelfleet/serving:1.4.0", "bench seed")
        plan.deployments.append(DeploymentPlan(f"bench-{i % NAMESPACES}", f"model-{i:04d}",
                                               "bench", 1 + i % 3, (rev,)))
    return plan


def title_count(text: str) -> int | None:
    m = TITLE_RE.search(text)
    return int(m.group(1).replace(",", "")) if m else None


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


class Tool:
    def __init__(self, name: str, command: str, env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.env = env


def ours(kubeconfig: str) -> Tool:
    cmd = f"exec {ROOT / '.venv/bin/fleet'} tui --readonly -A --kubeconfig {kubeconfig}"
    return Tool("fleet", cmd, {"KUBECONFIG": kubeconfig, "TERM": "xterm-256color",
                               "NO_PROXY": "127.0.0.1"})


def k9s(kubeconfig: str, binary: str) -> Tool:
    cfg = Path(tempfile.mkdtemp(prefix="k9s-bench-"))
    (cfg / "config.yaml").write_text(K9S_CONFIG)
    cmd = (f"exec {binary} --readonly --headless --logoless --crumbsless --splashless "
           "-A -c deploy")
    return Tool("k9s", cmd, {"KUBECONFIG": kubeconfig, "K9S_CONFIG_DIR": str(cfg),
                             "TERM": "xterm-256color", "NO_PROXY": "127.0.0.1"})


def one_run(tool: Tool, args: argparse.Namespace, client: KubeClient, n: int,
            first_row: str, rng: random.Random) -> dict:
    w, h = (int(x) for x in args.size.split("x"))
    pane = Pane(f"bench-{tool.name}", tool.command, w, h, tool.env)
    out: dict = {"tool": tool.name}
    try:
        t0 = pane.launched
        first = pane.wait_for(lambda t: title_count(t) is not None, timeout=60)
        full = pane.wait_for(lambda t: title_count(t) == n and first_row in t, timeout=120)
        out["first_paint_s"] = first[0] - t0 if first else None
        out["start_s"] = full[0] - t0 if full else None
        if not full:
            out["error"] = "table never complete"
            return out
        pid = pane.pid
        time.sleep(args.settle)
        # idle CPU and RSS
        c0, w0 = proc_cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle)
        out["idle_cpu_pct"] = 100 * (proc_cpu_seconds(pid) - c0) / (time.monotonic() - w0)
        out["rss_mb"] = proc_rss_mb(pid)
        # Down key latency (full table)
        keys = []
        for _ in range(args.keys):
            before = pane.capture(escapes=True)
            sent = time.monotonic()
            pane.send("Down")
            got = pane.wait_for(lambda t, b=before: t != b, timeout=5, interval=0.005,
                                escapes=True)
            if got:
                keys.append(got[0] - sent)
            time.sleep(0.3)
        out["down_key_s"] = keys
        # filter to one deployment
        target_ns, target = "bench-2", "model-0042"
        sent = time.monotonic()
        pane.send("/")
        time.sleep(0.2)
        pane.send(target, literal=True)
        pane.send("Enter")
        got = pane.wait_for(lambda t: title_count(t) == 1, timeout=10)
        out["filter_s"] = got[0] - sent - 0.2 if got else None
        # watch event -> visible
        lat = []
        replicas = 1
        for _ in range(args.events):
            time.sleep(rng.uniform(0.5, 1.5))
            replicas = 3 if replicas != 3 else 2
            pattern = re.compile(rf"{target}\b.*?\b\d+/{replicas}\b")
            client.patch(deployment_path(target_ns, target), {"spec": {"replicas": replicas}},
                         MERGE_PATCH)
            acked = time.monotonic()
            got = pane.wait_for(lambda t, p=pattern: p.search(t) is not None, timeout=10,
                                interval=0.005)
            lat.append(got[0] - acked if got else float("inf"))
        out["event_s"] = lat
        return out
    finally:
        pane.kill()


TMUX_RETRIES = 2  # tmux itself sometimes dies ("server exited unexpectedly") on a busy machine


def run_with_retries(tool: Tool, args: argparse.Namespace, client: KubeClient, first_row: str,
                     rng: random.Random) -> dict:
    """One run; a run that tmux (not the tool) broke is repeated, and counted in the result."""
    failures: list[str] = []
    while True:
        try:
            r = one_run(tool, args, client, args.deployments, first_row, rng)
        except subprocess.CalledProcessError as exc:
            why = (exc.stderr or b"").decode(errors="replace").strip() if isinstance(
                exc.stderr, bytes) else str(exc.stderr or exc)
            failures.append(why or str(exc))
            print(f"{tool.name}: tmux failed ({failures[-1]}), retrying", file=sys.stderr)
            if len(failures) > TMUX_RETRIES:
                return {"tool": tool.name, "error": "tmux failed", "tmux_failures": failures}
            continue
        r["tmux_failures"] = failures
        return r


def cluster_kubeconfig(args: argparse.Namespace) -> str:
    if args.kubeconfig:
        return args.kubeconfig
    from devcluster.cluster import LocalCluster, binaries

    binaries.build(progress=lambda m: print(m, file=sys.stderr))
    state = Path(os.environ.get("MODELFLEET_BENCH_CLUSTER_DIR",
                                Path.home() / ".local/state/modelfleet/bench-cluster"))
    info = LocalCluster(state).up(nodes=3, gpu_nodes=0, progress=lambda m: print(m))
    return str(info.kubeconfig)


def build_k9s() -> str:
    script = Path(__file__).resolve().parent / "build_k9s.sh"
    return subprocess.run([str(script)], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]


def summarize(results: list[dict]) -> dict:
    summary: dict = {}
    for tool in sorted({r["tool"] for r in results}):
        rs = [r for r in results if r["tool"] == tool and "error" not in r]
        ev = [x for r in rs for x in r.get("event_s", [])]
        keys = [x for r in rs for x in r.get("down_key_s", [])]
        starts = [r["start_s"] for r in rs if r.get("start_s")]
        summary[tool] = {
            "runs": len(rs),
            "start_median_s": statistics.median(starts) if starts else None,
            "start_p95_s": pct(starts, 0.95),
            "first_paint_median_s": statistics.median(
                [r["first_paint_s"] for r in rs if r.get("first_paint_s")] or [float("nan")]),
            "event_p50_s": pct(ev, 0.5), "event_p95_s": pct(ev, 0.95), "events": len(ev),
            "down_p50_s": pct(keys, 0.5), "down_p95_s": pct(keys, 0.95),
            "filter_median_s": statistics.median(
                [r["filter_s"] for r in rs if r.get("filter_s")] or [float("nan")]),
            "idle_cpu_pct_median": statistics.median(
                [r["idle_cpu_pct"] for r in rs] or [float("nan")]),
            "rss_mb_median": statistics.median([r["rss_mb"] for r in rs] or [float("nan")]),
            "tmux_failures": sum(len(r.get("tmux_failures", ())) for r in results
                                 if r["tool"] == tool),
        }
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deployments", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", default="200x50")
    ap.add_argument("--events", type=int, default=30, help="watch events per run")
    ap.add_argument("--keys", type=int, default=20, help="Down presses per run")
    ap.add_argument("--idle", type=float, default=30.0, help="idle CPU window, seconds")
    ap.add_argument("--settle", type=float, default=3.0, help="pause after the full table")
    ap.add_argument("--tools", default="fleet,k9s")
    ap.add_argument("--kubeconfig")
    ap.add_argument("--k9s", help="k9s binary (default: build v0.50.16 if missing)")
    ap.add_argument("--out", default=str(ROOT / "bench/tui/results/latest.json"))
    args = ap.parse_args()
    require_tmux()
    kubeconfig = cluster_kubeconfig(args)
    client = KubeClient.from_kubeconfig(kubeconfig)
    plan = bench_plan(args.deployments)
    stats = seed_fleet(client, plan, workers=16, progress=print_progress)
    print(f"\nseeded {args.deployments} deployments in {stats.elapsed:.1f}s", file=sys.stderr)
    first_row = min((d.namespace, d.name) for d in plan.deployments)[1]
    tools = []
    for name in args.tools.split(","):
        if name == "fleet":
            tools.append(ours(kubeconfig))
        elif name == "k9s":
            tools.append(k9s(kubeconfig, args.k9s or build_k9s()))
    rng = random.Random(1)
    results = []
    for run in range(args.runs):
        order = tools if run % 2 == 0 else list(reversed(tools))
        for tool in order:
            r = run_with_retries(tool, args, client, first_row, rng)
            r["run"] = run
            results.append(r)
            brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()
                     if not isinstance(v, list)}
            print(json.dumps(brief), file=sys.stderr)
    summary = summarize(results)
    doc = {
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version()},
        "deployments": args.deployments, "size": args.size, "runs": args.runs,
        "summary": summary, "raw": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1, default=str))
    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
