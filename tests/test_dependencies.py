"""Declared dependencies are the imported ones: the product's third-party imports are plain
dependencies, the local stand-ins' extra ones are in the `local` extra, nothing is declared
that no code imports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"fleet", "tui", "serving", "tuning", "devcluster", "tests", "bench",
               "digits_trainer"}
PRODUCT = ("fleet", "tui", "serving", "tuning")
# Declared for what they bring at run time, not imported by name: the SQLAlchemy driver
# (postgresql+psycopg) and TensorFlow's CPU wheel (imported as `tensorflow`).
NOT_IMPORTED_BY_NAME = {"psycopg", "tensorflow-cpu", "textual-plotext"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        if "example_trainer" in path.parts:
            continue  # its own distribution with its own pyproject.toml
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in FIRST_PARTY}


def _distributions(modules: set[str]) -> set[str]:
    mapping = metadata.packages_distributions()
    out = set()
    for m in modules:
        dists = mapping.get(m)
        assert dists, f"no installed distribution provides the module {m!r}"
        out |= {_norm(d) for d in dists}
    return out


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]

    def names(deps: list[str]) -> set[str]:
        return {_norm(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in deps}

    extras = {k: names(v) for k, v in project.get("optional-dependencies", {}).items()}
    return names(project["dependencies"]), extras


def test_product_imports_are_plain_dependencies() -> None:
    deps, _ = _declared()
    used = _distributions(set().union(*(_imports(p) for p in PRODUCT)))
    missing = sorted(d for d in used if d not in deps and d != "tensorflow")
    assert not missing, f"imported by the product but not in [project].dependencies: {missing}"


def test_local_stand_ins_need_only_dependencies_plus_the_local_extra() -> None:
    deps, extras = _declared()
    used = _distributions(_imports("devcluster"))
    missing = sorted(d for d in used if d not in deps | extras["local"] and d != "tensorflow")
    assert not missing, f"imported by devcluster/ but not declared: {missing}"


def test_every_declared_dependency_is_imported_somewhere() -> None:
    deps, extras = _declared()
    used = _distributions(set().union(*(_imports(p) for p in (*PRODUCT, "devcluster"))))
    used |= {"tensorflow-cpu"} if "tensorflow" in used else set()
    unused = sorted(d for d in deps | extras["local"]
                    if d not in used and d not in NOT_IMPORTED_BY_NAME)
    assert not unused, f"declared but never imported: {unused}"
