"""The training child process, run by the per-pod environment's interpreter.

`python -m tuning.train_run CONFIG_JSON EVENT_FD`: loads the installed trainer's entry point,
trains, and on the chief converts, evaluates and publishes the model (`tuning.artifact`). Each
epoch's metrics go to the parent as one JSON line on EVENT_FD; the parent owns API access.
A separate process keeps the per-pod environment (and, for sweeps, the GPU memory) contained.
The last line, `{"phase": "done", "result": …}`, comes once the model is published, so the
parent tells the result without waiting for the process to exit (a process that has imported
TensorFlow takes seconds to tear down).

`--zygote EVENT_FD` (a sweep's worker pool): import TensorFlow once, then for each config line
on stdin fork one trial process, which starts with TensorFlow already imported, trains,
publishes and leaves with `os._exit` (no teardown); the zygote reports `{"phase": "exited",
"pid": …, "code": …}` after reaping it. The zygote never initializes a device (no CUDA in a
process that forks): each trial process does that itself, and its GPU memory goes when it exits.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from tuning import exitcodes
from tuning.contract import ENTRY_POINT_GROUP, TrainContext, TrainerError

log = logging.getLogger("trainer")
PUBLISH_ATTEMPTS = 50


def load_trainer(spec: str) -> Any:
    name = spec.partition("=")[0].strip()
    eps = metadata.entry_points(group=ENTRY_POINT_GROUP, name=name)
    for ep in eps:
        if f"{ep.name} = {ep.value}" == spec:
            return ep.load()
    raise TrainerError(f"trainer entry point {spec!r} is not installed")


def _reporter(events: TextIO, epochs: int, chief: bool) -> Any:
    def report(epoch: int, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, int | float) and math.isfinite(float(v))}
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(clean.items()))
        log.info("epoch %d/%d %s", epoch, epochs, shown)
        if not chief:
            return
        metric = next((m for m in ("val_accuracy", "accuracy") if m in clean), None)
        event = {"phase": "training", "epoch": epoch, "epochs": epochs,
                 "loss": clean.get("loss"), "metrics": clean}
        if metric:
            event.update(metric=metric, value=round(clean[metric], 4))
        events.write(json.dumps(event) + "\n")
        events.flush()

    return report


def publish(local: Path, output_uri: str, webhdfs_url: str, note: str) -> int:
    """Publish as the next free version. A version another writer has claimed but not
    finished is not listed yet, so on a clash move past it instead of asking again."""
    from serving.store import ArtifactMissing, Store, VersionExists

    store = Store(output_uri, webhdfs_url=webhdfs_url)
    try:
        existing = store.versions()
    except ArtifactMissing:
        existing = []
    version = (existing[-1] + 1) if existing else 1
    for _attempt in range(PUBLISH_ATTEMPTS):
        try:
            return store.publish(local, version, claim_note=note)
        except VersionExists as exc:
            log.info("%s; trying version %d", exc, version + 1)
            version += 1
    raise RuntimeError(f"could not claim a new version under {output_uri} after "
                       f"{PUBLISH_ATTEMPTS} attempts (many concurrent publishers?)")


def run(cfg: dict[str, Any], events: TextIO) -> dict[str, Any]:
    from tuning import artifact

    train = load_trainer(cfg["entry_point"])
    work = Path(cfg["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    chief = cfg["index"] == 0
    ctx = TrainContext(
        data_dir=Path(cfg["data_dir"]), work_dir=work, params=cfg["params"],
        epochs=cfg["epochs"], report=_reporter(events, cfg["epochs"], chief),
        workers=cfg["workers"], index=cfg["index"], tf_config=cfg["tf_config"],
        collective_timeout_s=cfg["collective_timeout_s"], gpus=cfg["gpus"])
    import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    log.info("TensorFlow %s on %s", tf.__version__,
             f"{len(devices)} GPU(s)" if devices else "CPU (no GPU visible to TensorFlow)")
    result = train(ctx)
    log.info("training done: num_replicas_in_sync=%d %s", result.num_replicas_in_sync,
             " ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items())))
    if not chief:
        log.info("worker %d: the chief publishes the model", cfg["index"])
        return {"num_replicas_in_sync": result.num_replicas_in_sync}
    events.write(json.dumps({"phase": "exporting"}) + "\n")
    events.flush()
    provenance = {**cfg["provenance"], "num_replicas_in_sync": result.num_replicas_in_sync,
                  "workers": cfg["workers"], "code_version": result.code_version
                  or cfg["provenance"].get("code_version", "")}
    with tempfile.TemporaryDirectory(prefix="artifact-", dir=work) as tmp:
        out = Path(tmp) / "version"
        meta = artifact.build_artifact(result, ctx.data_dir, out, provenance)
        events.write(json.dumps({"phase": "publishing"}) + "\n")
        events.flush()
        note = f"{cfg['provenance'].get('job', '')}/{cfg['provenance'].get('pod', '')}"
        version = publish(out, cfg["output_uri"], cfg["webhdfs_url"], note)
    holdout = meta.get("holdout") or {}
    model_uri = f"{cfg['output_uri'].rstrip('/')}/{version}"
    return {"model_uri": model_uri, "version": version, "metric": holdout.get("metric"),
            "value": holdout.get("value"), "num_replicas_in_sync": result.num_replicas_in_sync}


def _say(events: TextIO, event: dict[str, Any]) -> None:
    events.write(json.dumps(event) + "\n")
    events.flush()


def run_to_result(cfg: dict[str, Any], events: TextIO) -> int:
    """Run one trial or training and hand over its result: the exit code to use."""
    try:
        result = run(cfg, events)
    except TrainerError as exc:
        _say(events, {"phase": "failed", "message": str(exc)})
        log.error("%s", exc)
        return exitcodes.DETERMINISTIC
    Path(cfg["result_file"]).write_text(json.dumps(result))
    _say(events, {"phase": "done", "result": result})
    return exitcodes.OK


def _forked_trial(cfg: dict[str, Any], events: TextIO) -> None:
    """The body of a process forked by the zygote; never returns."""
    code = 1
    try:
        os.close(0)  # the zygote's config pipe is not ours
        os.open(os.devnull, os.O_RDONLY)
        _say(events, {"phase": "forked", "pid": os.getpid()})
        code = run_to_result(cfg, events)
    except BaseException:  # noqa: BLE001 - a crash fails the trial, never the zygote
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # skip TensorFlow's teardown: the result is already handed over


def zygote(event_fd: int) -> int:
    """Fork one trial process per config line on stdin, one at a time; EOF or an empty line
    ends the zygote."""
    import tensorflow  # noqa: F401 - imported once here, inherited by every trial process

    with os.fdopen(event_fd, "w") as events:
        _say(events, {"phase": "zygote-ready", "pid": os.getpid()})
        for line in sys.stdin:
            if not line.strip():
                break
            cfg = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _forked_trial(cfg, events)
            _pid, status = os.waitpid(pid, 0)
            _say(events, {"phase": "exited", "pid": pid,
                          "code": os.waitstatus_to_exitcode(status)})
    return exitcodes.OK


def main(argv: list[str]) -> int:
    """`CONFIG_JSON EVENT_FD`, `--warm EVENT_FD` (import TensorFlow first, then read the config
    as one line on stdin) or `--zygote EVENT_FD` (see the module's docstring)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if argv[0] == "--zygote":
        return zygote(int(argv[1]))
    if argv[0] == "--warm":
        import tensorflow  # noqa: F401 - the point of warming up

        line = sys.stdin.readline()
        if not line.strip():
            return exitcodes.OK  # the worker no longer needs this spare process
        cfg = json.loads(line)
        argv = [line, argv[1]]
    else:
        cfg = json.loads(argv[0])
    with os.fdopen(int(argv[1]), "w") as events:
        return run_to_result(cfg, events)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
