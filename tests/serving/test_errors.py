"""Bad input: every client mistake is a 4xx `{"error"}` naming the input, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.conftest import Server

MODEL = "digits"
GOOD_ROW = [[[0.5]] * 8] * 8
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


def v2_body(**tensor: object) -> dict:
    base = {"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32",
            "data": [0.5] * 64}
    base.update(tensor)
    return {"inputs": [base]}


V1_CASES = [
    (b"{not json", 400, "malformed JSON"),
    (b"", 400, "malformed JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({"instances": [GOOD_ROW], "inputs": [GOOD_ROW]}), 400, "both"),
    (json.dumps({"signature_name": "serving_default"}), 400, "'instances'"),
    (json.dumps({"instances": []}), 400, "empty"),
    (json.dumps({"instances": [[1, 2, 3]]}), 400, "input 'image': expected shape [-1, 8, 8, 1]"),
    (json.dumps({"instances": [[[[0.5]] * 8] * 7]}), 400, "got [1, 7, 8, 1]"),
    (json.dumps({"instances": [[[["a"]] * 8] * 8]}), 400, "input 'image': expected float32"),
    (json.dumps({"instances": [[[[0.5]] * 8] * 7 + [[[0.5]] * 3]]}), 400, "input 'image'"),
    (json.dumps({"instances": [{"pixels": GOOD_ROW}]}), 400, "unknown input 'pixels'"),
    (json.dumps({"inputs": {}}), 400, "missing input 'image'"),
    (json.dumps({"inputs": {"image": [GOOD_ROW], "extra": [1]}}), 400, "unknown input 'extra'"),
    (json.dumps({"instances": [GOOD_ROW] * 17}), 400, "batch of 17 exceeds the maximum 16"),
    (b'{"instances": [[[[NaN]]]]}', 400, "input 'image'"),
    (json.dumps({"instances": [GOOD_ROW], "signature_name": "nope"}), 404, '"nope"'),
    (json.dumps({"instances": [GOOD_ROW], "bogus": 1}), 400, "unknown request field 'bogus'"),
    (json.dumps({"instances": [True]}), 400, "input 'image'"),
]


@pytest.mark.parametrize(("body", "status", "needle"), V1_CASES,
                         ids=[f"v1-{i}" for i in range(len(V1_CASES))])
def test_v1_bad_input(latency_server: Server, body: bytes | str, status: int,
                      needle: str) -> None:
    r = httpx.post(latency_server.url + V1, content=body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert needle in r.json()["error"]


def test_nan_is_rejected_by_name(latency_server: Server) -> None:
    row = [[[0.5]] * 8] * 8
    text = json.dumps({"instances": [row]}).replace("0.5", "NaN", 1)
    r = httpx.post(latency_server.url + V1, content=text)
    assert r.status_code == 400
    assert r.json() == {"error": "input 'image': NaN or Infinity not allowed"}


V2_CASES = [
    (v2_body(datatype="INT64"), "input 'image': expected datatype FP32, got 'INT64'"),
    (v2_body(shape=[1, 8, 8]),
     "input 'image': expected shape [-1, 8, 8, 1] float32, got [1, 8, 8]"),
    (v2_body(shape=[1, 8, 4, 1]),
     "input 'image': data has 64 elements, shape [1, 8, 4, 1] needs 32"),
    (v2_body(shape=[2, 8, 8, 1]), "shape [2, 8, 8, 1] needs 128"),
    (v2_body(shape=[1, 64], data=[0.5] * 64), "input 'image': expected shape [-1, 8, 8, 1]"),
    (v2_body(name="pixels"), "unknown input 'pixels'"),
    (v2_body(shape="1,8,8,1"), "input 'image': 'shape' must be a list"),
    (v2_body(data="abc"), "input 'image': 'data' must be a list"),
    (v2_body(data=["x"] * 64), "input 'image': expected float32"),
    ({"inputs": []}, "'inputs' must be a non-empty list"),
    ({"inputs": [{"shape": [1]}]}, "inputs[0]: 'name'"),
    ({"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32"}]},
     "input 'image': missing 'data'"),
    ({**v2_body(), "outputs": [{"name": "nope"}]}, "unknown output 'nope'"),
    ({**v2_body(), "parameters": {"top_k": 99}}, "top_k must be between 1 and 10"),
    ({"inputs": v2_body()["inputs"] * 2}, "input 'image' given twice"),
]


@pytest.mark.parametrize(("body", "needle"), V2_CASES,
                         ids=[f"v2-{i}" for i in range(len(V2_CASES))])
def test_v2_bad_input(latency_server: Server, body: dict, needle: str) -> None:
    r = httpx.post(latency_server.url + V2, json=body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]


@pytest.mark.parametrize(("method", "path", "status", "needle"), [
    ("POST", "/v1/models/other:predict", 404, "Servable not found for request: Latest(other)"),
    ("GET", "/v1/models/other", 404, "Latest(other)"),
    ("POST", f"/v1/models/{MODEL}/versions/2:predict", 404, f"Specific({MODEL}, 2)"),
    ("POST", f"/v1/models/{MODEL}/versions/abc:predict", 400, "version must be"),
    ("POST", f"/v1/models/{MODEL}/labels/canary:predict", 404, "Labeled(digits, canary)"),
    ("POST", "/v2/models/other/infer", 404, "Latest(other)"),
    ("GET", f"/v2/models/{MODEL}/versions/3", 404, f"Specific({MODEL}, 3)"),
    ("GET", "/nowhere", 404, "no route for GET /nowhere"),
    ("POST", f"/v1/models/{MODEL}:classify", 501, "not implemented"),
    ("DELETE", f"/v1/models/{MODEL}", 405, ""),
    ("POST", f"{V1}?top_k=zero", 400, "top_k must be an integer"),
])
def test_routes_and_models(latency_server: Server, method: str, path: str, status: int,
                           needle: str) -> None:
    r = httpx.request(method, latency_server.url + path,
                      json={"instances": [GOOD_ROW]} if method == "POST" else None)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_body_too_large(latency_server: Server) -> None:
    big = b'{"instances": [' + b"0," * 150_000 + b"0]}"
    r = httpx.post(latency_server.url + V1, content=big)
    assert r.status_code == 413
    assert r.json() == {"error": "request body exceeds the limit of 200000 bytes"}


def test_bad_request_does_not_fail_batch_mates(throughput_server: Server) -> None:
    """Concurrent good and bad requests on the micro-batcher: only the bad ones fail."""
    import asyncio

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=throughput_server.url, timeout=30) as client:
            def send(i: int):  # noqa: ANN202
                row = GOOD_ROW if i % 3 else [[[0.5]] * 8] * 5
                return client.post(V1, json={"instances": [row]})
            return [r.status_code for r in await asyncio.gather(*(send(i) for i in range(60)))]

    codes = asyncio.run(run())
    assert codes == [400 if i % 3 == 0 else 200 for i in range(60)]


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                      st.floats(allow_nan=False), st.text(max_size=5))
json_values = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=6)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                           max_leaves=40)
image_like = st.lists(st.lists(st.lists(st.one_of(st.floats(-1e3, 1e3), st.integers(-5, 5),
                                                  st.lists(st.floats(-2, 2), max_size=2)),
                                        min_size=0, max_size=9), min_size=0, max_size=9),
                      min_size=0, max_size=3)
v1_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"instances": image_like}),
    st.fixed_dictionaries({"inputs": st.one_of(image_like, st.dictionaries(
        st.sampled_from(["image", "x"]), image_like, max_size=2))}),
)
v2_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"inputs": st.lists(st.fixed_dictionaries({
        "name": st.sampled_from(["image", "x", ""]),
        "shape": st.one_of(st.lists(st.integers(-1, 9), max_size=5), json_values),
        "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "nope"]),
        "data": st.one_of(st.lists(st.floats(-10, 10), max_size=140), json_values),
    }), max_size=2)}, optional={"outputs": json_values, "parameters": json_values,
                               "id": json_values}),
)


def _check_fuzz(url: str, path: str, body: object) -> None:
    r = httpx.post(url + path, content=json.dumps(body), timeout=30)
    assert r.status_code in (200, 400, 404), (r.status_code, r.text, body)
    doc = r.json()
    if r.status_code != 200:
        assert set(doc) == {"error"} and doc["error"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=v1_bodies)
def test_fuzz_v1_never_500(latency_server: Server, body: object) -> None:
    _check_fuzz(latency_server.url, V1, body)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=v2_bodies)
def test_fuzz_v2_never_500(latency_server: Server, body: object) -> None:
    _check_fuzz(latency_server.url, V2, body)


binary_tensors = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["image", "x"]),
    "shape": st.lists(st.integers(0, 9), max_size=5),
    "datatype": st.sampled_from(["FP32", "FP64", "INT64", "BYTES", "nope"]),
    "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-1, 600)}),
}), min_size=1, max_size=2)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tensors=binary_tensors, payload=st.binary(max_size=600), skew=st.integers(-3, 3))
def test_fuzz_v2_binary_never_500(latency_server: Server, tensors: list, payload: bytes,
                                  skew: int) -> None:
    header = json.dumps({"inputs": tensors}).encode()
    r = httpx.post(latency_server.url + V2, content=header + payload, timeout=30,
                   headers={"Inference-Header-Content-Length": str(max(0, len(header) + skew))})
    assert r.status_code in (200, 400), (r.status_code, r.text)
    if r.status_code == 400:
        assert r.json()["error"]
