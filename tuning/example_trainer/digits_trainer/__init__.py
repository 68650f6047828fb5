"""digits-trainer: the example `modelfleet.trainers` package (entry point `digits`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "digits-trainer"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a source tree, not installed
    __version__ = "0+unknown"
