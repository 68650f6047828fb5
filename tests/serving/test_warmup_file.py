"""TF Serving's warm-up file (`assets.extra/tf_serving_warmup_requests`): format and replay.

The format is checked against TensorFlow itself (its TFRecord reader and writer, its
TensorProto); the replay runs in a real server and in the real ModelHost.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from serving import store as store_mod
from serving import warmup
from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import Metrics
from tests.serving.conftest import Server


def _version_with(demo_model: Path, dest: Path, requests: list | None,
                  raw: bytes | None = None) -> Path:
    """A copy of the demo's version 1 under dest/1 with a warm-up file, sealed again."""
    vdir = dest / "1"
    shutil.copytree(demo_model / "1", vdir)
    path = warmup.warmup_path(vdir)
    if raw is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    elif requests is not None:
        warmup.write_warmup_file(path, requests, model_name="digits")
    meta = json.loads((vdir / store_mod.METADATA).read_text())
    for key in ("files", "format_version"):
        meta.pop(key)
    store_mod.seal(vdir, meta)
    return dest


def _images(batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    return {"image": np.random.default_rng(seed).random((batch, 8, 8, 1)).astype(np.float32)}


def test_crc32c_matches_the_standard_check_value() -> None:
    assert warmup.crc32c(b"123456789") == 0xE3069283  # RFC 3720 / iSCSI check value
    assert warmup.crc32c(b"") == 0


def test_the_file_round_trips_through_tensorflow(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.framework import tensor_pb2

    x = _images(3)["image"]
    words = np.array([b"ab", b"", b"xyz"], dtype=object)
    ours = warmup.write_warmup_file(tmp_path / "ours", [{"image": x}, {"s": words}])
    # TensorFlow reads our framing (it checks both CRCs) and our TensorProtos.
    records = [r.numpy() for r in tf.data.TFRecordDataset(str(ours))]
    assert len(records) == 2
    assert records == list(warmup.read_tfrecords(ours.read_bytes()))
    tensor = tensor_pb2.TensorProto.FromString(warmup.encode_tensor(x))
    np.testing.assert_array_equal(tf.make_ndarray(tensor), x)
    assert list(tf.make_ndarray(tensor_pb2.TensorProto.FromString(
        warmup.encode_tensor(words)))) == list(words)
    # We read TensorFlow's framing and its TensorProto encodings (content and *_val fields).
    theirs = tmp_path / "theirs"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for rec in (b"one", b"", b"three" * 1000):
            writer.write(rec)
    assert list(warmup.read_tfrecords(theirs.read_bytes())) == [b"one", b"", b"three" * 1000]
    cases = [x, np.arange(6, dtype=np.int64).reshape(2, 3), np.array([True, False]),
             np.array([[1, -2], [3, 4]], dtype=np.int32), np.array([0.5, 2.0], np.float16)]
    for arr in cases:
        got = warmup.decode_tensor(tf.make_tensor_proto(arr).SerializeToString())
        assert got.dtype == arr.dtype
        np.testing.assert_array_equal(got, arr)
    # float_val with fewer values than the shape: the last one repeats (TensorProto rule).
    short = tf.make_tensor_proto([1.5], shape=[2, 2], dtype=tf.float32).SerializeToString()
    np.testing.assert_array_equal(warmup.decode_tensor(short), np.full((2, 2), 1.5, np.float32))


def test_a_corrupt_or_foreign_record_names_the_record(tmp_path: Path) -> None:
    path = warmup.write_warmup_file(tmp_path / "f", [_images(1), _images(2)])
    data = bytearray(path.read_bytes())
    data[-7] ^= 0xFF  # inside the second record's tensor bytes
    path.write_bytes(bytes(data))
    with pytest.raises(warmup.WarmupError, match="record 1: corrupted data"):
        warmup.read_warmup_file(path)
    # A PredictionLog holding a classify_log (field 2), framed correctly.
    path.write_bytes(warmup.tfrecord(b"\x12\x00"))
    with pytest.raises(warmup.WarmupError, match="record 0: .*classify_log records are not"):
        warmup.read_warmup_file(path)


def test_a_server_replays_the_file_as_its_warm_up(demo_model: Path, tmp_path: Path) -> None:
    store = _version_with(demo_model, tmp_path / "store", [_images(3), _images(5, 1)])
    srv = Server(["--model-name", "digits", "--model-uri", str(store), "--runtime",
                  "savedmodel"], {}, tmp_path / "server.log").start()
    try:
        srv.wait()
        status = httpx.get(f"{srv.url}/v1/models/digits", timeout=5).json()["modelfleet"]
        assert status["warmup_source"] == "tf_serving_warmup_requests"
        assert status["warmup_records"] == 2
        # The replayed batch sizes (3 and 5), not the synthetic 1, 2, 4, ..., MAX_BATCH_SIZE.
        assert sorted(int(b) for b in status["warmup_ms"]) == [3, 5]
        assert "warm-up: replayed 2 records" in srv.log()
        r = httpx.post(f"{srv.url}/v2/models/digits/infer", timeout=5, json={"inputs": [
            {"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32", "data": [0.5] * 64}]})
        assert r.status_code == 200, r.text
    finally:
        srv.stop()


def _host(store: Path) -> ModelHost:
    cfg = ServingConfig(model_name="digits", model_uri=str(store), runtime="tflite-fp32")
    host = ModelHost(cfg, Metrics("digits"))
    host.load()
    return host


def test_without_a_file_the_warm_up_is_synthetic(demo_model: Path) -> None:
    host = _host(demo_model)
    assert host.state == "LOADING" and not host.error  # loaded, activate() not called yet
    assert host.warmup_source == "synthetic" and host.warmup_records == 0
    assert sorted(host.warm_ms) == [1, 2, 4, 8, 16, 32]
    host.close()


@pytest.mark.parametrize(("requests", "raw", "error"), [
    ([{"pixels": np.zeros((1, 8, 8, 1), np.float32)}], None,
     r"record 0: inputs \['pixels'\] do not match the signature's \['image'\]"),
    ([{"image": np.zeros((1, 8, 8, 1), np.float64)}], None,
     "record 0: input 'image' is float64, the signature wants float32"),
    ([_images(1), {"image": np.zeros((1, 7, 8, 1), np.float32)}], None, "record 1 failed"),
    (None, b"not a tfrecord file", "Please verify your warmup data"),
])
def test_a_bad_file_fails_the_load_like_tf_serving(demo_model: Path, tmp_path: Path,
                                                  requests: list | None, raw: bytes | None,
                                                  error: str) -> None:
    host = _host(_version_with(demo_model, tmp_path / "store", requests, raw))
    assert host.state == "END"
    assert "WarmupError" in host.error and "tf_serving_warmup_requests" in host.error
    assert re.search(error, host.error), host.error
    host.close()
