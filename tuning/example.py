"""`fleet train publish-example`: the digits trainer wheel and dataset, uploaded for a pod.

Builds `tuning/example_trainer` into a wheel offline (`pip wheel --no-build-isolation
--no-deps`), writes dataset version 1 from scikit-learn's digits (`tuning.dataset`), and
uploads both under URI: `URI/code/<wheel>` and `URI/data/1/`. Re-running re-uploads the wheel
and keeps an existing dataset version (versions are immutable).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tuning.contract import DATASET_FILE
from tuning.remote import Remote, join

EXAMPLE_DIR = Path(__file__).resolve().parent / "example_trainer"


def build_wheel(dest: Path, source: Path = EXAMPLE_DIR) -> Path:
    if not (source / "pyproject.toml").is_file():
        raise RuntimeError(f"no example trainer at {source} (publish-example needs the "
                           "repository checkout)")
    with tempfile.TemporaryDirectory(prefix="example-src-") as tmp:
        # Build from a copy: setuptools leaves build/ and *.egg-info next to the sources, and a
        # stale build/lib could leak old files into a later wheel.
        src = Path(tmp) / "src"
        shutil.copytree(source, src, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
             "--disable-pip-version-check", "--quiet", "-w", str(dest), str(src)],
            capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the example wheel failed: {proc.stderr.strip()[-800:]}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dest}, found {len(wheels)}")
    return wheels[0]


def publish_example(to: str, *, webhdfs_url: str = "",
                    say: Callable[[str], None] = lambda _t: None) -> tuple[str, str]:
    """Upload the example; returns (code URI, data URI)."""
    from tuning.dataset import build_digits_dataset

    remote = Remote.open(to, webhdfs_url)
    with tempfile.TemporaryDirectory(prefix="publish-example-") as tmp:
        wheel = build_wheel(Path(tmp) / "dist")
        say(f"built {wheel.name}")
        remote.upload(wheel, f"code/{wheel.name}", overwrite=True)
        code_uri = join(to, "code", wheel.name)
        say(f"uploaded {code_uri}")
        if remote.kind("data", 1, DATASET_FILE) == "file":
            say(f"dataset version 1 already at {join(to, 'data', 1)}")
        else:
            version_dir = build_digits_dataset(Path(tmp) / "data", 1)
            remote.upload(version_dir, "data/1")
            say(f"uploaded dataset version 1 to {join(to, 'data', 1)}")
    return code_uri, join(to, "data")
