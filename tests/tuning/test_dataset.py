"""The digits dataset version: its files, and precise errors for missing or malformed ones."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tuning.contract import DATASET_FILE, HOLDOUT_FILE, TRAIN_FILE, TrainerError
from tuning.dataset import build_digits_dataset, load_npz, load_split, read_dataset_info, write_npz


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_digits_dataset(tmp_path_factory.mktemp("datasets") / "digits", 1)


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "1"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def edit_info(data_dir: Path, **changes: object) -> None:
    path = data_dir / DATASET_FILE
    info = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            info.pop(key, None)
        else:
            info[key] = value
    path.write_text(json.dumps(info))


def test_build_writes_a_version(built: Path) -> None:
    assert built.name == "1"
    assert sorted(p.name for p in built.iterdir()) == [DATASET_FILE, HOLDOUT_FILE, TRAIN_FILE]
    assert [p.name for p in built.parent.iterdir()] == ["1"]  # no temporary leftovers
    info = read_dataset_info(built)
    assert info["name"] == "digits" and info["version"] == 1
    assert (info["n_train"], info["n_holdout"]) == (1437, 360)
    created = dt.datetime.fromisoformat(info["created"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 600
    assert "load_digits" in info["source"]
    assert info["sha256"] == {TRAIN_FILE: sha(built / TRAIN_FILE),
                              HOLDOUT_FILE: sha(built / HOLDOUT_FILE)}

    x_tr, y_tr, x_ho, y_ho = load_split(built)
    assert x_tr.shape == (1437, 8, 8, 1) and x_ho.shape == (360, 8, 8, 1)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert x_tr.min() >= 0.0 and x_tr.max() <= 1.0
    # stratified: every class holds ~20% of its samples out
    for label in range(10):
        share = (y_ho == label).sum() / ((y_ho == label).sum() + (y_tr == label).sum())
        assert 0.18 < share < 0.22
    # the same split as serving's demo model
    from serving.demo_model import load_digits_split

    ref = load_digits_split()
    np.testing.assert_array_equal(y_ho, ref[3])
    np.testing.assert_array_equal(x_tr, ref[0])


def test_build_is_reproducible_and_never_overwrites(built: Path) -> None:
    again = build_digits_dataset(built.parent, 2)
    assert read_dataset_info(again)["version"] == 2
    for name in (TRAIN_FILE, HOLDOUT_FILE):
        assert sha(again / name) == sha(built / name)
    with pytest.raises(FileExistsError, match="dataset version .*/1 already exists"):
        build_digits_dataset(built.parent, 1)
    with pytest.raises(ValueError, match="positive integer, got 0"):
        build_digits_dataset(built.parent, 0)
    shutil.rmtree(again)


def test_load_npz_direct(built: Path) -> None:
    x, y = load_npz(built / HOLDOUT_FILE)
    assert len(x) == len(y) == 360


@pytest.mark.parametrize(("content", "match"), [
    (None, r"dataset\.json: missing \(not a staged dataset version\)"),
    ("{not json", r"dataset\.json: not valid JSON"),
    ("[1, 2]", r"dataset\.json: not a JSON object"),
])
def test_info_file_errors(copy: Path, content: str | None, match: str) -> None:
    if content is None:
        (copy / DATASET_FILE).unlink()
    else:
        (copy / DATASET_FILE).write_text(content)
    for fn in (read_dataset_info, load_split):
        with pytest.raises(TrainerError, match=match):
            fn(copy)


@pytest.mark.parametrize(("changes", "match"), [
    ({"name": None, "n_train": None}, r"dataset\.json: lacks name, n_train"),
    ({"version": "1"}, r"dataset\.json: version must be int, got '1'"),
    ({"n_holdout": True}, r"dataset\.json: n_holdout must be int, got True"),
    ({"n_train": 0}, r"dataset\.json: n_train must be positive, got 0"),
    ({"sha256": "abc"}, r"dataset\.json: sha256 must be an object"),
])
def test_info_field_errors(copy: Path, changes: dict, match: str) -> None:
    edit_info(copy, **changes)
    with pytest.raises(TrainerError, match=match):
        read_dataset_info(copy)


def test_split_file_errors(copy: Path) -> None:
    (copy / HOLDOUT_FILE).unlink()
    with pytest.raises(TrainerError, match=r"/holdout\.npz: missing$"):
        load_split(copy)

    (copy / TRAIN_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(TrainerError, match=r"train\.npz: fails its sha256 check"):
        load_split(copy)
    edit_info(copy, sha256={})  # without recorded digests the content itself is checked
    with pytest.raises(TrainerError, match=r"train\.npz: not a readable \.npz"):
        load_split(copy)


@pytest.mark.parametrize(("arrays", "match"), [
    ({"x": np.zeros((4, 8, 8, 1), np.float32)}, "needs arrays x and y, has x"),
    ({"x": np.zeros((4, 8, 8, 1)), "y": np.zeros(4, np.int64)}, "x must be float32, got float64"),
    ({"x": np.zeros(4, np.float32), "y": np.zeros(4, np.int64)}, r"x must be \[n, \.\.\.\]"),
    ({"x": np.zeros((4, 2), np.float32), "y": np.zeros(4, np.float32)},
     "y must be a 1-D integer array, got float32"),
    ({"x": np.zeros((4, 2), np.float32), "y": np.zeros(3, np.int64)},
     "x has 4 samples but y has 3"),
    ({"x": np.zeros((0, 2), np.float32), "y": np.zeros(0, np.int64)}, "no samples"),
])
def test_array_errors(tmp_path: Path, arrays: dict, match: str) -> None:
    path = tmp_path / "bad.npz"
    write_npz(path, **arrays)
    with pytest.raises(TrainerError, match=match):
        load_npz(path)


def test_counts_and_shapes_must_agree(copy: Path) -> None:
    edit_info(copy, n_holdout=359)
    with pytest.raises(TrainerError, match=r"holdout\.npz: 360 samples, dataset\.json says 359"):
        load_split(copy)
    edit_info(copy, n_holdout=360, sha256={})
    write_npz(copy / HOLDOUT_FILE, x=np.zeros((360, 64), np.float32), y=np.zeros(360, np.int64))
    with pytest.raises(TrainerError, match=r"train samples are \(8, 8, 1\) but holdout samples "
                                           r"are \(64,\)"):
        load_split(copy)
