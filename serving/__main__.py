"""Container entrypoint: `python -m serving` (configuration from env vars and flags)."""

from __future__ import annotations

import sys

from serving import config
from serving.server import configure_logging, run


def main(argv: list[str] | None = None) -> int:
    cfg = config.load(argv)
    configure_logging()
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
