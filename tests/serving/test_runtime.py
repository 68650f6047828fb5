"""Runtimes on the real demo artifact, and the int8 selection rule."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving import runtime as rt
from tests.serving.conftest import REPO


@pytest.mark.parametrize(("fp_ms", "i8_ms", "fp_acc", "i8_acc", "served", "why"), [
    (1.0, 0.5, 0.98, 0.975, True, "int8 served"),
    (1.0, 1.0, 0.98, 0.97, True, "int8 served"),  # equal speed, exactly 1 point: allowed
    (1.0, 1.01, 0.98, 0.98, False, "slower on this CPU"),
    (1.0, 0.5, 0.98, 0.969, False, "more than 1 point below"),
    (1.0, 0.5, 98.0, 96.5, False, "more than 1 point below"),  # percent scale
    (1.0, 0.5, None, 0.9, False, "no holdout accuracy"),
])
def test_int8_rule(fp_ms: float, i8_ms: float, fp_acc: float | None, i8_acc: float | None,
                   served: bool, why: str) -> None:
    ok, reason = rt.int8_qualifies(fp_ms, i8_ms, fp_acc, i8_acc)
    assert ok is served and why in reason


def _copy_with_holdout(src: Path, dst: Path, int8_acc: float) -> dict:
    shutil.copytree(src, dst)
    meta = json.loads((dst / "metadata.json").read_text())
    meta["holdout"]["tflite_int8"] = int8_acc
    (dst / "metadata.json").write_text(json.dumps(meta))
    return meta


def test_all_runtimes_agree_on_holdout(demo_model: Path, holdout) -> None:
    x, y = holdout
    vdir = demo_model / "1"
    meta = json.loads((vdir / "metadata.json").read_text())
    sig = rt.Signature.from_dict(meta["signature"])
    runtimes = [rt.SavedModelRuntime(vdir),
                rt.TFLiteRuntime(vdir / "model_fp32.tflite", sig, "tflite-fp32", max_batch=8),
                rt.TFLiteRuntime(vdir / "model_int8.tflite", sig, "tflite-int8", max_batch=8)]
    outs = [r.predict({"image": x[:20]})["probabilities"] for r in runtimes]
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    assert np.abs(outs[0] - outs[2]).max() < 0.1  # int8 quantisation error
    for out in outs:  # batch 20 exceeds max_batch 8 for LiteRT: split and padded
        assert out.shape == (20, 10) and (out.argmax(1) == y[:20]).mean() >= 0.9
    recorded = meta["holdout"]
    assert recorded["metric"] == "accuracy" and recorded["n"] == len(y)
    assert recorded["savedmodel"] >= 0.9 and recorded["tflite_int8"] >= 0.9


def test_low_int8_accuracy_falls_back_with_reason(demo_model: Path, tmp_path: Path) -> None:
    meta = _copy_with_holdout(demo_model / "1", tmp_path / "v", 0.5)
    runtime, sel = rt.load(tmp_path / "v", meta, choice="tflite-int8", primary_batch=1,
                           max_batch=4, num_threads=1, pool_size=1, iters=5)
    assert sel.runtime == runtime.name == "tflite-fp32"
    assert "int8 not served: holdout accuracy 0.5 is more than 1 point below" in sel.reason


def test_auto_selection_measures_every_variant(demo_model: Path) -> None:
    meta = json.loads((demo_model / "1" / "metadata.json").read_text())
    runtime, sel = rt.load(demo_model / "1", meta, choice="auto", primary_batch=4, max_batch=4,
                           num_threads=1, pool_size=1, iters=5)
    assert set(sel.timings_ms) == {"savedmodel", "tflite-fp32", "tflite-int8"}
    assert all(set(t) == {1, 4} for t in sel.timings_ms.values())
    fp_best = min(sel.timings_ms["savedmodel"][4], sel.timings_ms["tflite-fp32"][4])
    if sel.runtime == "tflite-int8":
        assert sel.timings_ms["tflite-int8"][4] <= fp_best
    else:
        assert sel.timings_ms[sel.runtime][4] == fp_best
        assert "int8 not served" in sel.reason
    assert runtime.name == sel.runtime


def test_fleet_cli_registers_without_heavy_imports() -> None:
    code = ("import sys, serving.commands; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'sanic')]; "
            "assert not bad, bad; "
            "from fleet.cli import build_parser; p = build_parser(); "
            "a = p.parse_args(['model', 'demo', '--output', '/tmp/x']); "
            "b = p.parse_args(['serve', '--port', '9', '--mode', 'throughput']); "
            "assert a.func and b.func and b.port == 9 and b.host == '127.0.0.1'")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
