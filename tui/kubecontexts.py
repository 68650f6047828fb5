"""Context names from the kubeconfig files kubectl would read (for the context picker)."""

from __future__ import annotations

from fleet.kubeconfig import kubeconfig_paths


def list_contexts(explicit: str | None = None) -> list[str]:
    import yaml

    names: list[str] = []
    for path in kubeconfig_paths(explicit):
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for ctx in doc.get("contexts") or []:
            name = ctx.get("name")
            if name and name not in names:
                names.append(name)
    return names
