"""Both protocols against real server processes serving the demo model."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest

from tests.serving.conftest import Server

MODEL = "digits"


def predict_v1(srv: Server, body: dict, path: str = f"/v1/models/{MODEL}:predict",
               **params: object) -> httpx.Response:
    return httpx.post(srv.url + path, json=body, params=params, timeout=30)


def test_v1_row_format_classifies_holdout(server: Server, holdout) -> None:
    x, y = holdout
    preds = []
    for start in range(0, 96, 16):
        r = predict_v1(server, {"instances": x[start:start + 16].tolist()})
        assert r.status_code == 200, r.text
        preds += r.json()["predictions"]
    probs = np.asarray(preds)
    assert probs.shape == (96, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-2)
    assert (probs.argmax(axis=1) == y[:96]).mean() >= 0.9


def test_v1_columnar_matches_row(server: Server, holdout) -> None:
    x, _ = holdout
    rows = predict_v1(server, {"instances": x[:3].tolist()}).json()["predictions"]
    cols = predict_v1(server, {"inputs": {"image": x[:3].tolist()}})
    bare = predict_v1(server, {"inputs": x[:3].tolist(), "signature_name": "serving_default"})
    assert cols.status_code == bare.status_code == 200
    np.testing.assert_allclose(cols.json()["outputs"], rows, atol=1e-5)
    np.testing.assert_allclose(bare.json()["outputs"], rows, atol=1e-5)
    named = predict_v1(server, {"instances": [{"image": r} for r in x[:3].tolist()]})
    np.testing.assert_allclose(named.json()["predictions"], rows, atol=1e-5)


def test_v1_versioned_paths(server: Server, holdout) -> None:
    x, _ = holdout
    ok = predict_v1(server, {"instances": x[:1].tolist()},
                    path=f"/v1/models/{MODEL}/versions/1:predict")
    assert ok.status_code == 200
    missing = predict_v1(server, {"instances": x[:1].tolist()},
                         path=f"/v1/models/{MODEL}/versions/7:predict")
    assert missing.status_code == 404
    assert missing.json() == {"error": f"Servable not found for request: Specific({MODEL}, 7)"}


def test_v1_status_and_metadata(server: Server) -> None:
    status = httpx.get(f"{server.url}/v1/models/{MODEL}").json()
    assert status["model_version_status"] == [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
    assert status["ready"] is True and status["name"] == MODEL
    meta = httpx.get(f"{server.url}/v1/models/{MODEL}/versions/1/metadata").json()
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["image"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["image"]["tensor_shape"]["dim"]] == [
        "-1", "8", "8", "1"]
    assert list(sig["outputs"]) == ["probabilities"]
    assert httpx.get(f"{server.url}/v1/models").json() == {"models": [MODEL]}


def test_v1_top_k_labels(server: Server, holdout) -> None:
    x, _ = holdout
    raw = predict_v1(server, {"instances": x[:4].tolist()}).json()["predictions"]
    r = predict_v1(server, {"instances": x[:4].tolist()}, top_k=3)
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    for row, probs in zip(preds, raw, strict=True):
        assert len(row["labels"]) == len(row["scores"]) == 3
        best = np.argsort(probs)[::-1][:3]
        assert row["labels"] == [names[i] for i in best]
        np.testing.assert_allclose(row["scores"], np.asarray(probs)[best], atol=1e-6)


def test_v2_infer_flat_and_nested(server: Server, holdout) -> None:
    x, _ = holdout
    rows = predict_v1(server, {"instances": x[:2].tolist()}).json()["predictions"]
    for data in (x[:2].ravel().tolist(), x[:2].tolist()):
        body = {"id": "req-1", "inputs": [
            {"name": "image", "shape": [2, 8, 8, 1], "datatype": "FP32", "data": data}]}
        r = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_name"] == MODEL and doc["model_version"] == "1"
        assert doc["id"] == "req-1"
        (out,) = doc["outputs"]
        assert out["name"] == "probabilities" and out["datatype"] == "FP32"
        assert out["shape"] == [2, 10]
        np.testing.assert_allclose(np.reshape(out["data"], (2, 10)), rows, atol=1e-5)


def test_v2_versioned_infer_outputs_and_top_k(server: Server, holdout) -> None:
    x, _ = holdout
    body = {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32",
                        "data": x[:1].ravel().tolist()}],
            "outputs": [{"name": "labels"}], "parameters": {"top_k": 2}}
    r = httpx.post(f"{server.url}/v2/models/{MODEL}/versions/1/infer", json=body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out == {"name": "labels", "shape": [1, 2], "datatype": "BYTES", "data": out["data"]}
    assert all(isinstance(s, str) for s in out["data"])
    assert "id" not in r.json()


def test_v2_health_metadata_ready(server: Server) -> None:
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/").json() == {"status": "alive"}  # KServe V1 liveness
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    assert httpx.get(f"{server.url}/v2/models/{MODEL}/ready").json() == {
        "name": MODEL, "ready": True}
    assert httpx.get(f"{server.url}/v2/models/{MODEL}/versions/1/ready").status_code == 200
    meta = httpx.get(f"{server.url}/v2/models/{MODEL}").json()
    assert meta["name"] == MODEL and meta["versions"] == ["1"]
    assert meta["platform"] in ("tensorflow_savedmodel", "tensorflow_tflite")
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 8, 8, 1]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    server_meta = httpx.get(f"{server.url}/v2").json()
    assert set(server_meta) == {"name", "version", "extensions"}


def test_throughput_server_runs_savedmodel(throughput_server: Server) -> None:
    status = httpx.get(f"{throughput_server.url}/v1/models/{MODEL}").json()["modelfleet"]
    assert status["runtime"] == "savedmodel" and status["mode"] == "throughput"
    assert sorted(map(int, status["warmup_ms"])) == [1, 2, 4, 8, 16, 32]


def test_latency_server_reports_runtime_choice(latency_server: Server) -> None:
    status = httpx.get(f"{latency_server.url}/v1/models/{MODEL}").json()["modelfleet"]
    assert status["runtime"] in ("savedmodel", "tflite-fp32", "tflite-int8")
    timings = status["runtime_timings_ms"]
    assert {"savedmodel", "tflite-fp32", "tflite-int8"} <= set(timings)
    if status["runtime"] == "tflite-int8":
        assert "int8 served" in status["runtime_reason"]
    else:
        assert "int8 not served" in status["runtime_reason"]


@pytest.mark.parametrize("path", ["/metrics", "/monitoring/prometheus/metrics"])
def test_metrics(server: Server, holdout, path: str) -> None:
    x, _ = holdout
    predict_v1(server, {"instances": x[:1].tolist()})
    predict_v1(server, {"instances": [[1]]})
    text = httpx.get(server.url + path).text
    assert 'request_total{code="200",model_name="digits",protocol="v1"}' in text
    assert 'request_total{code="400",model_name="digits",protocol="v1"}' in text
    assert "request_latency_seconds_bucket" in text
    assert 'model_ready{model_name="digits"} 1.0' in text
    assert "model_load_seconds" in text and "queue_depth" in text


def _cache_hits(srv: Server) -> float:
    text = httpx.get(f"{srv.url}/metrics").text
    line = next(x for x in text.splitlines() if x.startswith("response_cache_hits_total{"))
    return float(line.rsplit(" ", 1)[1])


def test_latency_cache_serves_repeats(latency_server: Server, holdout) -> None:
    x, _ = holdout
    body = {"instances": x[300:302].tolist()}
    before = _cache_hits(latency_server)
    first = predict_v1(latency_server, body)
    second = predict_v1(latency_server, body)
    topk = predict_v1(latency_server, body, top_k=1)  # another query: not the cached answer
    assert first.status_code == second.status_code == topk.status_code == 200
    assert second.content == first.content and topk.content != first.content
    assert _cache_hits(latency_server) == before + 1
    bad = {"instances": [[1]]}  # errors are never cached
    assert predict_v1(latency_server, bad).status_code == 400
    assert predict_v1(latency_server, bad).status_code == 400
    assert _cache_hits(latency_server) == before + 1


def test_v2_binary_tensor_extension(server: Server, holdout) -> None:
    """Triton's binary tensor data: raw little-endian inputs after a JSON header, both ways."""
    x, _ = holdout
    rows = predict_v1(server, {"instances": x[:3].tolist()}).json()["predictions"]
    raw = np.ascontiguousarray(x[:3], "<f4").tobytes()
    header = orjson.dumps({
        "inputs": [{"name": "image", "shape": [3, 8, 8, 1], "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]})
    r = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=header + raw,
                   headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    json_len = int(r.headers["Inference-Header-Content-Length"])
    meta = orjson.loads(r.content[:json_len])
    (out,) = meta["outputs"]
    assert out["shape"] == [3, 10] and out["parameters"] == {"binary_data_size": 120}
    probs = np.frombuffer(r.content[json_len:], "<f4").reshape(3, 10)
    np.testing.assert_allclose(probs, rows, atol=1e-5)
    # JSON outputs for a binary request, and the size errors
    plain = httpx.post(f"{server.url}/v2/models/{MODEL}/infer",
                       content=header.replace(b"true", b"false") + raw,
                       headers={"Inference-Header-Content-Length": str(len(header) + 1)})
    assert plain.status_code == 200, plain.text
    np.testing.assert_allclose(np.reshape(plain.json()["outputs"][0]["data"], (3, 10)), rows,
                               atol=1e-5)
    short = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=header + raw[:-4],
                       headers={"Inference-Header-Content-Length": str(len(header))})
    assert short.status_code == 400 and "input 'image': binary_data_size 768" in \
        short.json()["error"]
    extra = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=header + raw + b"xx",
                       headers={"Inference-Header-Content-Length": str(len(header))})
    assert extra.status_code == 400 and "2 bytes of binary data not claimed" in \
        extra.json()["error"]
    bad_len = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", content=header + raw,
                         headers={"Inference-Header-Content-Length": "abc"})
    assert bad_len.status_code == 400
