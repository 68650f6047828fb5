"""fleet's own config file: which namespaces to watch when RBAC forbids listing them all.

The file is `$FLEET_CONFIG`, else `$XDG_CONFIG_HOME/modelfleet/config.yaml` (by default
`~/.config/modelfleet/config.yaml`); it is optional. Its keys:

    namespaces: [team-a, team-b]        # for every context
    contexts:
      prod:
        namespaces: [team-a]            # for the kubeconfig context `prod` (wins over the above)

Unknown keys are ignored (newer versions may add some); a bad YAML document or a key of the
wrong type is a `ConfigError` naming the file and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleet.errors import ConfigError

ENV_VAR = "FLEET_CONFIG"
# a namespace name is a DNS-1123 label
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class FleetConfig:
    """The parsed file (empty when there is none)."""

    path: Path | None = None
    namespaces: tuple[str, ...] = ()
    context_namespaces: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def namespaces_for(self, context: str | None) -> list[str]:
        """The namespaces configured for `context`: its own list, else the global one."""
        if context is not None and context in self.context_namespaces:
            return list(self.context_namespaces[context])
        return list(self.namespaces)


def config_path() -> tuple[Path, bool]:
    """(where the config file is, whether `$FLEET_CONFIG` named it explicitly)."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit).expanduser(), True
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "modelfleet" / "config.yaml", False


def load_config(path: Path | str | None = None) -> FleetConfig:
    """Read the config file (`path`, else `config_path()`); a missing default file is empty,
    a missing `$FLEET_CONFIG` or explicit path is an error."""
    import yaml  # local import keeps `fleet --help` fast

    if path is None:
        where, explicit = config_path()
    else:
        where, explicit = Path(path), True
    try:
        text = where.read_text()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"fleet config file {where}: no such file") from None
        return FleetConfig()
    except OSError as exc:
        raise ConfigError(f"fleet config file {where}: {exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"fleet config file {where}: invalid YAML: {exc}") from exc
    if doc is None:
        return FleetConfig(path=where)
    if not isinstance(doc, dict):
        raise ConfigError(f"fleet config file {where}: expected a mapping of keys "
                          f"(e.g. `namespaces: [team-a]`), got {_kind(doc)}")
    namespaces = _namespaces(doc, "namespaces", where, "namespaces")
    contexts = doc.get("contexts")
    per_context: dict[str, tuple[str, ...]] = {}
    if contexts is not None:
        if not isinstance(contexts, dict):
            raise ConfigError(f"fleet config file {where}: key `contexts` must be a mapping of "
                              f"context name to settings, got {_kind(contexts)}")
        for name, settings in contexts.items():
            key = f"contexts.{name}"
            if settings is None:
                continue
            if not isinstance(settings, dict):
                raise ConfigError(f"fleet config file {where}: key `{key}` must be a mapping "
                                  f"(e.g. `namespaces: [team-a]`), got {_kind(settings)}")
            if "namespaces" in settings:
                per_context[str(name)] = _namespaces(settings, "namespaces", where,
                                                     f"{key}.namespaces")
    return FleetConfig(path=where, namespaces=namespaces, context_namespaces=per_context)


def _namespaces(doc: dict[str, Any], name: str, where: Path, key: str) -> tuple[str, ...]:
    value = doc.get(name)
    if value is None:
        return ()
    if isinstance(value, str):  # `namespaces: team-a` or `namespaces: a,b`: be kind
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"fleet config file {where}: key `{key}` must be a list of "
                          f"namespace names, got {_kind(value)}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not _NAMESPACE.match(item):
            raise ConfigError(f"fleet config file {where}: key `{key}`: {item!r} is not a "
                              "namespace name (lowercase letters, digits and '-')")
        if item not in out:
            out.append(item)
    return tuple(out)


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
