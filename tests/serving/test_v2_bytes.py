"""V2 BYTES inputs reach the model as bytes, from JSON strings and from binary data."""

from __future__ import annotations

import struct

import orjson

from serving.protocols import v2
from serving.runtime import Signature

SIG = Signature.from_dict({"name": "serving_default",
                           "inputs": {"text": {"dtype": "string", "shape": [-1]}},
                           "outputs": {"y": {"dtype": "float32", "shape": [-1]}}})


def test_v2_json_bytes_input_decodes_to_bytes() -> None:
    body = orjson.dumps({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                     "data": ["hello", "wörld"]}]})
    req = v2.decode_infer(body, SIG, max_batch=8, allow_nonfinite=False, n_labels=0)
    assert req.inputs["text"].tolist() == [b"hello", "wörld".encode()]


def test_v2_binary_bytes_input_decodes_to_bytes() -> None:
    raw = b"".join(struct.pack("<I", len(x)) + x for x in (b"ab", b"c"))
    header = orjson.dumps({"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                                       "parameters": {"binary_data_size": len(raw)}}]})
    req = v2.decode_infer(header + raw, SIG, max_batch=8, allow_nonfinite=False, n_labels=0,
                          header_length=len(header))
    assert req.inputs["text"].tolist() == [b"ab", b"c"]
