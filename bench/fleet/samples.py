"""Small pure helpers of the cache benchmarks: this process's memory, medians with spread,
a least-squares slope, and a one-line sparkline of samples."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

SPARKS = "▁▂▃▄▅▆▇█"


def proc_status_mb(field: str = "VmRSS", status: Path = Path("/proc/self/status")) -> float:
    """A `kB` field of /proc/<pid>/status in MB (VmRSS: resident now, VmHWM: its peak)."""
    for line in status.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"{status} has no {field} line (not Linux?)")


def spread(values: Sequence[float], fmt: str = ".3f") -> str:
    """`median X (min A, max B, n=N)`."""
    if not values:
        return "no samples"
    return (f"median {statistics.median(values):{fmt}} (min {min(values):{fmt}}, "
            f"max {max(values):{fmt}}, n={len(values)})")


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0.0 for fewer than two distinct xs)."""
    if len(xs) != len(ys):
        raise ValueError(f"slope: {len(xs)} xs but {len(ys)} ys")
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def sparkline(values: Sequence[float], width: int = 60) -> str:
    """Values as block characters, lowest ▁ to highest █; averaged into `width` buckets."""
    if not values:
        return ""
    n = min(width, len(values))
    buckets = [statistics.fmean(values[i * len(values) // n:(i + 1) * len(values) // n])
               for i in range(n)]
    lo, hi = min(buckets), max(buckets)
    if hi == lo:
        return SPARKS[0] * n
    return "".join(SPARKS[round((v - lo) / (hi - lo) * (len(SPARKS) - 1))] for v in buckets)
