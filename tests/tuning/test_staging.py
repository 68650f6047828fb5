"""Dataset staging from a path URI: version resolution, copy once, precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tuning import staging
from tuning.contract import TrainerError


def _version(base: Path, n: int, payload: bytes = b"x" * 1000) -> Path:
    d = base / str(n)
    d.mkdir(parents=True)
    (d / "train.npz").write_bytes(payload)
    (d / "dataset.json").write_text(json.dumps({"name": "digits", "version": n}))
    return d


def test_a_base_resolves_to_its_newest_complete_version(tmp_path: Path) -> None:
    _version(tmp_path, 1)
    _version(tmp_path, 2)
    (tmp_path / "3").mkdir()  # incomplete: no dataset.json
    assert staging.resolve_version(str(tmp_path)) == f"{tmp_path}/2"
    assert staging.resolve_version(f"{tmp_path}/1") == f"{tmp_path}/1"


def test_stage_copies_once_and_reports_bytes(tmp_path: Path) -> None:
    _version(tmp_path / "data", 1, b"y" * 5000)
    got = staging.stage(str(tmp_path / "data"), tmp_path / "local")
    assert got.version == "1" and got.bytes > 5000 and got.seconds > 0
    assert (tmp_path / "local" / "train.npz").read_bytes() == b"y" * 5000
    again = staging.stage(str(tmp_path / "data"), tmp_path / "local")
    assert again.seconds == 0.0  # already staged: not copied again


@pytest.mark.parametrize("setup, needle", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("x"), "is a file"),
    (lambda p: p.mkdir(), "holds no dataset.json"),
])
def test_bad_data_is_deterministic(tmp_path: Path, setup, needle) -> None:
    target = tmp_path / "data"
    setup(target)
    with pytest.raises(TrainerError, match=needle):
        staging.resolve_version(str(target))
