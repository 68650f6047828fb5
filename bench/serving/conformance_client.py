"""Protocol conformance checks with third-party clients (runs in its own venv).

Usage: <venv>/bin/python conformance_client.py BASE_URL MODEL. Prints one JSON object:
{"checks": [{"client", "check", "ok", "detail"}]}. Needs `tritonclient[http]` (V2) and
optionally `kserve` (InferenceRESTClient, V1 and V2).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

CHECKS: list[dict[str, Any]] = []
IMAGES = (np.arange(2 * 64, dtype=np.float32).reshape(2, 8, 8, 1) % 17) / 16.0


def check(client: str, name: str, fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
        CHECKS.append({"client": client, "check": name, "ok": True, "detail": ""})
        return value
    except Exception as exc:  # record every failure, keep going
        CHECKS.append({"client": client, "check": name, "ok": False,
                       "detail": f"{type(exc).__name__}: {exc}"[:300]})
        return None


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def triton(url: str, model: str, reference: np.ndarray | None) -> np.ndarray | None:
    import tritonclient.http as th

    c = th.InferenceServerClient(url.removeprefix("http://"))
    check("tritonclient", "is_server_live", lambda: expect(c.is_server_live(), "not live"))
    check("tritonclient", "is_server_ready", lambda: expect(c.is_server_ready(), "not ready"))
    check("tritonclient", "is_model_ready", lambda: expect(c.is_model_ready(model), "not ready"))
    check("tritonclient", "is_model_ready(version=1)",
          lambda: expect(c.is_model_ready(model, "1"), "not ready"))
    check("tritonclient", "get_server_metadata",
          lambda: expect({"name", "version", "extensions"} <= set(c.get_server_metadata()),
                         "fields"))

    def meta() -> None:
        m = c.get_model_metadata(model)
        expect(m["name"] == model, "name")
        expect(m["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": [-1, 8, 8, 1]},
               str(m["inputs"]))
    check("tritonclient", "get_model_metadata", meta)

    def infer() -> np.ndarray:
        inp = th.InferInput("image", list(IMAGES.shape), "FP32")
        inp.set_data_from_numpy(IMAGES, binary_data=False)
        out = th.InferRequestedOutput("probabilities", binary_data=False)
        res = c.infer(model, [inp], outputs=[out], request_id="conf-1")
        probs = res.as_numpy("probabilities")
        expect(probs is not None and probs.shape == (2, 10), "output shape")
        expect(res.get_response()["id"] == "conf-1", "id not echoed")
        return probs

    probs = check("tritonclient", "infer (JSON tensors, request id)", infer)

    def infer_binary() -> None:
        inp = th.InferInput("image", list(IMAGES.shape), "FP32")
        inp.set_data_from_numpy(IMAGES)  # default: binary tensor extension both ways
        res = c.infer(model, [inp], outputs=[th.InferRequestedOutput("probabilities")])
        got = res.as_numpy("probabilities")
        expect(got is not None and got.shape == (2, 10), "output shape")
        if reference is not None:
            np.testing.assert_allclose(got, reference, atol=1e-5)
    check("tritonclient", "infer (binary tensor data, client defaults)", infer_binary)
    check("tritonclient", "infer without requested outputs", lambda: expect(
        c.infer(model, [_triton_input(th)]).as_numpy("probabilities").shape == (2, 10),
        "shape"))

    def unknown_model() -> None:
        try:
            c.infer("no-such-model", [_triton_input(th)])
        except Exception as exc:  # tritonclient raises InferenceServerException
            expect("404" in str(getattr(exc, "status", lambda: "")()) or "not found" in str(exc),
                   str(exc))
            return
        raise AssertionError("no error for an unknown model")
    check("tritonclient", "unknown model is an error", unknown_model)
    if reference is not None and probs is not None:
        check("tritonclient", "V2 output equals V1 prediction",
              lambda: np.testing.assert_allclose(probs, reference, atol=1e-5))
    return probs


def _triton_input(th: Any) -> Any:
    inp = th.InferInput("image", list(IMAGES.shape), "FP32")
    inp.set_data_from_numpy(IMAGES, binary_data=False)
    return inp


def kserve_checks(url: str, model: str, reference: np.ndarray | None) -> None:
    try:
        from kserve import InferenceRESTClient, RESTConfig
        from kserve.protocol.infer_type import InferInput, InferRequest
    except ImportError as exc:
        CHECKS.append({"client": "kserve", "check": "import", "ok": False, "detail": str(exc)})
        return

    async def v1() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v1"))
        try:
            expect(await client.is_server_live(url), "not live")
            res = await client.infer(url, {"instances": IMAGES.tolist()}, model_name=model)
            body = res if isinstance(res, dict) else res.json()
            got = np.asarray(body["predictions"], np.float32)
            expect(got.shape == (2, 10), str(got.shape))
            if reference is not None:
                np.testing.assert_allclose(got, reference, atol=1e-5)
        finally:
            await client.close()

    async def v2() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            expect(await client.is_server_ready(url), "server not ready")
            expect(await client.is_model_ready(url, model), "model not ready")
            inp = InferInput("image", list(IMAGES.shape), "FP32")
            inp.set_data_from_numpy(IMAGES, binary_data=False)
            res = await client.infer(url, InferRequest(model, [inp], request_id="k-1"),
                                     model_name=model)
            got = res.outputs[0].as_numpy()
            expect(got.shape == (2, 10), str(got.shape))
            if reference is not None:
                np.testing.assert_allclose(got, reference, atol=1e-5)
        finally:
            await client.close()

    check("kserve", "InferenceRESTClient v1 (live, infer)", lambda: asyncio.run(v1()))
    check("kserve", "InferenceRESTClient v2 (ready, model ready, infer)", lambda: asyncio.run(v2()))


def main() -> None:
    url, model = sys.argv[1], sys.argv[2]
    import urllib.request

    req = urllib.request.Request(f"{url}/v1/models/{model}:predict",
                                 data=json.dumps({"instances": IMAGES.tolist()}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        reference = np.asarray(json.loads(r.read())["predictions"], np.float32)
    try:
        triton(url, model, reference)
    except ImportError as exc:
        CHECKS.append({"client": "tritonclient", "check": "import", "ok": False,
                       "detail": str(exc)})
    kserve_checks(url, model, reference)
    print(json.dumps({"checks": CHECKS}))


if __name__ == "__main__":
    main()
