"""The cache benchmarks' pure helpers (bench/fleet/samples.py): slope, sparkline, spread and
/proc status parsing, which decide what docs/benchmarks.md reports as bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fleet.samples import SPARKS, proc_status_mb, slope, sparkline, spread


def test_slope_of_a_line_and_of_noise_around_a_plateau() -> None:
    xs = [0.0, 1.0, 2.0, 3.0, 4.0]
    assert slope(xs, [3 + 2 * x for x in xs]) == pytest.approx(2.0)
    assert slope(xs, [100.0, 101.0, 99.0, 101.0, 99.0]) == pytest.approx(-0.2)
    assert slope([1.0], [5.0]) == 0.0
    assert slope([2.0, 2.0], [1.0, 9.0]) == 0.0  # no spread in x: no slope to speak of


def test_slope_rejects_mismatched_samples() -> None:
    with pytest.raises(ValueError, match="3 xs but 2 ys"):
        slope([0.0, 1.0, 2.0], [1.0, 2.0])


def test_sparkline_scales_lowest_to_highest_and_buckets_to_width() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == SPARKS[0] + SPARKS[4] + SPARKS[-1]
    assert sparkline([5.0, 5.0]) == SPARKS[0] * 2
    assert sparkline([]) == ""
    line = sparkline([float(i) for i in range(100)], width=10)
    assert len(line) == 10 and line[0] == SPARKS[0] and line[-1] == SPARKS[-1]
    assert list(line) == sorted(line)


def test_spread_reports_median_min_max_and_count() -> None:
    assert spread([3.0, 1.0, 2.0], ".1f") == "median 2.0 (min 1.0, max 3.0, n=3)"
    assert spread([]) == "no samples"


def test_proc_status_fields(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")
    assert proc_status_mb("VmRSS", status) == 100.0
    assert proc_status_mb("VmHWM", status) == 200.0
    with pytest.raises(ValueError, match="no VmSwap line"):
        proc_status_mb("VmSwap", status)
    assert proc_status_mb() > 0  # this process, on Linux
