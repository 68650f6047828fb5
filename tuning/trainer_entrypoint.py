"""The trainer image's entrypoint: install the code, stage the data, train, publish.

Runs as the container's main process (`python -m tuning.trainer_entrypoint`); configuration
comes from the environment the training Job sets (`tuning.jobs`), so the same image serves
`fleet train`, distributed training and re-training. Steps, each logged with its time:

1. install the training code (wheel/sdist from hdfs:// or a path) into a per-pod environment
   that sees the image's TensorFlow (`tuning.code_install`);
2. stage the dataset version to local disk once (`tuning.staging`);
3. with NUM_WORKERS > 1: build TF_CONFIG from the Indexed Job's index and wait for the peers;
4. train in a child process of the per-pod environment (`tuning.train_run`), which exports,
   evaluates and (chief only) publishes the model in serving's layout under OUTPUT_URI/<n>/.

Progress goes to the log and, on the chief, to the Job's `modelfleet.io/progress` annotation.
Exit codes: `tuning.exitcodes` (42: deterministic input error → the Job fails at once).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.store import StoreError
from tuning import exitcodes
from tuning.contract import TrainerError
from tuning.progress import JobProgress

log = logging.getLogger("trainer")
TERMINATION_LOG = "/dev/termination-log"


@dataclass(frozen=True)
class TrainerConfig:
    code_uri: str
    data_uri: str
    output_uri: str
    epochs: int
    params: dict[str, Any]
    webhdfs_url: str = ""
    job: str = ""
    pod: str = ""
    namespace: str = ""
    workers: int = 1
    index: int = 0
    tf_config: dict[str, Any] | None = None
    collective_timeout_s: float = 120.0
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    gpus: int = 0
    source: str = ""  # what asked for this training (fleet train, retrain CronJob, sweep)
    promote_deployment: str = ""  # re-training: promote the result into this Deployment
    promote_min_delta: float = 0.0
    cronjob: str = ""  # re-training: the CronJob to record the outcome on

    @classmethod
    def from_env(cls, env: dict[str, str]) -> TrainerConfig:
        from tuning import distributed

        missing = [k for k in ("CODE_URI", "DATA_URI", "OUTPUT_URI") if not env.get(k)]
        if missing:
            raise TrainerError(f"{', '.join(missing)} not set (the training Job sets them; "
                               "run through `fleet train`)")
        try:
            epochs = int(env.get("EPOCHS", "10"))
        except ValueError:
            raise TrainerError(f"EPOCHS={env.get('EPOCHS')!r} is not an integer") from None
        if not 1 <= epochs <= 100_000:
            raise TrainerError(f"EPOCHS={epochs} must be between 1 and 100000")
        try:
            params = json.loads(env.get("TRAIN_PARAMS") or "{}")
        except ValueError as exc:
            raise TrainerError(f"TRAIN_PARAMS is not JSON: {exc}") from exc
        if not isinstance(params, dict):
            raise TrainerError("TRAIN_PARAMS must be a JSON object of name: value")
        index, workers, tf_config = distributed.from_env(env)
        gpus_env = env.get("CUDA_VISIBLE_DEVICES", "")
        gpus = len([g for g in gpus_env.split(",") if g.strip()]) if gpus_env else 0
        try:
            timeout = float(env.get("COLLECTIVE_TIMEOUT", "120"))
        except ValueError:
            raise TrainerError("COLLECTIVE_TIMEOUT is not a number") from None
        return cls(
            code_uri=env["CODE_URI"], data_uri=env["DATA_URI"], output_uri=env["OUTPUT_URI"],
            epochs=epochs, params=params, webhdfs_url=env.get("WEBHDFS_URL", ""),
            job=env.get("JOB_NAME", ""), pod=env.get("POD_NAME", env.get("HOSTNAME", "")),
            namespace=env.get("POD_NAMESPACE", ""), workers=workers, index=index,
            tf_config=tf_config, collective_timeout_s=timeout,
            work_dir=Path(env.get("WORK_DIR") or tempfile.gettempdir()), gpus=gpus,
            source=env.get("TRAIN_SOURCE", ""),
            promote_deployment=env.get("PROMOTE_DEPLOYMENT", ""),
            promote_min_delta=_float_env(env, "PROMOTE_MIN_DELTA", 0.0),
            cronjob=env.get("CRONJOB_NAME", ""))


def _float_env(env: dict[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        raise TrainerError(f"{name}={env.get(name)!r} is not a number") from None


def _api_client(cfg: TrainerConfig) -> Any | None:
    """The pod's in-cluster client for progress patches (chief only), or None."""
    if cfg.index != 0 or not cfg.job or not cfg.namespace:
        return None
    from fleet.kube import KubeClient
    from fleet.kubeconfig import in_cluster_available, in_cluster_credentials

    if not in_cluster_available():
        log.info("no service-account token mounted: progress goes to this log only")
        return None
    return KubeClient(in_cluster_credentials(cfg.namespace), timeout=10.0)


def _write_termination_message(text: str) -> None:
    try:
        with open(os.environ.get("TERMINATION_LOG", TERMINATION_LOG), "w") as fh:
            fh.write(text[:4000])
    except OSError:
        pass  # not in a pod (or the path is not writable): the log has it too


def _wait_for_peers(cfg: TrainerConfig) -> None:
    from tuning import distributed

    hosts = [h.rpartition(":")[0] for h in (cfg.tf_config or {})["cluster"]["worker"]]
    started = time.perf_counter()
    distributed.wait_for_peers(hosts, timeout_s=max(cfg.collective_timeout_s, 60.0))
    log.info("all %d workers resolve (%.1f s): %s", cfg.workers, time.perf_counter() - started,
             ", ".join(hosts))


def _run_child(cfg: TrainerConfig, python: Path, entry_point: str, data_dir: Path,
               code_version: str, data_info: dict[str, Any], progress: JobProgress) -> dict:
    """Train in the per-pod environment; relay its progress lines; return its result."""
    result_file = cfg.work_dir / "result.json"
    result_file.unlink(missing_ok=True)
    job_cfg = {
        "entry_point": entry_point, "data_dir": str(data_dir),
        "work_dir": str(cfg.work_dir / "train"), "params": cfg.params, "epochs": cfg.epochs,
        "workers": cfg.workers, "index": cfg.index, "tf_config": cfg.tf_config,
        "collective_timeout_s": cfg.collective_timeout_s, "gpus": cfg.gpus,
        "output_uri": cfg.output_uri, "webhdfs_url": cfg.webhdfs_url,
        "result_file": str(result_file),
        "provenance": {"job": cfg.job, "pod": cfg.pod, "namespace": cfg.namespace,
                       "code_uri": cfg.code_uri, "code_version": code_version,
                       "data_uri": cfg.data_uri, "dataset": data_info,
                       "params": cfg.params, "epochs": cfg.epochs, "source": cfg.source},
    }
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if cfg.tf_config:
        env["TF_CONFIG"] = json.dumps(cfg.tf_config)
    child = subprocess.Popen(
        [str(python), "-m", "tuning.train_run", json.dumps(job_cfg), str(write_fd)],
        pass_fds=(write_fd,), env=env)
    os.close(write_fd)
    with os.fdopen(read_fd) as events:
        for line in events:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("phase") == "done":  # the result (also in result_file): not a phase
                continue
            event.pop("metrics", None)  # the annotation keeps the headline metric only
            progress.update(**event)
    code = child.wait()
    if code == exitcodes.DETERMINISTIC:
        reason = progress.state.get("message") or "training failed on its inputs (see log)"
        raise TrainerError(str(reason))
    if code != 0:
        raise RuntimeError(f"training process exited with {code}"
                           + (f" (signal {-code})" if code < 0 else ""))
    return json.loads(result_file.read_text()) if result_file.is_file() else {}


def _skip_if_trained(cfg: TrainerConfig, client: Any) -> str:
    """Re-training: why this run has nothing new to train (the live model already used the
    newest data version with this code), or "" to go on."""
    from fleet.ops._common import get_deployment
    from serving.store import Store
    from tuning.promote import live_model
    from tuning.retrain import already_trained
    from tuning.staging import resolve_version

    data_version = resolve_version(cfg.data_uri, cfg.webhdfs_url)
    base, version = live_model(get_deployment(client, cfg.namespace, cfg.promote_deployment))
    try:
        meta = Store(base, webhdfs_url=cfg.webhdfs_url).read_metadata(version)
    except StoreError:
        return ""
    if already_trained(meta, data_version, cfg.code_uri):
        return (f"{cfg.promote_deployment} already serves a model trained on {data_version} "
                "with this code; nothing to re-train")
    return ""


def run(cfg: TrainerConfig, progress: JobProgress) -> dict[str, Any]:
    from tuning.code_install import install
    from tuning.staging import stage

    if cfg.promote_deployment and progress.client is not None:
        why = _skip_if_trained(cfg, progress.client)
        if why:
            log.info("%s", why)
            return {"skipped": why}
    progress.update(phase="installing", epochs=cfg.epochs)
    code = install(cfg.code_uri, cfg.work_dir / "code", cfg.webhdfs_url)
    log.info("installed %s from %s: %.1f kB fetched in %.2f s, installed in %.2f s "
             "(environment %s, entry point %s)", code.code_version, cfg.code_uri,
             code.bytes / 1e3, code.fetch_seconds, code.install_seconds, code.python.parent.parent,
             code.entry_point)
    progress.update(phase="staging", message=f"code {code.code_version}")
    data = stage(cfg.data_uri, cfg.work_dir / "data", cfg.webhdfs_url)
    log.info("staged dataset %s version %s from %s: %.2f MB in %.2f s (%.1f MB/s)",
             data.info.get("name", "?"), data.version, data.uri, data.bytes / 1e6, data.seconds,
             data.mb_per_s)
    if cfg.workers > 1:
        _wait_for_peers(cfg)
    progress.update(phase="training", message=f"data {data.info.get('name', '')} "
                                              f"v{data.version}")
    info = {**data.info, "uri": data.uri}
    return _run_child(cfg, code.python, code.entry_point, data.local_dir, code.code_version,
                      info, progress)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    progress = JobProgress(None, "", "")
    try:
        cfg = TrainerConfig.from_env(dict(os.environ))
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
        progress = JobProgress(_api_client(cfg), cfg.namespace, cfg.job)
        log.info("trainer %s/%s: worker %d of %d, %s, code %s, data %s, output %s",
                 cfg.namespace or "-", cfg.pod or "-", cfg.index, cfg.workers,
                 f"{cfg.gpus} GPU(s) allocated" if cfg.gpus else "no GPU allocated",
                 cfg.code_uri, cfg.data_uri, cfg.output_uri)
        result = run(cfg, progress)
    except TrainerError as exc:
        reason = str(exc)
        log.error("deterministic failure (exit %d, not retried): %s", exitcodes.DETERMINISTIC,
                  reason)
        progress.fail(reason)
        _write_termination_message(reason)
        return exitcodes.DETERMINISTIC
    except (StoreError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.error("failed (exit %d, retried up to the Job's backoffLimit): %s",
                  exitcodes.RETRYABLE, reason)
        progress.update(phase="failed", message=reason)
        progress.flush()
        _write_termination_message(reason)
        return exitcodes.RETRYABLE
    if cfg.promote_deployment:
        code = _promote_and_record(cfg, progress, result)
        if code != exitcodes.OK:
            return code
    done = {"phase": "done"}
    if result.get("skipped"):
        done["message"] = result["skipped"]
    if result.get("model_uri"):
        done.update(model_uri=result["model_uri"], metric=result.get("metric"),
                    value=result.get("value"),
                    message=f"published {result['model_uri']}")
        log.info("published %s (holdout %s %s)", result["model_uri"], result.get("metric"),
                 result.get("value"))
    progress.update(**done)
    progress.flush()
    _write_termination_message(json.dumps(result, sort_keys=True))
    return exitcodes.OK


def _promote_and_record(cfg: TrainerConfig, progress: JobProgress,
                        result: dict[str, Any]) -> int:
    """Re-training's last step: guarded promotion, outcome recorded on the CronJob."""
    from tuning.promote import PromotionError, promote
    from tuning.retrain import record_outcome

    client = progress.client
    if client is None:
        log.error("re-training needs API access (the fleet-retrainer service account) to "
                  "promote into %s", cfg.promote_deployment)
        return exitcodes.DETERMINISTIC
    outcome: dict[str, Any] = {"job": cfg.job}
    code = exitcodes.OK
    if result.get("skipped"):
        outcome.update(result="skipped", detail=result["skipped"])
    else:
        try:
            p = promote(client, cfg.namespace, cfg.promote_deployment, result["model_uri"],
                        min_delta=cfg.promote_min_delta,
                        source=f"retrain {cfg.cronjob or '-'}, job {cfg.job}",
                        webhdfs_url=cfg.webhdfs_url, say=lambda t: log.info("promote: %s", t))
            outcome.update(result=p.result, detail=p.detail, model_uri=p.candidate_uri)
            log.info("promotion %s: %s", p.result, p.detail)
        except (PromotionError, StoreError) as exc:
            outcome.update(result="failed", detail=str(exc), model_uri=result["model_uri"])
            log.error("promotion failed: %s", exc)
            code = exitcodes.DETERMINISTIC
    if cfg.cronjob:
        try:
            record_outcome(client, cfg.namespace, cfg.cronjob, outcome)
        except Exception as exc:  # the outcome is in the log either way
            log.warning("could not record the outcome on cronjob %s: %s", cfg.cronjob, exc)
    return code


if __name__ == "__main__":
    sys.exit(main())
