"""The contract between the trainer entrypoint and a training package.

A training package (a wheel or sdist installed into the pod at start) declares one entry point
in the group `modelfleet.trainers`; its value is a callable `train(ctx: TrainContext) ->
TrainResult`. The entrypoint (`tuning.trainer_entrypoint`) stages the data, builds the context,
calls it, then converts, evaluates and publishes what it returns in serving's artifact layout.

Dataset layout (one version of a dataset, staged to `ctx.data_dir`)::

    dataset.json    {"name", "version", "created", "n_train", "n_holdout", "source", ...}
    train.npz       arrays x (float32 [n, ...]) and y (int64 [n])
    holdout.npz     the same for the fixed holdout every candidate is judged on

The holdout metric is classification accuracy over `label_output` (argmax vs y), computed by
the entrypoint with serving's own runtimes, so a candidate and the live model are scored the
same way (guarded promotion relies on that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTRY_POINT_GROUP = "modelfleet.trainers"
DATASET_FILE = "dataset.json"
TRAIN_FILE = "train.npz"
HOLDOUT_FILE = "holdout.npz"

ParamValue = str | int | float | bool
# report(epoch, metrics): called after each epoch (1-based) with e.g. {"loss": .., "accuracy": ..}
Reporter = Callable[[int, dict[str, float]], None]


class TrainerError(Exception):
    """A deterministic problem in the inputs (bad parameter, malformed data): never retried."""


@dataclass(frozen=True)
class TrainContext:
    data_dir: Path  # the staged dataset version (see the module docstring)
    work_dir: Path  # local scratch owned by this pod; export the SavedModel under it
    params: dict[str, ParamValue]
    epochs: int
    report: Reporter
    workers: int = 1  # > 1: MultiWorkerMirroredStrategy across an Indexed Job's pods
    index: int = 0  # this pod's JOB_COMPLETION_INDEX; 0 is the chief
    tf_config: dict[str, Any] | None = None  # already exported as $TF_CONFIG when workers > 1
    collective_timeout_s: float = 120.0  # a lost peer fails the step within this time
    gpus: int = 0  # GPUs visible to this process

    @property
    def is_chief(self) -> bool:
        return self.index == 0


@dataclass(frozen=True)
class TrainResult:
    """What the training package hands back; the entrypoint does the rest."""

    saved_model: Path  # a SavedModel directory with a `serving_default` signature
    input_name: str  # the signature's input tensor name
    input_shape: list[int]  # with -1 for the batch dimension, e.g. [-1, 8, 8, 1]
    label_output: str  # the output holding class probabilities
    labels: list[str]
    metrics: dict[str, float] = field(default_factory=dict)  # final training metrics
    num_replicas_in_sync: int = 1
    name: str = "model"
    code_version: str = ""  # the package's version, e.g. "digits-trainer 1.0.0"
