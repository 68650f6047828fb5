"""Several workers, one `/metrics`: every scrape, whichever worker answers, reports the sum."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tests.serving.conftest import Server

BODY = {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32",
                    "data": [0.25] * 64}]}
MAX_REQUESTS = 400


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    found = False
    for m in re.finditer(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", text, re.M):
        got = ",".join(sorted(m[1].split(",")))
        if all(part in got.split(",") for part in want.split(",") if part):
            total += float(m[2])
            found = True
    assert found, f"{name}{{{want}}} not in /metrics:\n{text[:2000]}"
    return total


def _per_worker_requests(metrics_dir: Path) -> dict[str, float]:
    """request_total (v2, 200) as each worker process recorded it in its own file."""
    out = {}
    for f in metrics_dir.glob("counter_*.db"):
        pid = f.stem.split("_")[1]
        for metric in MultiProcessCollector.merge([str(f)]):
            for s in metric.samples:
                if s.name == "request_total" and s.labels.get("code") == "200":
                    out[pid] = out.get(pid, 0) + s.value
    return {pid: n for pid, n in out.items() if n}


def test_two_workers_report_one_aggregate(demo_model: Path, tmp_path: Path) -> None:
    mdir = tmp_path / "metrics"
    srv = Server(["--model-name", "digits", "--model-uri", str(demo_model), "--runtime",
                  "tflite-fp32", "--workers", "2"], {"PROMETHEUS_MULTIPROC_DIR": str(mdir)},
                 tmp_path / "server.log").start()
    try:
        srv.wait()  # 200 only once both workers have loaded the model

        def one(_: int) -> int:  # a fresh connection each time, so both workers accept some
            return httpx.post(f"{srv.url}/v2/models/digits/infer", json=BODY, timeout=10,
                              headers={"Connection": "close"}).status_code

        sent = 0
        with ThreadPoolExecutor(8) as pool:
            while sent < MAX_REQUESTS:
                codes = list(pool.map(one, range(40)))
                assert codes == [200] * 40
                sent += 40
                if len(_per_worker_requests(mdir)) == 2:
                    break
        per_worker = _per_worker_requests(mdir)
        assert len(per_worker) == 2, f"all {sent} requests went to one worker: {per_worker}"
        assert sum(per_worker.values()) == sent
        assert all(n < sent for n in per_worker.values())  # a per-worker view would be short
        for _ in range(6):  # fresh connections: the scrapes land on either worker
            text = httpx.get(f"{srv.url}/metrics", timeout=5,
                             headers={"Connection": "close"}).text
            assert _sample(text, "request_total", protocol="v2", code="200") == sent
            assert _sample(text, "request_latency_seconds_count", protocol="v2",
                           code="200") == sent
            assert _sample(text, "request_predict_seconds_count") == sent
            assert _sample(text, "model_ready") == 1  # the minimum over the workers
            assert _sample(text, "model_load_seconds") > 0
    finally:
        assert srv.stop() == 0
    assert not list(mdir.glob(f"gauge_live*_{srv.proc.pid}.db"))  # the supervisor's dropped
