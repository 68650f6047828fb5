"""fleet's own config file (fleet/config.py): where it is, what it says, and its bad inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.config import FleetConfig, config_path, load_config
from fleet.errors import ConfigError


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FLEET_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_location_and_no_file_is_an_empty_config(tmp_path):
    assert config_path() == (tmp_path / ".config" / "modelfleet" / "config.yaml", False)
    assert load_config() == FleetConfig()
    assert load_config().namespaces_for("any") == []


def test_xdg_config_home_and_fleet_config_are_respected(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _write(tmp_path / "xdg" / "modelfleet" / "config.yaml", "namespaces: [team-a]\n")
    assert load_config().namespaces_for(None) == ["team-a"]
    other = _write(tmp_path / "elsewhere.yaml", "namespaces: [team-z]\n")
    monkeypatch.setenv("FLEET_CONFIG", str(other))
    assert config_path() == (other, True)
    cfg = load_config()
    assert cfg.path == other and cfg.namespaces_for(None) == ["team-z"]


def test_a_missing_explicit_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_config()


def test_per_context_namespaces_win_over_the_global_list(tmp_path):
    path = _write(tmp_path / "c.yaml", """\
namespaces: [team-a, team-b, team-a]
contexts:
  prod:
    namespaces: [team-p]
  staging: {}
  empty:
""")
    cfg = load_config(path)
    assert cfg.namespaces_for(None) == ["team-a", "team-b"]  # duplicates dropped
    assert cfg.namespaces_for("prod") == ["team-p"]
    assert cfg.namespaces_for("staging") == ["team-a", "team-b"]
    assert cfg.namespaces_for("empty") == ["team-a", "team-b"]


def test_a_comma_separated_string_is_accepted_and_an_empty_file_is_empty(tmp_path):
    assert load_config(_write(tmp_path / "a.yaml", "namespaces: a, b\n")).namespaces == ("a", "b")
    assert load_config(_write(tmp_path / "b.yaml", "")).namespaces == ()
    assert load_config(_write(tmp_path / "c.yaml", "other: 1\n")).namespaces == ()  # ignored


@pytest.mark.parametrize(("text", "match"), [
    ("namespaces: [a\n", r"invalid YAML"),
    ("- a\n- b\n", r"expected a mapping of keys .* got a list"),
    ("namespaces: {a: 1}\n", r"key `namespaces` must be a list of namespace names, got a mapping"),
    ("namespaces: 3\n", r"key `namespaces` must be a list .* got a number"),
    ("namespaces: [a, 7]\n", r"key `namespaces`: 7 is not a namespace name"),
    ("namespaces: [Team_A]\n", r"key `namespaces`: 'Team_A' is not a namespace name"),
    ("contexts: [prod]\n", r"key `contexts` must be a mapping of context name"),
    ("contexts:\n  prod: [a]\n", r"key `contexts.prod` must be a mapping"),
    ("contexts:\n  prod:\n    namespaces: true\n",
     r"key `contexts.prod.namespaces` must be a list .* got a boolean"),
])
def test_bad_inputs_name_the_file_and_the_key(tmp_path, text, match):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert info.value.message.startswith(f"fleet config file {path}: ")


def test_an_unreadable_file_is_an_error(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"dir\.yaml"):
        load_config(tmp_path / "dir.yaml")
