"""Run the Sanic server for a configuration (one process, or several workers)."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

from serving.config import ServingConfig

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # serving.metrics.MULTIPROC_ENV (not imported yet)


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _worker_app(cfg: ServingConfig) -> object:
    """App factory for Sanic worker processes (spawned: configure logging again)."""
    from serving.app import create_app

    configure_logging()
    return create_app(cfg)


def metrics_dir() -> tuple[Path, bool]:
    """The shared directory of the workers' metric files: $PROMETHEUS_MULTIPROC_DIR, wiped of
    a previous run's files, or a new temporary one; (path, whether we created it). It goes into
    the environment before prometheus_client is imported, so every worker inherits it."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="serving-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def run(cfg: ServingConfig) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    if cfg.workers == 1:
        from serving.app import create_app

        app = create_app(cfg)
        app.run(host=cfg.host, port=cfg.port, single_process=True, access_log=False,
                motd=False)
        return 0
    path, created = metrics_dir()
    from prometheus_client import multiprocess
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=partial(_worker_app, cfg))
    app = loader.load()
    # The main process only supervises: drop its (never updated) live gauges, or its
    # model_ready 0 would hold the workers' minimum at 0.
    multiprocess.mark_process_dead(os.getpid(), str(path))
    app.prepare(host=cfg.host, port=cfg.port, workers=cfg.workers, access_log=False,
                motd=False)
    try:
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        if created:
            shutil.rmtree(path, ignore_errors=True)
    return 0
