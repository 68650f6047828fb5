"""Code installed at start into a per-pod environment that sees the base image's packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tuning import code_install
from tuning.contract import TrainerError


def _wheel(tmp: Path, name: str, *, entry: bool = True, deps: list[str] | None = None) -> Path:
    src = tmp / f"src-{name}"
    pkg = src / name.replace("-", "_")
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("import numpy\n\ndef train(ctx):\n    return 'trained'\n")
    eps = (f'[project.entry-points."modelfleet.trainers"]\nt = "{pkg.name}:train"\n'
           if entry else "")
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "2.3.0"\n'
        f"dependencies = {deps or []!r}\n".replace("'", '"') + eps)
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                    "-q", "-w", str(out), str(src)], check=True)
    return next(out.glob(f"{name.replace('-', '_')}-*.whl"))


def test_install_sees_base_packages_without_reinstalling_them(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "tiny-trainer", deps=["numpy"])
    code = code_install.install(str(wheel), tmp_path / "pod")
    assert (code.distribution, code.version) == ("tiny-trainer", "2.3.0")
    assert code.entry_point == "t = tiny_trainer:train"
    assert code.bytes == wheel.stat().st_size and code.install_seconds > 0
    out = subprocess.run(
        [str(code.python), "-c", "import numpy, tiny_trainer, sys; "
         "print(tiny_trainer.train(None), numpy.__file__, sys.prefix)"],
        check=True, capture_output=True, text=True).stdout.split()
    assert out[0] == "trained"
    assert not out[1].startswith(out[2])  # numpy comes from the base, not the pod env
    assert not list((tmp_path / "pod" / "env").rglob("numpy/__init__.py"))


def test_missing_code_is_deterministic(tmp_path: Path) -> None:
    with pytest.raises(TrainerError, match="not found"):
        code_install.install(str(tmp_path / "nope-1.0-py3-none-any.whl"), tmp_path / "pod")


def test_a_script_is_not_installable_code(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    with pytest.raises(TrainerError, match="not a wheel or sdist"):
        code_install.install(str(tmp_path / "train.py"), tmp_path / "pod")


def test_a_dependency_the_base_lacks_fails_offline(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "needy-trainer", deps=["surely-not-a-real-package-xyz"])
    with pytest.raises(TrainerError, match="installing needy_trainer-2.3.0.*failed"):
        code_install.install(str(wheel), tmp_path / "pod")


def test_a_package_without_a_trainer_entry_point_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "plain-lib", entry=False)
    with pytest.raises(TrainerError, match="declares no entry point"):
        code_install.install(str(wheel), tmp_path / "pod")
