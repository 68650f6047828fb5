"""Run the Sanic server for a configuration (one process, or several workers)."""

from __future__ import annotations

import logging
import os
from functools import partial

from serving.config import ServingConfig


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


def run(cfg: ServingConfig) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from serving.app import create_app

    if cfg.workers == 1:
        app = create_app(cfg)
        app.run(host=cfg.host, port=cfg.port, single_process=True, access_log=False,
                motd=False)
        return 0
    loader = AppLoader(factory=partial(_worker_app, cfg))
    app = loader.load()
    app.prepare(host=cfg.host, port=cfg.port, workers=cfg.workers, access_log=False,
                motd=False)
    Sanic.serve(primary=app, app_loader=loader)
    return 0
