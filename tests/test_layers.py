"""The import rules of the README's architecture section, checked on the source tree.

Product packages never import the local stand-ins; `fleet` never imports the areas it
dispatches to (only `fleet/cli.py` names them, as strings); `serving` is independent.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> top-level packages it must never import
FORBIDDEN = {
    "fleet": {"tui", "serving", "tuning", "devcluster"},
    "tui": {"serving", "tuning", "devcluster"},
    "serving": {"fleet", "tui", "tuning", "devcluster"},
    "tuning": {"tui", "devcluster"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_follow_the_layer_rules(package: str) -> None:
    bad = []
    for path in sorted((REPO / package).rglob("*.py")):
        hits = _imports(path) & FORBIDDEN[package]
        if hits:
            bad.append(f"{path.relative_to(REPO)} imports {sorted(hits)}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\nfrom devcluster.runner import pod\nimport tui.app as t\n")
    assert _imports(f) == {"os", "devcluster", "tui"}


# The TUI's view model renders records and plans; it never drives a terminal or the API.
VIEWMODEL_FORBIDDEN_PREFIXES = (
    "textual", "fleet.kube", "fleet.api_client", "fleet.cache", "fleet.ops", "fleet.portforward",
    "fleet.proxy", "fleet.credentials", "fleet.scope", "urllib3", "requests", "kubernetes",
    "subprocess",
)


def _modules(path: Path) -> set[str]:
    """Full dotted names a file imports (`from a import b` counts as `a` and `a.b`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _viewmodel_violations(path: Path) -> list[str]:
    bad = []
    for name in sorted(_modules(path)):
        if name.startswith(VIEWMODEL_FORBIDDEN_PREFIXES):
            bad.append(name)
        elif (name == "tui" or name.startswith("tui.")) and not name.startswith("tui.viewmodel"):
            bad.append(name)  # the app, screens, widgets, backend sit above the view model
    return bad


def test_the_view_model_imports_neither_textual_nor_a_client_nor_the_app() -> None:
    files = sorted((REPO / "tui" / "viewmodel").rglob("*.py"))
    assert len(files) >= 9, "the view model's modules moved; update this test"
    bad = [f"{f.relative_to(REPO)} imports {v}" for f in files if (v := _viewmodel_violations(f))]
    assert not bad, "\n".join(bad)


def test_the_view_model_checker_sees_textual_a_client_and_the_app(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from textual.widgets import Static\nfrom fleet import kube\n"
                 "from tui.backend import Backend\nfrom tui.viewmodel.plans import Plan\n"
                 "from fleet.model import Revision\n")
    assert _viewmodel_violations(f) == ["fleet.kube", "textual.widgets", "textual.widgets.Static",
                                        "tui.backend", "tui.backend.Backend"]
