"""The `digits` trainer: a small CNN on the staged digits dataset (see `tuning.contract`).

`train(ctx)` is the `modelfleet.trainers` entry point. It reads only `train.npz` from
`ctx.data_dir` (numpy, no other part of modelfleet): the holdout is never opened, it stays
the entrypoint's to judge candidates on. A fixed 10% of the training split (chosen with a
fixed seed, so it is the same slice for every trial of a sweep) is kept out of the fit and
gives `val_accuracy`; `ctx.report(epoch, {"loss", "accuracy", "val_loss", "val_accuracy"})`
follows every epoch (loss/accuracy over that epoch's training batches).

One worker (`ctx.workers == 1`): Keras `fit`, the same CNN as `serving.demo_model`.

Several workers: `$TF_CONFIG` is already exported by the entrypoint. A
`MultiWorkerMirroredStrategy` (collective timeout `ctx.collective_timeout_s`) drives a custom
loop with `strategy.run`, because Keras 3 `model.fit` under that strategy is broken
(keras-team/keras#20585). Global batch = `batch_size * num_replicas_in_sync`; each worker reads
its own shard of the fit split and every worker runs the same fixed number of steps per
epoch (`n_fit // global_batch`, shards repeat), so no collective waits on a worker that ran
out of data. Metrics are all-reduced (global), only the chief reports them and computes
`val_*`. With `ctx.workers > 1`, `$TF_CONFIG` must agree with the context (as many workers,
this task = worker `ctx.index`), else `TrainerError`: a pod must never train alone believing
it has peers. `train_multi_worker(ctx)` is public so this path also runs with a single worker
(`ctx.workers == 1`, no TF_CONFIG: the strategy then spans the local devices).

Export is collective under that strategy, so every worker exports (TF's documented
pattern): the chief to `ctx.work_dir/saved_model`, the others to a temporary directory
under `ctx.work_dir` that is deleted right after. A non-chief worker's `TrainResult` therefore
names a `saved_model` path that no longer exists; only the chief's result is publishable
(the entrypoint publishes only when `ctx.is_chief`).

Parameters (`ctx.params`; strings are coerced, unknown names and bad values raise
`TrainerError`): see `DEFAULTS` and `LIMITS`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from tuning.contract import TRAIN_FILE, ParamValue, TrainContext, TrainerError, TrainResult

DISTRIBUTION = "digits-trainer"
MODEL_NAME = "digits-cnn"
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
IMAGE_SHAPE = (8, 8, 1)
VAL_FRACTION = 0.1
VAL_SEED = 0  # fixed: the validation slice is the same whatever the trial's seed


@dataclass(frozen=True)
class Params:
    learning_rate: float = 3e-3
    batch_size: int = 64
    conv1: int = 16  # filters of the first 3x3 convolution
    conv2: int = 32  # filters of the second
    dense: int = 64  # units of the hidden dense layer
    dropout: float = 0.0  # before the output layer; 0 leaves the layer out
    seed: int = 7


DEFAULTS = Params()
# name: (kind, low, high); both bounds inclusive except learning_rate's low (must be > 0)
LIMITS: dict[str, tuple[type, float, float]] = {
    "learning_rate": (float, 0.0, 1.0),
    "batch_size": (int, 1, 4096),
    "conv1": (int, 1, 512),
    "conv2": (int, 1, 512),
    "dense": (int, 1, 4096),
    "dropout": (float, 0.0, 0.9),
    "seed": (int, 0, 2**31 - 1),
}


def _coerce(name: str, kind: type, raw: ParamValue) -> float | int:
    if isinstance(raw, bool):
        raise TrainerError(f"parameter {name}={raw!r}: expected {kind.__name__}, got a bool")
    value: float | int
    if isinstance(raw, str):
        text = raw.strip()
        try:
            value = float(text)  # "64", "64.0" and "1e3" all name an integer
        except ValueError:
            raise TrainerError(f"parameter {name}={raw!r} is not a "
                               f"{'number' if kind is float else 'integer'}") from None
    elif isinstance(raw, int | float):
        value = raw
    else:
        raise TrainerError(f"parameter {name}={raw!r}: expected {kind.__name__}, "
                           f"got {type(raw).__name__}")
    if not math.isfinite(value):
        raise TrainerError(f"parameter {name}={raw!r} is not finite")
    if kind is int:
        if not float(value).is_integer():
            raise TrainerError(f"parameter {name}={raw!r} is not an integer")
        return int(value)
    return float(value)


def parse_params(params: dict[str, ParamValue]) -> Params:
    """Validated `Params` from `ctx.params` (values may be strings)."""
    unknown = sorted(set(params) - set(LIMITS))
    if unknown:
        raise TrainerError(f"unknown parameter{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(unknown)}; {DISTRIBUTION} takes "
                           f"{', '.join(LIMITS)}")
    values: dict[str, Any] = asdict(DEFAULTS)
    for name, raw in params.items():
        kind, low, high = LIMITS[name]
        value = _coerce(name, kind, raw)
        too_low = value <= low if name == "learning_rate" else value < low
        if too_low or value > high:
            lo, hi = (f"{low:g}", f"{high:g}") if kind is float else (int(low), int(high))
            bounds = f"({lo}, {hi}]" if name == "learning_rate" else f"[{lo}, {hi}]"
            raise TrainerError(f"parameter {name}={raw!r} must be in {bounds}")
        values[name] = value
    return Params(**values)


def code_version() -> str:
    try:
        return f"{DISTRIBUTION} {version(DISTRIBUTION)}"
    except PackageNotFoundError:
        return f"{DISTRIBUTION} 0+unknown (not installed)"


def load_train(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of `train.npz`: x float32 [n, 8, 8, 1] in 0..1, y int64 labels 0..9."""
    path = Path(data_dir) / TRAIN_FILE
    if not path.is_file():
        raise TrainerError(f"{path}: missing (the staged dataset has no training split)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not {"x", "y"} <= set(data.files):
                raise TrainerError(f"{path}: needs arrays x and y, has "
                                   f"{', '.join(sorted(data.files)) or 'none'}")
            x, y = data["x"], data["y"]
    except TrainerError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise TrainerError(f"{path}: not a readable .npz ({type(exc).__name__}: {exc})") from exc
    if x.dtype != np.float32 or x.shape[1:] != IMAGE_SHAPE:
        raise TrainerError(f"{path}: x must be float32 [n, 8, 8, 1], got {x.dtype} "
                           f"{list(x.shape)}")
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise TrainerError(f"{path}: y must be integer [{len(x)}], got {y.dtype} {list(y.shape)}")
    if len(y) < 20:
        raise TrainerError(f"{path}: only {len(y)} samples")
    if y.min() < 0 or y.max() >= len(LABELS):
        raise TrainerError(f"{path}: labels must be 0..{len(LABELS) - 1}, found "
                           f"{int(y.min())}..{int(y.max())}")
    return x, y.astype(np.int64)


def split_validation(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """(x_fit, y_fit, x_val, y_val): a fixed VAL_FRACTION of the training split for val_*."""
    order = np.random.default_rng(VAL_SEED).permutation(len(y))
    n_val = max(1, int(round(len(y) * VAL_FRACTION)))
    fit, val = order[n_val:], order[:n_val]
    return x[fit], y[fit], x[val], y[val]


def build_model(p: Params) -> Any:
    """The CNN of `serving.demo_model` (with the defaults), softmax over the 10 digits."""
    import keras

    layers = [
        keras.Input(IMAGE_SHAPE, name=INPUT_NAME),
        keras.layers.Conv2D(p.conv1, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(p.conv2, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(p.dense, activation="relu"),
    ]
    if p.dropout > 0:
        layers.append(keras.layers.Dropout(p.dropout, seed=p.seed))
    layers.append(keras.layers.Dense(len(LABELS), activation="softmax"))
    return keras.Sequential(layers, name=MODEL_NAME.replace("-", "_"))


def export_saved_model(model: Any, path: Path) -> None:
    """SavedModel with `serving_default`: image float32 [-1, 8, 8, 1] -> probabilities [-1, 10]."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda image: {OUTPUT_NAME: model(image, training=False)},
        input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def _result(path: Path, metrics: dict[str, float], replicas: int) -> TrainResult:
    return TrainResult(
        saved_model=path, input_name=INPUT_NAME, input_shape=[-1, *IMAGE_SHAPE],
        label_output=OUTPUT_NAME, labels=list(LABELS), metrics=metrics,
        num_replicas_in_sync=replicas, name=MODEL_NAME, code_version=code_version(),
    )


def _prepare(ctx: TrainContext) -> tuple[Params, tuple[np.ndarray, ...]]:
    params = parse_params(dict(ctx.params))
    if isinstance(ctx.epochs, bool) or not isinstance(ctx.epochs, int) or ctx.epochs < 1:
        raise TrainerError(f"epochs must be a positive integer, got {ctx.epochs!r}")
    return params, split_validation(*load_train(ctx.data_dir))


def check_tf_config(ctx: TrainContext, raw: str | None) -> None:
    """$TF_CONFIG must name ctx.workers workers and this task as worker ctx.index."""
    if not raw:
        raise TrainerError(f"ctx.workers={ctx.workers} but $TF_CONFIG is not set (the "
                           "entrypoint exports it before calling train)")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if not isinstance(workers, list):
            raise TypeError("cluster.worker is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise TrainerError(f"$TF_CONFIG is not a worker cluster spec ({exc!r}): {raw}") from None
    if len(workers) != ctx.workers:
        raise TrainerError(f"ctx.workers={ctx.workers} but $TF_CONFIG names {len(workers)} "
                           f"workers: {workers}")
    if task != {"type": "worker", "index": ctx.index}:
        raise TrainerError(f"$TF_CONFIG task {task} is not worker {ctx.index} (ctx.index)")


def _accuracy(probs: Any, y: np.ndarray) -> float:
    return float((np.asarray(probs).argmax(axis=1) == y).mean())


def train(ctx: TrainContext) -> TrainResult:
    """The entry point: Keras fit on one worker, the distributed loop on several."""
    if ctx.workers > 1:
        return train_multi_worker(ctx)
    return train_single_worker(ctx)


def train_single_worker(ctx: TrainContext) -> TrainResult:
    p, (x_fit, y_fit, x_val, y_val) = _prepare(ctx)
    import keras

    keras.utils.set_random_seed(p.seed)
    model = build_model(p)
    model.compile(optimizer=keras.optimizers.Adam(p.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    last: dict[str, float] = {}

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            metrics = {k: float(logs[k]) for k in ("loss", "accuracy", "val_loss",
                                                    "val_accuracy") if k in logs}
            last.clear()
            last.update(metrics)
            ctx.report(epoch + 1, dict(metrics))

    model.fit(x_fit, y_fit, validation_data=(x_val, y_val), epochs=ctx.epochs,
              batch_size=p.batch_size, shuffle=True, verbose=0, callbacks=[Report()])
    out = Path(ctx.work_dir) / "saved_model"
    if out.exists():
        shutil.rmtree(out)
    export_saved_model(model, out)
    return _result(out, dict(last), 1)


def train_multi_worker(ctx: TrainContext, strategy: Any = None) -> TrainResult:
    """MultiWorkerMirroredStrategy with a custom loop (also runs with one worker).

    `strategy` replaces the MultiWorkerMirroredStrategy built from $TF_CONFIG (tests run the
    same loop under a MirroredStrategy over several local devices).
    """
    p, (x_fit, y_fit, x_val, y_val) = _prepare(ctx)
    if ctx.workers > 1:
        check_tf_config(ctx, os.environ.get("TF_CONFIG"))
    import keras
    import tensorflow as tf

    if strategy is None:
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=float(ctx.collective_timeout_s))
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    replicas = int(strategy.num_replicas_in_sync)
    global_batch = p.batch_size * replicas
    steps = max(1, len(y_fit) // global_batch)
    keras.utils.set_random_seed(p.seed)

    def dataset_fn(input_context: Any) -> Any:
        per_replica = input_context.get_per_replica_batch_size(global_batch)
        ds = tf.data.Dataset.from_tensor_slices((x_fit, y_fit))
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        ds = ds.shuffle(len(y_fit), seed=p.seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(per_replica, drop_remainder=True).prefetch(2)

    dist_ds = strategy.distribute_datasets_from_function(dataset_fn)
    with strategy.scope():
        model = build_model(p)
        optimizer = keras.optimizers.Adam(p.learning_rate)
        optimizer.build(model.trainable_variables)

    def step_fn(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(y, probs)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        hits = tf.cast(tf.equal(tf.argmax(probs, axis=1, output_type=y.dtype), y), tf.float32)
        return tf.reduce_sum(per_example), tf.reduce_sum(hits)

    @tf.function
    def train_step(iterator: Any) -> tuple[Any, Any]:
        x, y = next(iterator)
        loss_sum, hits = strategy.run(step_fn, args=(x, y))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss_sum, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, hits, axis=None))

    predict = tf.function(lambda x: model(x, training=False))
    iterator = iter(dist_ds)
    metrics: dict[str, float] = {}
    seen = float(steps * global_batch)
    for epoch in range(1, ctx.epochs + 1):
        loss_total = hits_total = 0.0
        for _ in range(steps):  # the same count on every worker: collectives never starve
            loss_sum, hits = train_step(iterator)
            loss_total += float(loss_sum)
            hits_total += float(hits)
        metrics = {"loss": loss_total / seen, "accuracy": hits_total / seen}
        if ctx.is_chief:
            probs = predict(tf.constant(x_val)).numpy()
            picked = np.clip(probs[np.arange(len(y_val)), y_val], 1e-7, 1.0)
            metrics["val_loss"] = float(-np.log(picked).mean())
            metrics["val_accuracy"] = _accuracy(probs, y_val)
            ctx.report(epoch, dict(metrics))

    work = Path(ctx.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if ctx.is_chief:
        out = work / "saved_model"
        if out.exists():
            shutil.rmtree(out)
        export_saved_model(model, out)
        return _result(out, metrics, replicas)
    # Non-chief: export too (collective), into a temporary directory deleted at once.
    scratch = Path(tempfile.mkdtemp(prefix=f"saved_model.worker-{ctx.index}-", dir=work))
    try:
        export_saved_model(model, scratch / "saved_model")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return _result(scratch / "saved_model", metrics, replicas)
