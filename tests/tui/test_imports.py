"""Start-up hygiene: parsing `fleet` arguments never loads Textual; the TUI never loads the
kubernetes client or the heavy serving/tuning stacks."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_tui_commands_does_not_import_textual():
    mods = _modules_after("import tui.commands, devcluster.demo.commands, fleet.cli\n"
                          "fleet.cli.build_parser()")
    assert "textual" not in mods


def test_tui_app_stays_light():
    mods = _modules_after("import tui.app, tui.backend, tui.screens.detail")
    heavy = {"kubernetes", "tensorflow", "optuna", "sklearn", "numpy"} & mods
    assert not heavy
