"""Dataset versions in the layout of `tuning.contract`: build the digits one, load and check any.

One version directory holds::

    dataset.json    {"name", "version", "created", "n_train", "n_holdout", "source",
                     "split", "sha256": {"train.npz": .., "holdout.npz": ..}}
    train.npz       x float32 [n, ...], y int64 [n]
    holdout.npz     the same, the fixed holdout every candidate is judged on

The npz files are written with fixed zip timestamps, so the same arrays always give the same
bytes and the same sha256 (rebuilding a version is reproducible). Every reading problem raises
`TrainerError` naming the file and what is wrong: bad data is deterministic, never retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tuning.contract import DATASET_FILE, HOLDOUT_FILE, TRAIN_FILE, TrainerError

DIGITS_NAME = "digits"
DIGITS_SEED = 7
DIGITS_HOLDOUT_FRACTION = 0.2
REQUIRED_INFO: dict[str, type] = {
    "name": str, "version": int, "created": str, "n_train": int, "n_holdout": int,
    "source": str,
}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """An uncompressed .npz (what `np.savez` writes) with fixed timestamps: reproducible bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def build_digits_dataset(dest: Path, version: int) -> Path:
    """Write scikit-learn's digits as dataset version `dest/<version>/`; return that directory.

    x = images / 16 as float32 [n, 8, 8, 1], y int64; stratified 80/20 split with
    random_state=7 (the same split as `serving.demo_model`). The directory appears atomically
    (built under a temporary name, then renamed); an existing version is never overwritten.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"dataset version must be a positive integer, got {version!r}")
    dest = Path(dest)
    final = dest / str(version)
    if final.exists():
        raise FileExistsError(f"dataset version {final} already exists")
    dest.mkdir(parents=True, exist_ok=True)

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_ho, y_tr, y_ho = train_test_split(
        x, y, test_size=DIGITS_HOLDOUT_FRACTION, random_state=DIGITS_SEED, stratify=y)

    tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=dest))
    try:
        write_npz(tmp / TRAIN_FILE, x=x_tr, y=y_tr)
        write_npz(tmp / HOLDOUT_FILE, x=x_ho, y=y_ho)
        info = {
            "name": DIGITS_NAME,
            "version": version,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "n_train": len(y_tr),
            "n_holdout": len(y_ho),
            "source": "sklearn.datasets.load_digits (8x8 images, pixels/16, float32 "
                      "[n, 8, 8, 1]; labels int64 0..9)",
            "split": f"stratified {1 - DIGITS_HOLDOUT_FRACTION:.0%}/"
                     f"{DIGITS_HOLDOUT_FRACTION:.0%}, random_state={DIGITS_SEED}",
            "num_classes": 10,
            "sha256": {TRAIN_FILE: _sha256(tmp / TRAIN_FILE),
                       HOLDOUT_FILE: _sha256(tmp / HOLDOUT_FILE)},
        }
        (tmp / DATASET_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        tmp.chmod(0o755)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_dataset_info(data_dir: Path) -> dict[str, Any]:
    """dataset.json of a version directory, checked for the contract's required fields."""
    path = Path(data_dir) / DATASET_FILE
    if not path.is_file():
        raise TrainerError(f"{path}: missing (not a staged dataset version)")
    try:
        info = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TrainerError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(info, dict):
        raise TrainerError(f"{path}: not a JSON object")
    missing = [k for k in REQUIRED_INFO if k not in info]
    if missing:
        raise TrainerError(f"{path}: lacks {', '.join(missing)}")
    for key, kind in REQUIRED_INFO.items():
        value = info[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise TrainerError(f"{path}: {key} must be {kind.__name__}, got {value!r}")
    for key in ("n_train", "n_holdout"):
        if info[key] < 1:
            raise TrainerError(f"{path}: {key} must be positive, got {info[key]}")
    sums = info.get("sha256", {})
    if not isinstance(sums, dict):
        raise TrainerError(f"{path}: sha256 must be an object of file name to digest")
    return info


def load_npz(path: Path, expected_n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one split file: x float32 with a leading sample dimension, y int64 [n]."""
    path = Path(path)
    if not path.is_file():
        raise TrainerError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            if not {"x", "y"} <= names:
                raise TrainerError(f"{path}: needs arrays x and y, has "
                                   f"{', '.join(sorted(names)) or 'none'}")
            x, y = data["x"], data["y"]
    except TrainerError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise TrainerError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from exc
    if x.dtype != np.float32:
        raise TrainerError(f"{path}: x must be float32, got {x.dtype}")
    if x.ndim < 2:
        raise TrainerError(f"{path}: x must be [n, ...] with n samples, got shape {x.shape}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise TrainerError(f"{path}: y must be a 1-D integer array, got {y.dtype} {y.shape}")
    if len(x) != len(y):
        raise TrainerError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    if len(y) == 0:
        raise TrainerError(f"{path}: no samples")
    if expected_n is not None and len(y) != expected_n:
        raise TrainerError(f"{path}: {len(y)} samples, {DATASET_FILE} says {expected_n}")
    return x, y.astype(np.int64, copy=False)


def load_split(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_holdout, y_holdout) of a version directory.

    Checks dataset.json, each file's sha256 where dataset.json records one, the sample
    counts, and that train and holdout samples have the same shape.
    """
    data_dir = Path(data_dir)
    info = read_dataset_info(data_dir)
    sums = info.get("sha256", {})
    out = []
    for name, count in ((TRAIN_FILE, info["n_train"]), (HOLDOUT_FILE, info["n_holdout"])):
        path = data_dir / name
        if path.is_file() and name in sums and _sha256(path) != sums[name]:
            raise TrainerError(f"{path}: fails its sha256 check against {DATASET_FILE} "
                               "(corrupt or partial copy)")
        out.extend(load_npz(path, count))
    x_tr, y_tr, x_ho, y_ho = out
    if x_tr.shape[1:] != x_ho.shape[1:]:
        raise TrainerError(f"{data_dir}: train samples are {x_tr.shape[1:]} but holdout "
                           f"samples are {x_ho.shape[1:]}")
    return x_tr, y_tr, x_ho, y_ho
