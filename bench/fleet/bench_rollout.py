"""Rolling updates of a real serving Deployment under steady load (results: docs/benchmarks.md).

  python bench/fleet/bench_rollout.py [--rate 40] [--out bench/fleet/results-rollout.json]

Starts its own local cluster (process kubelet) and HDFS minicluster in a throwaway dir, publishes
the digits model twice (bases …/v1 and …/v2) and once with a file that fails its sha256 check,
deploys 3 replicas (maxSurge 1, maxUnavailable 0, preStop sleep 10 s, SIGTERM drain), then:

1. `fleet rollout NAME --model-uri …/v2` under load until every old pod is gone;
2. `fleet rollout NAME --model-uri …/bad`: the new pod never becomes Ready, the rollout stalls,
   the old pods keep serving; `fleet rollback NAME` until the bad pod is gone.

The load generator (`ReadyPodLoad`) is what an endpoint-following proxy does: it sends only to
pods that the API reports Ready and not terminating, learnt from a pod watch, and like a real
proxy it learns of a removal late (PROPAGATION_S = 1 s: a pod that turns unready or terminating
keeps getting requests that long, which the preStop sleep must cover); every non-2xx answer and
every transport error counts as a failure. The tests in
tests/fleet/test_rollout_real.py drive the same code against the test cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from fleet.errors import FleetError  # noqa: E402
from fleet.kube import KubeClient, collection_path  # noqa: E402

MODEL = "digits"
BODY = {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32",
                    "data": [0.25] * 64}]}
MAX_RATE = 50.0  # requests per second, all senders together
MAX_SECONDS = 180.0
PROPAGATION_S = 1.0  # endpoint-removal lag of the simulated proxy


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """An endpoint controller's `ready`: Ready=True and not terminating."""
    md, status = pod.get("metadata") or {}, pod.get("status") or {}
    if md.get("deletionTimestamp") or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in status.get("conditions") or [])


@dataclass
class Sample:
    t: float  # seconds since the load started
    latency_s: float
    outcome: str  # HTTP status code, or the transport exception's name
    pod: str
    version: str  # model_version of a 200 answer


@dataclass
class LoadResult:
    samples: list[Sample]
    no_endpoint_s: float  # time with no Ready pod to send to
    watch_events: int

    def window(self, t0: float, t1: float) -> LoadResult:
        return LoadResult([s for s in self.samples if t0 <= s.t <= t1], self.no_endpoint_s,
                          self.watch_events)

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if not s.outcome.startswith("2")]

    def summary(self) -> dict[str, Any]:
        lat = sorted(s.latency_s * 1e3 for s in self.samples)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        span = (self.samples[-1].t - self.samples[0].t) if len(self.samples) > 1 else 0.0
        return {
            "requests": self.requests,
            "non_2xx": len(self.failures),
            "outcomes": dict(Counter(s.outcome for s in self.samples)),
            "versions": dict(Counter(s.version for s in self.samples if s.version)),
            "pods": len({s.pod for s in self.samples}),
            "rate_per_s": round(self.requests / span, 1) if span else None,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1], 2) if lat else None,
            "mean_ms": round(statistics.fmean(lat), 2) if lat else None,
        }


class ReadyPodLoad:
    """Steady load on the Ready pods of one Deployment, endpoints kept current by a watch."""

    def __init__(self, client: KubeClient, namespace: str, name: str, *, rate: float = 40.0,
                 senders: int = 4, max_seconds: float = MAX_SECONDS, port: int = 8080,
                 propagation_s: float = PROPAGATION_S) -> None:
        if not 0 < rate <= MAX_RATE:
            raise ValueError(f"rate must be in (0, {MAX_RATE}]")
        self.client, self.namespace, self.name = client, namespace, name
        # A pod that stops being Ready (or starts terminating) keeps getting requests this
        # long, as behind a real proxy that learns of endpoint changes with a lag.
        self.propagation_s = propagation_s
        self._leaving: dict[str, tuple[str, float]] = {}  # pod -> (IP, removal time)
        self.rate, self.senders, self.max_seconds, self.port = rate, senders, max_seconds, port
        self.endpoints: dict[str, str] = {}  # pod name -> pod IP, Ready and not terminating
        self.pods: dict[str, dict[str, Any]] = {}
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch = None
        self._events = 0
        self._no_endpoint_s = 0.0
        self.t0 = 0.0
        self.error: BaseException | None = None

    # -- endpoints ---------------------------------------------------------------------------
    def _apply(self, pod: dict[str, Any], deleted: bool = False) -> None:
        pname = (pod.get("metadata") or {}).get("name", "")
        with self._changed:
            if deleted:
                self.pods.pop(pname, None)
            else:
                self.pods[pname] = pod
            if not deleted and pod_ready(pod):
                self.endpoints[pname] = pod["status"]["podIP"]
                self._leaving.pop(pname, None)
            elif pname in self.endpoints:
                ip = self.endpoints.pop(pname)
                self._leaving[pname] = (ip, time.monotonic() + self.propagation_s)
            self._events += 1
            self._changed.notify_all()

    def _watch_loop(self) -> None:
        path = collection_path("v1", "pods", self.namespace)
        selector = {"labelSelector": f"app.kubernetes.io/name={self.name}"}
        try:
            while not self._stop.is_set():
                listed = self.client.get(path, selector)
                with self._changed:
                    self.pods.clear()
                    self.endpoints.clear()
                for pod in listed.get("items") or []:
                    self._apply(pod)
                rv = (listed.get("metadata") or {}).get("resourceVersion", "")
                left = max(1, int(self.max_seconds - (time.monotonic() - self.t0)))
                self._watch = self.client.watch(
                    path, {**selector, "resourceVersion": rv, "timeoutSeconds": left,
                           "allowWatchBookmarks": "false"})
                try:
                    for ev in self._watch:
                        if ev.get("type") == "ERROR":
                            break  # e.g. 410 Gone: list again
                        self._apply(ev["object"], ev.get("type") == "DELETED")
                except FleetError:
                    if self._stop.is_set():
                        return
                if time.monotonic() - self.t0 >= self.max_seconds:
                    return
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def wait_until(self, predicate: Callable[[ReadyPodLoad], bool], timeout: float,
                   what: str) -> None:
        """Block until `predicate(self)` holds, re-checked on every watch event and answer."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0 or self.error is not None:
                    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                         f"pods {self.describe()}") from self.error
                self._changed.wait(min(left, 1.0))

    def describe(self) -> str:
        out = []
        for pname, pod in sorted(self.pods.items()):
            md = pod.get("metadata") or {}
            out.append(f"{pname}({'ready' if pname in self.endpoints else 'not-ready'}"
                       f"{', terminating' if md.get('deletionTimestamp') else ''})")
        return ", ".join(out) or "none"

    # -- senders ----------------------------------------------------------------------------
    def _send_loop(self, index: int) -> None:
        interval = self.senders / self.rate
        next_at = self.t0 + index * interval / self.senders
        turn = index
        url_path = f"/v2/models/{MODEL}/infer"
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            while not self._stop.is_set() and time.monotonic() - self.t0 < self.max_seconds:
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                next_at = max(next_at + interval, time.monotonic() - interval)
                with self._lock:
                    now = time.monotonic()
                    targets = sorted([*self.endpoints.items(), *(
                        (n, ip) for n, (ip, until) in self._leaving.items() if until > now)])
                if not targets:
                    with self._lock:
                        self._no_endpoint_s += interval
                    continue
                pname, ip = targets[turn % len(targets)]
                turn += 1
                started = time.monotonic()
                version = ""
                try:
                    r = http.post(f"http://{ip}:{self.port}{url_path}", json=BODY)
                    outcome = str(r.status_code)
                    if r.status_code == 200:
                        version = str(r.json().get("model_version", ""))
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                done = time.monotonic()
                with self._changed:
                    self.samples.append(Sample(round(started - self.t0, 4),
                                               done - started, outcome, pname, version))
                    self._changed.notify_all()

    def start(self) -> ReadyPodLoad:
        self.t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._watch_loop, name="load-watch",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._send_loop, args=(i,),
                                           name=f"load-send-{i}", daemon=True)
                          for i in range(self.senders)]
        for t in self._threads:
            t.start()
        return self

    def now(self) -> float:
        return time.monotonic() - self.t0

    def stop(self) -> LoadResult:
        self._stop.set()
        if self._watch is not None:
            self._watch.close()
        for t in self._threads:
            t.join(15)
        if self.error is not None:
            raise self.error
        with self._lock:
            return LoadResult(sorted(self.samples, key=lambda s: s.t), self._no_endpoint_s,
                              self._events)

    def __enter__(self) -> ReadyPodLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self._stop.set()
            if self._watch is not None:
                self._watch.close()


# -- scenario pieces shared with the tests ------------------------------------------------------

def fleet(env: Mapping[str, str], *args: str, timeout: float = 300
          ) -> subprocess.CompletedProcess[str]:
    """The real `fleet` command."""
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=REPO, env=dict(env),
                          capture_output=True, text=True, timeout=timeout)


def publish_models(webhdfs_url: str, hdfs_url: str, root: str, workdir: Path
                   ) -> dict[str, str]:
    """Train the demo model once; publish it as base …/v1 (version 1), …/v2 (version 2) and
    …/bad (version 3, one file overwritten after its sha256 was recorded). Returns the URIs."""
    from hdfs import InsecureClient

    from serving.store import TFLITE_FP32, Store

    out = workdir / "demo"
    r = fleet({**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, "model", "demo", "--output",
              str(out), "--epochs", "1", timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"fleet model demo failed: {r.stdout}{r.stderr}")
    uris = {k: f"{hdfs_url}/{root.strip('/')}/{k}" for k in ("v1", "v2", "bad")}
    for key, version in (("v1", 1), ("v2", 2), ("bad", 3)):
        Store(uris[key], webhdfs_url=webhdfs_url, user="modelfleet").publish(out / "1", version)
    client = InsecureClient(webhdfs_url, user="modelfleet")
    client.write(f"/{root.strip('/')}/bad/3/{TFLITE_FP32}", data=b"not the model",
                 overwrite=True)
    return uris


def deploy_args(name: str, uri: str, namespace: str, webhdfs_url: str,
                replicas: int = 3) -> list[str]:
    return ["deploy", name, "--model-uri", uri, "-n", namespace, "--runtime-class",
            "fleet-local", "--runtime", "tflite-fp32", "--cpu", "300m", "--memory", "1Gi",
            "--replicas", str(replicas), "--env", f"WEBHDFS_URL={webhdfs_url}",
            "--env", "SERVING_WORKERS=1", "--env", "TF_CPP_MIN_LOG_LEVEL=2",
            "--timeout", "240s", "-o", "json"]


def _pods(client: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    path = collection_path("v1", "pods", namespace)
    return client.get(path, {"labelSelector": f"app.kubernetes.io/name={name}"})["items"]


def model_uri_of(pod: Mapping[str, Any]) -> str:
    for c in pod["spec"]["containers"]:
        for e in c.get("env") or []:
            if e.get("name") == "MODEL_URI":
                return e.get("value", "")
    return ""


def rolling_update(env: Mapping[str, str], client: KubeClient, namespace: str, name: str,
                   new_uri: str, *, rate: float = 40.0, timeout: float = 150.0
                   ) -> dict[str, Any]:
    """`fleet rollout` to new_uri under load; returns the load during the rollout (from the
    command until the last old pod is gone) and the timings."""
    old = {p["metadata"]["name"] for p in _pods(client, namespace, name)}
    with ReadyPodLoad(client, namespace, name, rate=rate) as load:
        load.wait_until(lambda ld: len(ld.endpoints) == len(old) and len(ld.samples) >= 20,
                        30, "steady load on every pod")
        t0 = load.now()
        r = fleet(env, "rollout", name, "--model-uri", new_uri, "-n", namespace, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"fleet rollout failed: {r.stderr}")
        st = fleet(env, "status", name, "-n", namespace, "--timeout", f"{int(timeout)}s",
                   timeout=timeout + 30)
        t_complete = load.now()
        if st.returncode != 0:
            raise AssertionError(f"rollout did not complete: {st.stdout}{st.stderr}")
        load.wait_until(lambda ld: not (old & set(ld.pods)), timeout,
                        "the old pods to be deleted")
        t_old_gone = load.now()
        n = len(load.samples)
        load.wait_until(lambda ld: len(ld.samples) >= n + 20, 30, "load after the rollout")
        result = load.stop()
    during = result.window(t0, t_old_gone)
    after = result.window(t_old_gone, float("inf"))
    return {
        "command": f"fleet rollout {name} --model-uri {new_uri}",
        "rollout_complete_s": round(t_complete - t0, 2),
        "old_pods_gone_s": round(t_old_gone - t0, 2),
        "during": during.summary(),
        "after": after.summary(),
        "whole_run": result.summary(),
        "no_endpoint_s": round(result.no_endpoint_s, 3),
        "watch_events": result.watch_events,
        "propagation_s": load.propagation_s,
        "failures": [vars(s) for s in result.failures[:20]],
        "status_output": st.stdout.strip().splitlines()[-3:],
    }


def stalled_rollout_and_rollback(env: Mapping[str, str], client: KubeClient, namespace: str,
                                 name: str, bad_uri: str, *, rate: float = 40.0,
                                 stall_window_s: int = 10) -> dict[str, Any]:
    """`fleet rollout` to an artifact that fails its checksum, observe the stall, `fleet
    rollback`; the load runs throughout."""
    old = {p["metadata"]["name"]: model_uri_of(p) for p in _pods(client, namespace, name)}
    good_uri = next(iter(old.values()))
    with ReadyPodLoad(client, namespace, name, rate=rate) as load:
        load.wait_until(lambda ld: len(ld.endpoints) == len(old) and len(ld.samples) >= 20,
                        30, "steady load on every pod")
        t0 = load.now()
        r = fleet(env, "rollout", name, "--model-uri", bad_uri, "-n", namespace, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"fleet rollout failed: {r.stderr}")

        def new_pod(ld: ReadyPodLoad) -> bool:
            return any(p for n, p in ld.pods.items() if n not in old
                       and (p.get("status") or {}).get("podIP"))

        load.wait_until(new_pod, 60, "the new pod to start")
        with load._lock:
            [(bad_name, bad_pod)] = [(n, p) for n, p in load.pods.items() if n not in old]
        ip = bad_pod["status"]["podIP"]
        reason = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # its own readiness endpoint says why
            try:
                rr = httpx.get(f"http://{ip}:8080/v2/health/ready", timeout=2, trust_env=False)
                if "Load failed" in rr.text:
                    reason = rr.json()["error"]
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        t_failed = load.now()
        # The stall, as `kubectl rollout status` shows it: it does not finish in the window.
        st = fleet(env, "status", name, "-n", namespace, "--timeout", f"{stall_window_s}s",
                   timeout=stall_window_s + 30)
        with load._lock:
            stalled = {
                "status_exit": st.returncode,
                "status_stdout": st.stdout.strip().splitlines()[-1:],
                "status_stderr": st.stderr.strip(),
                "bad_pod_ready": bad_name in load.endpoints,
                "old_pods_serving": sorted(n for n in load.endpoints if n in old),
            }
        dep = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        stalled["deployment_status"] = {k: (dep.get("status") or {}).get(k) for k in (
            "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
            "unavailableReplicas")}
        t_rb = load.now()
        rb = fleet(env, "rollback", name, "-n", namespace, timeout=60)
        if rb.returncode != 0:
            raise AssertionError(f"fleet rollback failed: {rb.stderr}")
        st2 = fleet(env, "status", name, "-n", namespace, "--timeout", "120s", timeout=150)
        t_rb_done = load.now()
        load.wait_until(lambda ld: bad_name not in ld.pods, 90, "the bad pod to be deleted")
        t_bad_gone = load.now()
        n = len(load.samples)
        load.wait_until(lambda ld: len(ld.samples) >= n + 20, 30, "load after the rollback")
        result = load.stop()
    pods_after = _pods(client, namespace, name)
    return {
        "command": f"fleet rollout {name} --model-uri {bad_uri}; fleet rollback {name}",
        "load_failed_reason": reason,
        "load_failed_after_s": round(t_failed - t0, 2),
        "stalled": stalled,
        "rollback_output": rb.stdout.strip(),
        "rollback_status_exit": st2.returncode,
        "rollback_complete_s": round(t_rb_done - t_rb, 2),
        "bad_pod_gone_s": round(t_bad_gone - t_rb, 2),
        "during": result.window(t0, t_bad_gone).summary(),
        "whole_run": result.summary(),
        "failures": [vars(s) for s in result.failures[:20]],
        "pods_after": sorted((p["metadata"]["name"], model_uri_of(p), pod_ready(p))
                             for p in pods_after),
        "good_uri": good_uri,
        "old_pods": sorted(old),
    }


# -- the benchmark --------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=40.0)
    ap.add_argument("--out", default=str(REPO / "bench/fleet/results-rollout.json"))
    args = ap.parse_args()
    from devcluster import hdfs as hdfs_mod
    from devcluster.cluster import LocalCluster

    base = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                               "rate_per_s": args.rate, "machine": _machine()}
    hdfs_mod.fetch()
    (base / "hdfs").mkdir()
    hd, proc = hdfs_mod.start(base / "hdfs")
    local = LocalCluster(base / "cluster")
    try:
        info = local.up(nodes=1, gpu_nodes=0, local_nodes=1)
        env = {**os.environ, "KUBECONFIG": str(info.kubeconfig), "NO_PROXY": "*",
               "no_proxy": "*"}
        client = KubeClient.from_kubeconfig(str(info.kubeconfig), None, "default")
        uris = publish_models(hd.webhdfs_url, hd.url, "/bench-rollout/digits", base)
        ns = "bench-rollout"
        subprocess.run([str(info.kubectl), "--kubeconfig", str(info.kubeconfig), "create",
                        "namespace", ns], check=True, capture_output=True)
        t = time.monotonic()
        d = fleet(env, *deploy_args(MODEL, uris["v1"], ns, hd.webhdfs_url), timeout=300)
        if d.returncode != 0:
            raise RuntimeError(f"fleet deploy failed: {d.stderr}")
        results["deploy_s"] = round(time.monotonic() - t, 2)
        results["rolling_update"] = rolling_update(env, client, ns, MODEL, uris["v2"],
                                                   rate=args.rate)
        print(json.dumps({"rolling_update": results["rolling_update"]["during"]}), flush=True)
        results["checksum_stall"] = stalled_rollout_and_rollback(env, client, ns, MODEL,
                                                                 uris["bad"], rate=args.rate)
        print(json.dumps({"checksum_stall": results["checksum_stall"]["during"]}), flush=True)
    finally:
        local.down()
        hdfs_mod.stop(proc)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    return {"cpus": os.cpu_count(), "cpu": cpu, "load_avg_at_start": os.getloadavg()}


if __name__ == "__main__":
    raise SystemExit(main())
