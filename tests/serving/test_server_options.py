"""Server options on real processes: served version, several workers (LiteRT: fast start)."""

from __future__ import annotations

from pathlib import Path

import httpx

from serving.store import Store
from tests.serving.conftest import Server

ROW = [[[0.5]] * 8] * 8


def test_largest_version_served_unless_pinned(demo_model: Path, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"))
    assert store.publish(demo_model / "1") == 1
    assert store.publish(demo_model / "1") == 2
    base = ["--model-name", "digits", "--model-uri", str(tmp_path / "store"), "--runtime",
            "tflite-fp32"]
    latest = Server(base, log_path=tmp_path / "latest.log").start()
    pinned = Server([*base, "--version", "1"], {}, tmp_path / "pinned.log").start()
    try:
        latest.wait()
        pinned.wait()
        for srv, served, other in ((latest, 2, 1), (pinned, 1, 2)):
            status = httpx.get(f"{srv.url}/v1/models/digits").json()
            assert status["model_version_status"][0]["version"] == str(served)
            ok = httpx.post(f"{srv.url}/v1/models/digits/versions/{served}:predict",
                            json={"instances": [ROW]})
            assert ok.status_code == 200
            gone = httpx.post(f"{srv.url}/v1/models/digits/versions/{other}:predict",
                              json={"instances": [ROW]})
            assert gone.status_code == 404
    finally:
        assert latest.stop() == 0 and pinned.stop() == 0


def test_two_workers_serve_and_stop_cleanly(demo_model: Path, tmp_path: Path) -> None:
    srv = Server(["--model-name", "digits", "--model-uri", str(demo_model), "--runtime",
                  "tflite-fp32", "--workers", "2", "--mode", "throughput"],
                 log_path=tmp_path / "workers.log").start()
    try:
        srv.wait()  # ready only once every worker has loaded the model
        assert srv.log().count("ready on 127.0.0.1") == 2
        with httpx.Client(base_url=srv.url) as client:
            codes = {client.post("/v1/models/digits:predict",
                                 json={"instances": [ROW]}).status_code for _ in range(20)}
        assert codes == {200}
    finally:
        assert srv.stop() == 0
    log = srv.log()
    assert log.count("ready on 127.0.0.1") == 2, log  # each worker loaded the model
