"""Mutation check: every named mutant must make a test fail; plus an optional automatic pass.

    .venv/bin/python -m bench.mutation.run            # named mutants (bench/mutation/mutants.py)
    .venv/bin/python -m bench.mutation.run --auto 40  # + up to 40 operator mutants per module

Operator mutants are never made inside decorators (`_declarations`): the one rule that keeps
equivalent mutants out, rather than a list of ids.

Works on a copy of the tree in a temporary directory (the checkout is never touched, so
tests others run at the same time are unaffected) and runs only CPU tests (-m "not cluster").
A mutant is killed when its tests fail; "stale" when its original text is no longer found.
Prints killed/total per module and writes bench/mutation/results.json.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.mutation.mutants import CACHE, MUTANTS, OPS, TUI

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache",
                                "*.egg-info", "results*.json", "node_modules")
AUTO_MODULES = {
    "fleet/cache.py": CACHE,
    "tui/viewmodel/plans.py": TUI[:1] + ["tests/tui/test_app_fake.py"],
    **{f"fleet/ops/{m}.py": OPS + TUI[:1] for m in (
        "_common", "access", "bulk", "history", "probes", "restart", "rollback", "rollout",
        "scale", "status")},
}


def run_tests(tree: Path, tests: list[str], timeout: float) -> tuple[bool, float]:
    """(killed, seconds): the tests failed (or hung) on the mutated tree."""
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-m", "not cluster", *tests]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_PROXY": "127.0.0.1,localhost"}
    try:
        rc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return True, time.monotonic() - t0
    if rc not in (0, 1):
        raise RuntimeError(f"pytest exited {rc} for {tests}")
    return rc == 1, time.monotonic() - t0


def apply(tree: Path, module: str, old: str, new: str) -> str | None:
    """Mutate `module` in the copy; returns its original text (None if `old` is not unique)."""
    path = tree / module
    text = path.read_text()
    if text.count(old) != 1:
        return None
    path.write_text(text.replace(old, new))
    return text


# --- automatic operator mutants -----------------------------------------------------------
_SWAP = {ast.Lt: ast.GtE, ast.GtE: ast.Lt, ast.Gt: ast.LtE, ast.LtE: ast.Gt,
         ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
         ast.In: ast.NotIn, ast.NotIn: ast.In}


def _declarations(tree: ast.AST) -> set[int]:
    """ids of the nodes inside decorators: never mutated (the one rule for equivalent mutants).

    A decorator declares, it does not compute: `@dataclass(frozen=True, slots=True)` → False
    changes no result a test can see (`slots` is the memory layout; a write to a frozen record
    is a type error mypy reports, and no code does it), so such a mutant can only survive.
    """
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                out |= {id(n) for n in ast.walk(dec)}
    return out


def auto_mutants(source: str) -> list[tuple[str, str]]:
    """(description, mutated source) for every comparison flip, and/or swap, negated `if`,
    and integer/bool constant change outside docstrings and decorators (`_declarations`)."""
    tree = ast.parse(source)
    skip = _declarations(tree)
    sites: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in _SWAP:
                    sites.append(("cmp", id(node) * 10 + i))
        elif isinstance(node, ast.BoolOp):
            sites.append(("bool", id(node)))
        elif isinstance(node, ast.If):
            sites.append(("if", id(node)))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            sites.append(("const", id(node)))
    out = []
    for kind, ident in sites:
        t = ast.parse(source)
        # ids differ between parses: locate the same site by walk order
        nodes_a = list(ast.walk(tree))
        nodes_b = list(ast.walk(t))
        target_id = ident // 10 if kind == "cmp" else ident
        idx = next(i for i, n in enumerate(nodes_a) if id(n) == target_id)
        node = nodes_b[idx]
        line = getattr(node, "lineno", 0)
        if kind == "cmp":
            i = ident % 10
            node.ops[i] = _SWAP[type(node.ops[i])]()
            desc = f"line {line}: flip comparison"
        elif kind == "bool":
            node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            desc = f"line {line}: and/or swap"
        elif kind == "if":
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            desc = f"line {line}: negate if"
        else:
            v = node.value
            node.value = (not v) if isinstance(v, bool) else (v + 1 if v == 0 else 0)
            desc = f"line {line}: constant {v!r} -> {node.value!r}"
        out.append((desc, ast.unparse(t)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--auto", type=int, default=0, help="operator mutants per module (sampled)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=240.0)
    ap.add_argument("--only", help="run the named mutants whose id contains this")
    args = ap.parse_args()
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fleet-mutation-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORE)
        ok, _ = run_tests(tree, sorted(set(TUI + CACHE + OPS)), args.timeout)
        if ok:
            print("the unmutated tree fails its tests: fix that first", file=sys.stderr)
            return 2
        for ident, module, old, new, tests in MUTANTS:
            if args.only and args.only not in ident:
                continue
            original = apply(tree, module, old, new)
            if original is None:
                results.append({"kind": "named", "id": ident, "module": module,
                                "status": "stale"})
                print(f"STALE    {ident} ({module})", flush=True)
                continue
            try:
                killed, secs = run_tests(tree, tests, args.timeout)
            finally:
                (tree / module).write_text(original)
            status = "killed" if killed else "survived"
            results.append({"kind": "named", "id": ident, "module": module, "status": status,
                            "seconds": round(secs, 1)})
            print(f"{status.upper():8} {ident} ({module}, {secs:.1f}s)", flush=True)
        if args.auto:
            rng = random.Random(args.seed)
            for module, tests in AUTO_MODULES.items():
                source = (tree / module).read_text()
                mutants = auto_mutants(source)
                for desc, mutated in rng.sample(mutants, min(args.auto, len(mutants))):
                    (tree / module).write_text(mutated)
                    try:
                        killed, secs = run_tests(tree, tests, args.timeout)
                    finally:
                        (tree / module).write_text(source)
                    status = "killed" if killed else "survived"
                    results.append({"kind": "auto", "id": desc, "module": module,
                                    "status": status, "seconds": round(secs, 1)})
                    print(f"{status.upper():8} {module} {desc} ({secs:.1f}s)", flush=True)
    by: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if r["status"] == "stale":
            continue
        for key in ((r["kind"], r["module"]), (r["kind"], "ALL")):
            by[key][1] += 1
            by[key][0] += r["status"] == "killed"
    print("\nkind   module                      killed/total")
    for (kind, module), (k, n) in sorted(by.items()):
        print(f"{kind:6} {module:27} {k}/{n} ({100 * k / n:.0f} %)")
    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps({"results": results, "summary": {
        f"{k}:{m}": v for (k, m), v in sorted(by.items())}}, indent=1))
    stale = [r["id"] for r in results if r["status"] == "stale"]
    survived = [r["id"] for r in results if r["kind"] == "named" and r["status"] == "survived"]
    if stale or survived:
        print(f"named mutants survived: {survived}; stale: {stale}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
