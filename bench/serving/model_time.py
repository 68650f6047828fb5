"""In-process model time t_model(b) for each runtime of a demo artifact (prints JSON).

Usage: python bench/serving/model_time.py VERSION_DIR [--iters N]. Run it pinned to the
server's core; TensorFlow and LiteRT use one thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tensorflow as tf  # noqa: E402

from serving import runtime as rt  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32, 64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("version_dir", type=Path)
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    vdir: Path = args.version_dir
    meta = json.loads((vdir / "metadata.json").read_text())
    sig = rt.Signature.from_dict(meta["signature"])
    runtimes = {
        "savedmodel": rt.SavedModelRuntime(vdir),
        "tflite-fp32": rt.TFLiteRuntime(vdir / "model_fp32.tflite", sig, "tflite-fp32",
                                        max_batch=64),
        "tflite-int8": rt.TFLiteRuntime(vdir / "model_int8.tflite", sig, "tflite-int8",
                                        max_batch=64),
    }
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, runtime in runtimes.items():
        out[name] = {}
        for b in BATCHES:
            times = rt.time_model(runtime.predict, rt.synthetic_inputs(sig, b),
                                  iters=max(20, args.iters // max(1, b // 8)), warm=10)
            ms = sorted(t * 1e3 for t in times)
            out[name][str(b)] = {"median_ms": round(statistics.median(ms), 4),
                                 "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 4)}
    sizes = {"savedmodel": sum(p.stat().st_size for p in vdir.rglob("*") if p.is_file()
                               and p.suffix != ".tflite" and p.name != "metadata.json"),
             "tflite-fp32": (vdir / "model_fp32.tflite").stat().st_size,
             "tflite-int8": (vdir / "model_int8.tflite").stat().st_size}
    print(json.dumps({"t_model": out, "bytes": sizes, "holdout": meta.get("holdout")}))


if __name__ == "__main__":
    main()
