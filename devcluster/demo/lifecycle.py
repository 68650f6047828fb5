"""The model's whole life on the demo cluster: trainer published, one training run, sweeps.

After the live deployments (`devcluster.demo.real`), `make demo`

1. publishes the digits trainer wheel and dataset to HDFS (`fleet train publish-example`),
2. runs one real training Job, `digits-train`, on the process kubelet (1 GPU, a few epochs;
   `fleet train digits-train --wait` semantics, with its progress lines),
3. launches the sweep `digits-sweep` (8 trials in 2 worker pods of 1 GPU each) whose winner is
   auto-promoted into `digits-throughput` (the healthy live deployment: `digits-latency` is
   left in its stalled rollout), and `digits-sweep-big`, whose 2 pods want 4 GPUs each on the
   4-GPU runner node: they wait Pending, GPU-starved, while `digits-sweep` holds GPUs.

The sweeps run in the background while the TUI is open. Every step is idempotent: a Job that
already exists is left as it is (a finished run is not repeated, a sweep is never relaunched).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from devcluster.demo.real import LIVE, NAMESPACE
from fleet.errors import NotFound

Say = Callable[[str], None]

RUNTIME_CLASS = "fleet-local"
EXAMPLE = "/examples/digits"  # publish-example target: code/<wheel>, data/1/
TRAIN_JOB = "digits-train"
TRAIN_OUTPUT = "/models/digits-train"
TRAIN_EPOCHS = 3
TRAIN_GPUS = 1
TRAIN_TIMEOUT = 900.0  # seconds; a loaded 2-core machine is slow to start TensorFlow
PROMOTE_TO = LIVE[1].name  # digits-throughput: LIVE[0] is left in a stalled rollout
RUNNER_GPUS = 4  # the demo's process-kubelet node (`fleet demo` starts it with 4)


@dataclass(frozen=True)
class DemoSweep:
    name: str
    output: str  # HDFS path of the trials' model store
    max_trials: int
    parallelism: int
    gpus: int  # per worker pod
    epochs: int
    promote: bool
    prune: bool
    about: str


SWEEPS = (
    DemoSweep("digits-sweep", "/models/digits-sweep", max_trials=8, parallelism=2, gpus=1,
              epochs=3, promote=True, prune=True,
              about=f"8 trials, 2 pods x 1 GPU; its winner is auto-promoted into {PROMOTE_TO}"),
    DemoSweep("digits-sweep-big", "/models/digits-sweep-big", max_trials=4, parallelism=2,
              gpus=RUNNER_GPUS, epochs=3, promote=False, prune=False,
              about=f"2 pods x {RUNNER_GPUS} GPUs on the {RUNNER_GPUS}-GPU runner node: waits "
                    "Pending for GPUs"),
)


# ---- what to create ---------------------------------------------------------------------

def train_spec(code: str, data: str, output: str, webhdfs_url: str) -> Any:
    """`fleet train digits-train --code … --data … --output … --gpus 1 --epochs 3`."""
    from tuning.jobs import TrainSpec

    return TrainSpec(name=TRAIN_JOB, namespace=NAMESPACE, code_uri=code, data_uri=data,
                     output_uri=output, gpus=TRAIN_GPUS, epochs=TRAIN_EPOCHS,
                     runtime_class=RUNTIME_CLASS, webhdfs_url=webhdfs_url, model="digits",
                     source="fleet demo", env=(("TF_CPP_MIN_LOG_LEVEL", "2"),))


def sweep_yaml(s: DemoSweep, code: str, data: str, output: str) -> str:
    """The spec a user would write for `fleet sweep launch` (storage comes from the cluster)."""
    doc: dict[str, Any] = {
        "name": s.name, "namespace": NAMESPACE, "code": code, "data": data, "output": output,
        "epochs": s.epochs, "params": {"seed": 7},
        # Ranges around the live model's settings (lr 3e-3, batch 64, 4 epochs): smaller
        # batches take more steps per epoch, so 3-epoch trials can beat it on the holdout.
        "search_space": {
            "learning_rate": {"type": "float", "low": 2.0e-3, "high": 1.0e-2, "log": True},
            "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
            "dense": {"type": "int", "low": 64, "high": 128, "step": 32},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "budget": {"max_trials": s.max_trials},
        "parallelism": s.parallelism, "gpus": s.gpus,
        # 8 trials is below TPE's 10 random startup trials: say what it really is
        "sampler": {"type": "random", "seed": 7},
        "pruner": {"type": "median", "warmup_steps": 1, "startup_trials": 3} if s.prune
        else {"type": "none"},
    }
    if s.promote:
        doc["promotion"] = {"deployment": PROMOTE_TO, "min_delta": 0.0, "auto_promote": True}
    return yaml.safe_dump(doc, sort_keys=False)


def sweep_spec(s: DemoSweep, code: str, data: str, output: str) -> tuple[Any, list[str]]:
    """The validated spec and its warnings (`tuning.sweep_spec.resolve`, as `launch` does)."""
    from tuning import sweep_spec as specs

    return specs.resolve(sweep_yaml(s, code, data, output), source=f"fleet demo ({s.name})")


# ---- reading the cluster ----------------------------------------------------------------

def get_job(client: Any, name: str) -> dict[str, Any] | None:
    from tuning.train_ops import path_of

    try:
        return client.get(path_of("Job", NAMESPACE, name))
    except NotFound:
        return None


def job_state(job: dict[str, Any]) -> str:
    """complete | failed | suspended | running, from the Job's conditions."""
    conds = {c.get("type") for c in (job.get("status") or {}).get("conditions") or []
             if c.get("status") == "True"}
    if "Complete" in conds:
        return "complete"
    if "Failed" in conds:
        return "failed"
    if (job.get("spec") or {}).get("suspend"):
        return "suspended"
    return "running"


def _sweep_line(client: Any, name: str, job: dict[str, Any]) -> str:
    from tuning import sweeps
    from tuning.sweep_commands import sweep_line

    return sweep_line(sweeps.job_row(job), sweeps.pod_states(client, NAMESPACE, name))


# ---- the steps --------------------------------------------------------------------------

def publish(hdfs: Any, say: Say) -> tuple[str, str]:
    """`fleet train publish-example --to hdfs://…/examples/digits`: (code URI, data URI)."""
    from tuning.example import publish_example

    return publish_example(hdfs.uri(EXAMPLE), webhdfs_url=hdfs.webhdfs_url,
                           say=lambda t: say(f"  {t}"))


def ensure_training(client: Any, code: str, data: str, hdfs: Any, say: Say, *,
                    timeout: float = TRAIN_TIMEOUT) -> str:
    """Run `digits-train` to its end unless it already exists; returns what was done."""
    from tuning import train_ops

    job = get_job(client, TRAIN_JOB)
    if job is not None:
        state = job_state(job)
        if state != "running":
            say(f"  job {NAMESPACE}/{TRAIN_JOB} is already {state}; left as it is"
                + (f" (kubectl delete job -n {NAMESPACE} {TRAIN_JOB} to train again)"
                   if state == "failed" else ""))
            return ""
        say(f"  job {NAMESPACE}/{TRAIN_JOB} is still running; following it")
        done = "followed"
    else:
        spec = train_spec(code, data, hdfs.uri(TRAIN_OUTPUT), hdfs.webhdfs_url)
        say(f"  training {NAMESPACE}/{TRAIN_JOB}: {TRAIN_EPOCHS} epochs on {TRAIN_GPUS} GPU "
            f"(fleet train {TRAIN_JOB} --gpus {TRAIN_GPUS} --epochs {TRAIN_EPOCHS} --wait)")
        train_ops.create(client, spec, lambda t: say(f"    {t}"))
        done = "trained"
    try:
        run = train_ops.follow(client, NAMESPACE, TRAIN_JOB, timeout=timeout,
                               on_progress=lambda t: say(f"    {t}"),
                               unschedulable_after=120.0)
    except train_ops.TrainFailed as exc:
        raise RuntimeError(f"training job {TRAIN_JOB} {exc.message} (kubectl logs -n "
                           f"{NAMESPACE} job/{TRAIN_JOB})") from exc
    say(f"  job {TRAIN_JOB} complete" + (f": model {run.result}" if run.result else ""))
    return f"{done} {TRAIN_JOB}"


def _wait(pred: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(interval)


def _scheduled(client: Any, name: str, want: int) -> bool:
    """`want` worker pods of the sweep are bound to a node (they hold their GPUs)."""
    from fleet.kube import collection_path

    pods = client.get(collection_path("v1", "pods", NAMESPACE),
                      {"labelSelector": f"batch.kubernetes.io/job-name={name}"})["items"]
    return sum(1 for p in pods if (p.get("spec") or {}).get("nodeName")) >= want


def ensure_sweeps(client: Any, code: str, data: str, hdfs: Any, storage: str, say: Say, *,
                  settle: float = 60.0) -> list[str]:
    """Launch the demo's sweeps that do not exist yet (in order); returns what was launched.

    The first one's pods are given `settle` seconds to be scheduled before the GPU-hungry one
    is launched, so that it is the one left waiting for GPUs."""
    import optuna

    from tuning import sweeps

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created …" says launch
    done = []
    for s in SWEEPS:
        job = get_job(client, s.name)
        if job is not None:
            say(f"  sweep {s.name} exists ({_sweep_line(client, s.name, job)}); left as it is")
            continue
        spec, warns = sweep_spec(s, code, data, hdfs.uri(s.output))
        for w in warns:
            say(f"  warning: {s.name}: {w}")
        say(f"  launching sweep {s.name}: {s.about}")
        launched = sweeps.launch(client, spec, warns, storage, runtime_class=RUNTIME_CLASS,
                                 webhdfs_url=hdfs.webhdfs_url, image=_image(),
                                 say=lambda t: say(f"    {t}"))
        done.append(f"launched {launched.name}")
        if s.gpus * s.parallelism <= RUNNER_GPUS:
            pods = spec.effective_parallelism
            if not _wait(lambda s=s, pods=pods: _scheduled(client, s.name, pods), settle):
                say(f"    (its pods are not scheduled after {settle:.0f} s yet)")
        else:
            why = _wait(lambda s=s: sweeps.pod_states(client, NAMESPACE, s.name)
                        ["pending_reason"], settle / 2)
            if why:
                say(f"    Pending: {why}")
    return done


def _image() -> str:
    from tuning.jobs import DEFAULT_IMAGE

    return DEFAULT_IMAGE


def seed_lifecycle(client: Any, hdfs: Any, storage: str, say: Say) -> list[str]:
    """Publish the trainer, train once, launch the sweeps: what is missing of it."""
    missing_train = get_job(client, TRAIN_JOB) is None
    missing_sweeps = [s.name for s in SWEEPS if get_job(client, s.name) is None]
    code = data = ""
    if missing_train or missing_sweeps:
        say(f"  publishing the digits trainer and dataset to {hdfs.uri(EXAMPLE)}")
        code, data = publish(hdfs, say)
    done = []
    trained = ensure_training(client, code, data, hdfs, say)
    if trained:
        done.append(trained)
    done += ensure_sweeps(client, code, data, hdfs, storage, say)
    return done


def follow_hints() -> list[str]:
    return [f"fleet sweep show {s.name} -n {NAMESPACE}" for s in SWEEPS]
