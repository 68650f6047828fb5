"""TF Serving's warm-up file: `assets.extra/tf_serving_warmup_requests` in a SavedModel.

The file is a TFRecord of `tensorflow.serving.PredictionLog` protos. TF Serving replays every
record once (`num_request_iterations` defaults to 1) before the model is served, accepts at
most 1000 records, and fails the load when a record cannot be parsed or run
(`tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc`); so do we.

`tensorflow-serving-api` is not a dependency (and `tensorflow` is only imported for a
SavedModel runtime), so the few protobuf fields we need are decoded and encoded by hand from
the protos (field numbers from tensorflow/serving and tensorflow/core):

    PredictionLog   log_metadata=1, classify_log=2, regress_log=3, multi_inference_log=4,
                    session_run_log=5, predict_log=6, predict_streamed_log=7 (oneof log_type)
    PredictLog      request=1, response=2
    PredictRequest  model_spec=1, inputs=2 (map<string, TensorProto>), output_filter=3
    ModelSpec       name=1, version=2, signature_name=3, version_label=4
    TensorProto     dtype=1, tensor_shape=2, tensor_content=4, half_val=13, float_val=5,
                    double_val=6, int_val=7, string_val=8, int64_val=10, bool_val=11,
                    uint32_val=16, uint64_val=17
    TensorShapeProto dim=2 (Dim: size=1), unknown_rank=3

Only `predict_log` records are supported (the server has no classify/regress APIs). TFRecord
framing: uint64 length, uint32 masked CRC32C of the length, data, uint32 masked CRC32C of
the data (CRC32C in pure Python: neither `crc32c` nor `google-crc32c` is installed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
MAX_RECORDS = 1000  # WarmupConsts::kMaxNumRecords

# tensorflow/core/framework/types.proto DataType -> numpy (object for DT_STRING)
DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32), 2: np.dtype(np.float64), 3: np.dtype(np.int32),
    4: np.dtype(np.uint8), 5: np.dtype(np.int16), 6: np.dtype(np.int8),
    7: np.dtype(object), 9: np.dtype(np.int64), 10: np.dtype(np.bool_),
    17: np.dtype(np.uint16), 19: np.dtype(np.float16), 22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}
DT_OF = {v: k for k, v in DTYPES.items()}
LOG_TYPES = {2: "classify_log", 3: "regress_log", 4: "multi_inference_log",
             5: "session_run_log", 6: "predict_log", 7: "predict_streamed_log"}


class WarmupError(ValueError):
    """The warm-up file is not a TFRecord of PredictionLogs we can replay."""


# -- CRC32C and TFRecord framing -------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecords(data: bytes) -> Iterator[bytes]:
    """The records of a TFRecord file; WarmupError on a torn record or a bad checksum."""
    pos, n, size = 0, 0, len(data)
    while pos < size:
        if size - pos < 12:
            raise WarmupError(f"record {n}: truncated header")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if hcrc != masked_crc(header):
            raise WarmupError(f"record {n}: corrupted length (CRC32C mismatch)")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > size:
            raise WarmupError(f"record {n}: truncated data ({length} bytes announced)")
        record = data[start:end]
        (dcrc,) = struct.unpack("<I", data[end:end + 4])
        if dcrc != masked_crc(record):
            raise WarmupError(f"record {n}: corrupted data (CRC32C mismatch)")
        yield record
        pos, n = end + 4, n + 1


def tfrecord(record: bytes) -> bytes:
    header = struct.pack("<Q", len(record))
    return b"".join((header, struct.pack("<I", masked_crc(header)), record,
                     struct.pack("<I", masked_crc(record))))


# -- protobuf wire format ---------------------------------------------------------------------

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WarmupError("truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WarmupError("varint too long")


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value): an int for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            value, pos = _varint(data, pos)
            yield num, wt, value
        elif wt in (1, 5):
            width = 8 if wt == 1 else 4
            if pos + width > len(data):
                raise WarmupError("truncated fixed-width field")
            yield num, wt, data[pos:pos + width]
            pos += width
        elif wt == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise WarmupError("truncated length-delimited field")
            yield num, wt, data[pos:pos + length]
            pos += length
        else:
            raise WarmupError(f"unsupported wire type {wt} (field {num})")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_varints(value: int | bytes) -> list[int]:
    if isinstance(value, int):
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def _key(num: int, wt: int) -> bytes:
    return _enc_varint((num << 3) | wt)


def _enc_varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _key(num, 2) + _enc_varint(len(payload)) + payload


# -- TensorProto --------------------------------------------------------------------------------

def decode_tensor(data: bytes) -> np.ndarray:
    dtype_enum, dims, content = 0, [], None
    floats: list[bytes] = []
    doubles: list[bytes] = []
    ints: list[int] = []
    strings: list[bytes] = []
    for num, _wt, value in _fields(data):
        if num == 1:
            dtype_enum = int(value)  # type: ignore[arg-type]
        elif num == 2:
            for dnum, _dwt, dval in _fields(value):  # type: ignore[arg-type]
                if dnum == 2:
                    size = next((_signed64(int(v)) for n, _w, v in _fields(dval)  # type: ignore[arg-type]
                                 if n == 1), 0)
                    dims.append(size)
                elif dnum == 3 and dval:
                    raise WarmupError("tensor of unknown rank")
        elif num == 4:
            content = value
        elif num == 5:
            floats.append(value)  # type: ignore[arg-type]  packed or one fixed32
        elif num == 6:
            doubles.append(value)  # type: ignore[arg-type]
        elif num in (7, 10, 11, 13, 16, 17):
            ints += _packed_varints(value)
        elif num == 8:
            strings.append(bytes(value))  # type: ignore[arg-type]
    if dtype_enum not in DTYPES:
        raise WarmupError(f"unsupported tensor dtype {dtype_enum}")
    dtype = DTYPES[dtype_enum]
    if any(d < 0 for d in dims):
        raise WarmupError(f"tensor shape {dims} has an unknown dimension")
    shape = tuple(dims)
    count = int(np.prod(shape, dtype=np.int64))
    if dtype.kind == "O":
        values = np.array(strings, dtype=object)
    elif content is not None:
        return np.frombuffer(bytes(content), dtype=dtype.newbyteorder("<")).astype(
            dtype).reshape(shape)
    elif dtype == np.float32:
        values = np.frombuffer(b"".join(floats), dtype="<f4")
    elif dtype == np.float64:
        values = np.frombuffer(b"".join(doubles), dtype="<f8")
    elif dtype == np.float16:
        values = np.array(ints, dtype=np.uint16).view(np.float16)
    else:
        values = np.array([_signed64(v) for v in ints], dtype=np.int64).astype(dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 0:  # TensorProto: no values means zeros
        return np.full(shape, b"", object) if dtype.kind == "O" else np.zeros(shape, dtype)
    if values.size < count:  # and fewer values repeat the last one
        pad = np.full(count - values.size, values[-1], dtype=values.dtype)
        return np.concatenate([values, pad]).reshape(shape)
    raise WarmupError(f"tensor has {values.size} values for shape {list(shape)}")


def encode_tensor(array: np.ndarray) -> bytes:
    arr = np.asarray(array)
    if arr.dtype.kind in ("U", "S", "O"):
        dtype_enum = 7
    else:
        dtype_enum = DT_OF.get(arr.dtype)
        if dtype_enum is None:
            raise WarmupError(f"unsupported dtype {arr.dtype}")
    shape = b"".join(_len_field(2, _key(1, 0) + _enc_varint(int(d))) for d in arr.shape)
    out = _key(1, 0) + _enc_varint(dtype_enum) + _len_field(2, shape)
    if dtype_enum == 7:
        for item in arr.reshape(-1):
            out += _len_field(8, item.encode() if isinstance(item, str) else bytes(item))
    else:
        out += _len_field(4, arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return out


# -- PredictionLog ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WarmupRequest:
    """One replayable PredictRequest: signature ("" = the default) and its inputs."""

    signature: str
    inputs: dict[str, np.ndarray]

    @property
    def batch(self) -> int:
        first = next(iter(self.inputs.values()), None)
        return int(first.shape[0]) if first is not None and first.ndim else 1


def decode_prediction_log(data: bytes) -> WarmupRequest:
    predict_log = None
    for num, _wt, value in _fields(data):
        if num == 6:
            predict_log = value
        elif num in LOG_TYPES:
            raise WarmupError(f"{LOG_TYPES[num]} records are not supported (only predict_log)")
    if predict_log is None:
        raise WarmupError("record holds no log (expected predict_log)")
    request = next((v for n, _w, v in _fields(predict_log) if n == 1), b"")  # type: ignore[arg-type]
    signature, inputs = "", {}
    for num, _wt, value in _fields(request):  # type: ignore[arg-type]
        if num == 1:
            for snum, _swt, sval in _fields(value):  # type: ignore[arg-type]
                if snum == 3:
                    signature = bytes(sval).decode()  # type: ignore[arg-type]
        elif num == 2:
            key, tensor = "", b""
            for enum_, _ewt, evalue in _fields(value):  # type: ignore[arg-type]
                if enum_ == 1:
                    key = bytes(evalue).decode()  # type: ignore[arg-type]
                elif enum_ == 2:
                    tensor = bytes(evalue)  # type: ignore[arg-type]
            try:
                inputs[key] = decode_tensor(tensor)
            except WarmupError as exc:
                raise WarmupError(f"input {key!r}: {exc}") from None
    if not inputs:
        raise WarmupError("predict_log request has no inputs")
    return WarmupRequest(signature, inputs)


def encode_prediction_log(inputs: dict[str, np.ndarray], signature: str = "",
                          model_name: str = "") -> bytes:
    spec = b""
    if model_name:
        spec += _len_field(1, model_name.encode())
    if signature:
        spec += _len_field(3, signature.encode())
    request = _len_field(1, spec) if spec else b""
    for key, array in inputs.items():
        entry = _len_field(1, key.encode()) + _len_field(2, encode_tensor(array))
        request += _len_field(2, entry)
    return _len_field(6, _len_field(1, request))


# -- files ------------------------------------------------------------------------------------

def warmup_path(version_dir: Path) -> Path:
    return Path(version_dir) / WARMUP_DIR / WARMUP_FILE


def read_warmup_file(path: Path) -> list[WarmupRequest]:
    """Every request of a warm-up file (at most MAX_RECORDS), or WarmupError naming the record."""
    out: list[WarmupRequest] = []
    try:
        for i, record in enumerate(read_tfrecords(Path(path).read_bytes())):
            if i >= MAX_RECORDS:
                raise WarmupError(f"number of warmup records exceeds the maximum ({MAX_RECORDS})")
            try:
                out.append(decode_prediction_log(record))
            except WarmupError as exc:
                raise WarmupError(f"record {i}: failed to parse PredictionLog: {exc}") from None
    except WarmupError as exc:
        raise WarmupError(f"{path}: {exc}. Please verify your warmup data is a TFRecord of "
                          "PredictionLog") from None
    return out


def write_warmup_file(path: Path, requests: Iterable[dict[str, np.ndarray] | WarmupRequest],
                      model_name: str = "") -> Path:
    """Write a warm-up file (creating assets.extra/ as needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for req in requests:
            inputs, sig = (req.inputs, req.signature) if isinstance(req, WarmupRequest) else (
                req, "")
            fh.write(tfrecord(encode_prediction_log(inputs, sig, model_name)))
    return path
