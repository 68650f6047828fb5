"""Turn a trainer's SavedModel into a sealed version in serving's layout, and score versions.

`build_artifact` copies the SavedModel into `out_dir`, converts the LiteRT fp32 and
full-integer int8 variants (int8 calibrated on the first `CALIBRATION_SAMPLES` training
images), measures every variant's holdout accuracy with serving's own runtimes and seals
`metadata.json` (`serving.store.seal`) in the same shape as `serving.demo_model`'s. A failed
int8 conversion (or an int8 model LiteRT cannot run) is published without the variant, and
`provenance.int8` says why; a failed fp32 conversion is a `TrainerError` (the model uses ops
LiteRT lacks: deterministic, never retried).

`evaluate` scores a published version on a holdout file the same way (SavedModel runtime,
argmax of `label_output` against y), so guarded promotion can score the candidate and the
live model on the same holdout with the same code.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from serving import runtime as rt
from serving import store as store_mod
from tuning.contract import HOLDOUT_FILE, TrainerError, TrainResult
from tuning.dataset import load_npz, load_split, read_dataset_info

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 200
EVAL_BATCH = 32  # the LiteRT runtime's default largest batch


def convert_tflite(saved_model: Path, calibration: np.ndarray | None,
                   input_name: str) -> bytes:
    """LiteRT flatbuffer: fp32 when `calibration` is None, else full-integer int8 (int8 I/O)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if calibration is not None:
        def representative() -> Any:
            for row in calibration:
                yield {input_name: row[None].astype(np.float32)}

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def accuracy(runtime: Any, input_name: str, label_output: str, x: np.ndarray, y: np.ndarray,
             batch: int = EVAL_BATCH) -> float:
    """Share of samples whose argmax over `label_output` equals y, rounded to 4 places."""
    hits = 0
    for start in range(0, len(x), batch):
        out = runtime.predict({input_name: x[start:start + batch]})[label_output]
        hits += int((np.asarray(out).argmax(axis=-1) == y[start:start + batch]).sum())
    return round(hits / len(x), 4)


def _signature(runtime: rt.SavedModelRuntime, result: TrainResult) -> rt.Signature:
    where = str(result.saved_model)
    sig = runtime.signatures.get("serving_default")
    if sig is None:
        raise TrainerError(f"{where}: no serving_default signature (has "
                           f"{', '.join(runtime.signatures) or 'none'})")
    if result.input_name not in sig.inputs:
        raise TrainerError(f"{where}: serving_default has no input {result.input_name!r} "
                           f"(inputs: {', '.join(sig.inputs)})")
    if len(sig.inputs) != 1:
        raise TrainerError(f"{where}: serving_default must take exactly one input, takes "
                           f"{', '.join(sig.inputs)}")
    if result.label_output not in sig.outputs:
        raise TrainerError(f"{where}: serving_default has no output {result.label_output!r} "
                           f"(outputs: {', '.join(sig.outputs)})")
    shape = list(sig.inputs[result.input_name].shape)
    if shape != list(result.input_shape):
        raise TrainerError(f"{where}: input {result.input_name!r} is {shape}, the trainer "
                           f"said {list(result.input_shape)}")
    classes = sig.outputs[result.label_output].shape[-1]
    if classes != -1 and classes != len(result.labels):
        raise TrainerError(f"{where}: output {result.label_output!r} has {classes} classes "
                           f"but the trainer gave {len(result.labels)} labels")
    return sig


def build_artifact(result: TrainResult, data_dir: Path, out_dir: Path,
                   provenance: dict[str, Any]) -> dict[str, Any]:
    """Copy, convert, evaluate and seal one model version in `out_dir`; return its metadata.

    `out_dir` must be absent or empty. `provenance` (params, job, pod, epochs, ...) is merged
    over what is known here (dataset name/version, code_version, num_replicas_in_sync,
    training metrics, TensorFlow version, int8 outcome).
    """
    import tensorflow as tf

    started = time.perf_counter()
    src = Path(result.saved_model)
    out_dir = Path(out_dir)
    if not (src / store_mod.SAVED_MODEL_PB).is_file():
        raise TrainerError(f"{src}: not a SavedModel directory ({store_mod.SAVED_MODEL_PB} "
                           "missing)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty")
    info = read_dataset_info(data_dir)
    x_tr, _y_tr, x_ho, y_ho = load_split(data_dir)

    shutil.copytree(src, out_dir, dirs_exist_ok=True)
    for stale in (store_mod.METADATA, store_mod.TFLITE_FP32, store_mod.TFLITE_INT8):
        (out_dir / stale).unlink(missing_ok=True)
    saved = rt.SavedModelRuntime(out_dir)
    sig = _signature(saved, result)
    name, label = result.input_name, result.label_output
    holdout: dict[str, Any] = {
        "metric": "accuracy", "direction": "maximize", "n": len(y_ho),
        "savedmodel": accuracy(saved, name, label, x_ho, y_ho),
    }
    try:
        (out_dir / store_mod.TFLITE_FP32).write_bytes(convert_tflite(out_dir, None, name))
        fp32 = rt.TFLiteRuntime(out_dir / store_mod.TFLITE_FP32, sig, "tflite-fp32")
        holdout["tflite_fp32"] = accuracy(fp32, name, label, x_ho, y_ho)
    except Exception as exc:
        raise TrainerError(f"LiteRT fp32 conversion of {src} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
    variants = {"tflite_fp32": store_mod.TFLITE_FP32}
    calibration = x_tr[:CALIBRATION_SAMPLES]
    int8_path = out_dir / store_mod.TFLITE_INT8
    try:
        int8_path.write_bytes(convert_tflite(out_dir, calibration, name))
        int8 = rt.TFLiteRuntime(int8_path, sig, "tflite-int8")
        holdout["tflite_int8"] = accuracy(int8, name, label, x_ho, y_ho)
        variants["tflite_int8"] = store_mod.TFLITE_INT8
        int8_note = (f"full-integer PTQ, {len(calibration)} training images as "
                     "representative data")
    except Exception as exc:  # publish without it; serving then never picks int8
        int8_path.unlink(missing_ok=True)
        int8_note = f"not published: conversion failed ({type(exc).__name__}: {exc})"
        log.warning("int8 variant of %s %s", src, int8_note)
    holdout["value"] = holdout["savedmodel"]

    prov: dict[str, Any] = {
        "dataset": info["name"],
        "dataset_version": info["version"],
        "dataset_source": info["source"],
        "code_version": result.code_version,
        "num_replicas_in_sync": result.num_replicas_in_sync,
        "train_metrics": dict(result.metrics),
        "tensorflow": tf.__version__,
        "int8": int8_note,
        "created_unix": int(time.time()),
        "convert_seconds": round(time.perf_counter() - started, 2),
    }
    prov.update(provenance)
    meta = store_mod.seal(out_dir, {
        "name": result.name,
        "signature": sig.to_dict(),
        "labels": list(result.labels),
        "label_output": label,
        "holdout": holdout,
        "variants": variants,
        "provenance": prov,
    })
    log.info("built %s in %s: holdout %s", result.name, out_dir, holdout)
    return meta


def evaluate(version_dir: Path, holdout_npz: Path) -> float:
    """Holdout accuracy of a published version (checksums verified, SavedModel runtime).

    `holdout_npz` is a holdout split file (x, y) such as `<dataset>/holdout.npz`; a directory
    is taken as a dataset version and its holdout.npz is used.
    """
    version_dir = Path(version_dir)
    holdout_npz = Path(holdout_npz)
    if holdout_npz.is_dir():
        holdout_npz = holdout_npz / HOLDOUT_FILE
    meta = store_mod.verify(version_dir, str(version_dir))
    sig = rt.Signature.from_dict(meta["signature"])
    label = meta.get("label_output") or next(iter(sig.outputs))
    if len(sig.inputs) != 1:
        raise store_mod.ArtifactCorrupt(str(version_dir), "evaluate needs a single-input "
                                        f"signature, has {', '.join(sig.inputs)}")
    x, y = load_npz(holdout_npz)
    runtime = rt.SavedModelRuntime(version_dir)
    if label not in runtime.signatures[runtime.default_signature].outputs:
        raise store_mod.ArtifactCorrupt(str(version_dir), f"label_output {label!r} is not "
                                        "an output of its SavedModel")
    return accuracy(runtime, next(iter(sig.inputs)), label, x, y)
