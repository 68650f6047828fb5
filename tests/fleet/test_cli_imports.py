"""Lean start-up of `fleet rollback` (and any one command): parsing its command line imports
only the module that registers it, and running it against a plain client-cert/token
kubeconfig never loads the kubernetes package or another area's stack. Timing targets live
in bench/fleet/bench_ops.py, not here."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fleet import cli

# Never needed to parse or run `fleet rollback`.
HEAVY = ("tui", "textual", "serving", "tuning", "devcluster", "kubernetes", "optuna",
         "sqlalchemy", "tensorflow", "numpy", "sanic", "httpx", "cryptography")
# Other areas' parsers and the implementation: not needed to parse a rollback command line.
PARSE_ONLY_ABSENT = ("fleet.commands_deploy", "fleet.commands_pods", "fleet.model",
                     "fleet.kube", "fleet.ops.rollback", "urllib3", "ssl", "yaml", "orjson")


def _modules_after(code: str, *, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """Run `code` in a fresh interpreter; the modules loaded by the time it exits (also when
    it exits through SystemExit, as argparse's --help does) and its stderr."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('\\nMODULES ' + ' '.join(sys.modules)))\n" + code)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=60)
    line = proc.stdout.rpartition("MODULES ")[2]
    assert line, f"no module list (rc {proc.returncode}): {proc.stderr}"
    return set(line.split()), proc.stderr


def _loaded(mods: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in mods or any(m.startswith(n + ".") for m in mods))


def test_parsing_a_rollback_command_line_loads_only_fleet_commands():
    mods, _ = _modules_after(
        "from fleet import cli\n"
        "args = cli.build_parser('rollback').parse_args(['rollback', 'm', '-n', 'ns'])\n"
        "assert args.func and args.name == 'm'\n")
    assert "fleet.commands" in mods
    assert _loaded(mods, HEAVY + PARSE_ONLY_ABSENT) == []


def test_rollback_help_through_main_stays_lean():
    mods, _ = _modules_after("from fleet import cli\ncli.main(['rollback', '--help'])\n")
    assert _loaded(mods, HEAVY + PARSE_ONLY_ABSENT) == []


def test_rollback_run_with_token_kubeconfig_skips_kubernetes_and_other_areas(tmp_path: Path):
    with socket.socket() as s:  # a loopback port nobody listens on: the request is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": f"https://127.0.0.1:{port}",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()
           and k != "KUBECONFIG"} | {"KUBECONFIG": str(kc)}
    mods, err = _modules_after(
        "from fleet import cli\nsys.exit(cli.main(['rollback', 'm', '-n', 'ns']))\n", env=env)
    assert "fleet.ops.rollback" in mods and "fleet.kube" in mods, err  # it did run
    assert "127.0.0.1" in err  # the refused connection, reported
    assert _loaded(mods, HEAVY) == []
    assert "subprocess" not in mods  # only an exec-plugin user needs it


def test_commands_table_matches_what_each_module_registers():
    for module_name in cli.COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        sub = argparse.ArgumentParser().add_subparsers()
        module.register(sub)
        expected = sorted(n for n, m in cli.COMMANDS.items() if m == module_name)
        assert sorted(sub.choices) == expected, module_name


@pytest.mark.parametrize("argv", [["rollback", "m", "-n", "ns"], ["deploy", "--help"],
                                  ["cluster", "--help"]])
def test_one_command_parser_parses_like_the_whole_tree(argv: list[str], capsys):
    def parse(parser: argparse.ArgumentParser) -> tuple[str, str]:
        try:
            ns = vars(parser.parse_args(argv))
            ns.pop("func", None)
            return repr(sorted(ns.items())), ""
        except SystemExit:
            return "exit", capsys.readouterr().out

    assert parse(cli.build_parser(argv[0])) == parse(cli.build_parser())


def test_unknown_command_lists_every_choice(capsys):
    with pytest.raises(SystemExit):
        cli.main(["rollbak", "m"])
    err = capsys.readouterr().err
    assert "invalid choice: 'rollbak'" in err
    assert "rollback" in err and "deploy" in err and "sweep" in err


@pytest.mark.cluster
def test_rollback_against_the_local_cluster_stays_lean(cluster, namespace):
    from tests.fleet.clusterkit import IMAGE, settled, with_history

    with_history(cluster, namespace, "m", revisions=2)
    mods, err = _modules_after(
        "from fleet import cli\n"
        f"sys.exit(cli.main(['rollback', 'm', '-n', {namespace!r}]))\n", env=cluster.env)
    assert "fleet.ops.rollback" in mods, err
    image = settled(cluster, namespace, "m")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == IMAGE.format(1)  # it really rolled back
    assert _loaded(mods, HEAVY) == []
    assert "subprocess" not in mods
