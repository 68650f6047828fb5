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
