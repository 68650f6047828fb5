"""Install the training code at pod start into a per-pod environment.

The environment is a venv that sees the base image's packages (TensorFlow is never installed
again): `--system-site-packages` covers an image whose Python is the system one, and a `.pth`
that calls `site.addsitedir` on the running interpreter's site directories covers an image
whose Python is itself a venv. pip runs with `--no-index`: a pod installs what it was given and
fetches nothing else, so a dependency the base image lacks is a deterministic install error.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from serving.store import ArtifactMissing
from tuning.contract import ENTRY_POINT_GROUP, TrainerError
from tuning.remote import Remote

CODE_SUFFIXES = (".whl", ".tar.gz", ".zip")


@dataclass(frozen=True)
class InstalledCode:
    uri: str
    python: Path  # the per-pod environment's interpreter
    distribution: str  # e.g. "digits-trainer"
    version: str
    entry_point: str  # "name = module:attr"
    bytes: int
    fetch_seconds: float
    install_seconds: float

    @property
    def code_version(self) -> str:
        return f"{self.distribution} {self.version}"


def fetch_code(code_uri: str, dest_dir: Path, webhdfs_url: str = "") -> tuple[Path, int]:
    name = code_uri.rstrip("/").rpartition("/")[2]
    if not name.endswith(CODE_SUFFIXES):
        raise TrainerError(f"code {code_uri} is not a wheel or sdist (expected a file ending "
                           f"in {', '.join(CODE_SUFFIXES)})")
    remote_dir, _, _ = code_uri.rstrip("/").rpartition("/")
    remote = Remote.open(remote_dir or ".", webhdfs_url)
    if remote.kind(name) != "file":
        raise TrainerError(f"code {code_uri} not found")
    dest = dest_dir / name
    try:
        size = remote.download(name, dest)
    except ArtifactMissing as exc:
        raise TrainerError(f"code {code_uri} not found") from exc
    return dest, size


def _make_env(env_dir: Path) -> tuple[Path, Path]:
    """(interpreter, site-packages) of a fresh venv that sees the base image's packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(env_dir)], check=True, capture_output=True, text=True)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    base_dirs = [d for d in (*site.getsitepackages(), site.getusersitepackages())
                 if os.path.isdir(d)]
    line = "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in base_dirs)
    (purelib / "_modelfleet_base_image.pth").write_text(line + "\n")
    return python, purelib


def _find_entry_point(purelib: Path, archive: str) -> tuple[str, str, str]:
    """(distribution, version, "name = module:attr") of the trainer installed in `purelib`."""
    found = [
        (dist.metadata["Name"], dist.version, f"{ep.name} = {ep.value}")
        for dist in metadata.distributions(path=[str(purelib)])
        for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP
    ]
    if not found:
        raise TrainerError(f"{archive} declares no entry point in the group "
                           f"{ENTRY_POINT_GROUP!r} (add [project.entry-points."
                           f"\"{ENTRY_POINT_GROUP}\"] to its pyproject.toml)")
    if len(found) > 1:
        raise TrainerError(f"{archive} declares {len(found)} trainers in "
                           f"{ENTRY_POINT_GROUP!r}; declare exactly one")
    return found[0]


def install(code_uri: str, work_dir: Path, webhdfs_url: str = "") -> InstalledCode:
    """Fetch the wheel/sdist, make the per-pod environment, pip-install it offline."""
    started = time.perf_counter()
    dist_dir = work_dir / "dist"
    dist_dir.mkdir(parents=True, exist_ok=True)
    archive, size = fetch_code(code_uri, dist_dir, webhdfs_url)
    fetched = time.perf_counter()
    python, purelib = _make_env(work_dir / "env")
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "--no-warn-script-location", "--quiet", str(archive)],
        capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise TrainerError(f"installing {archive.name} failed: {tail}")
    dist, version, ep = _find_entry_point(purelib, archive.name)
    done = time.perf_counter()
    return InstalledCode(code_uri, python, dist, version, ep, size, fetched - started,
                         done - fetched)

