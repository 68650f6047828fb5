"""What an action will change, as text for the confirmation modal (pure, testable)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from rich.console import RenderableType
from rich.text import Text

from fleet.model import ModelDeployment

Key = tuple[str, str]


@dataclass(frozen=True)
class RevisionView:
    """One entry of a deployment's rollout history, normalised for display."""

    revision: int
    version: str
    model_uri: str
    image: str
    change_cause: str
    created: Any  # datetime | None
    template: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    current: bool = False


@dataclass
class Plan:
    action: str
    title: str
    lines: list[RenderableType]
    targets: list[Key]
    params: dict[str, Any] = field(default_factory=dict)


def _name(d: ModelDeployment | Key) -> str:
    ns, name = d.key if isinstance(d, ModelDeployment) else d
    return f"{ns}/{name}"


def _rev_label(r: RevisionView) -> str:
    bits = [f"revision {r.revision}"]
    if r.version:
        bits.append(f"version {r.version}")
    if r.change_cause:
        bits.append(f'"{r.change_cause}"')
    return ", ".join(bits)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def template_yaml(template: dict[str, Any]) -> str:
    """The pod template as YAML, without the controller's pod-template-hash label."""
    tpl = yaml.safe_load(yaml.safe_dump(template or {}))
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    labels.pop("pod-template-hash", None)
    return yaml.safe_dump(tpl, sort_keys=True, default_flow_style=False)


def template_diff(a: RevisionView, b: RevisionView) -> Text:
    """Unified diff of two revisions' pod templates, coloured."""
    lines = difflib.unified_diff(
        template_yaml(a.template).splitlines(),
        template_yaml(b.template).splitlines(),
        fromfile=f"revision {a.revision}",
        tofile=f"revision {b.revision}",
        lineterm="",
    )
    out = Text()
    for line in lines:
        style = ""
        if line.startswith("+") and not line.startswith("+++"):
            style = "green"
        elif line.startswith("-") and not line.startswith("---"):
            style = "red"
        elif line.startswith("@@"):
            style = "cyan"
        out.append(line + "\n", style=style)
    if not out.plain:
        out.append("(pod templates are identical)", style="dim")
    return out


def rollback_plan(
    d: ModelDeployment, history: Sequence[RevisionView], to_revision: int = 0
) -> Plan:
    """Roll back to `to_revision` (0: the previous one), like `kubectl rollout undo`."""
    revs = sorted(history, key=lambda r: r.revision)
    current = next((r for r in revs if r.current), revs[-1] if revs else None)
    if current is None:
        raise ValueError(f"no rollout history found for deployment {d.name!r}")
    if to_revision:
        target = next((r for r in revs if r.revision == to_revision), None)
        if target is None:
            raise ValueError(f"unable to find specified revision {to_revision} in history")
    else:
        older = [r for r in revs if r.revision < current.revision]
        if not older:
            raise ValueError(f"no rollout history found for deployment {d.name!r}")
        target = older[-1]
    lines: list[RenderableType] = [
        Text.assemble((_name(d), "bold"), f"  (rollout state: {d.rollout_state})"),
        Text.assemble("  from  ", (_rev_label(current), "red")),
        Text.assemble("  to    ", (_rev_label(target), "green")),
        Text(f"  becomes revision {max(r.revision for r in revs) + 1}; "
             "pod template below is what changes:", style="dim"),
        template_diff(current, target),
    ]
    if d.paused:
        lines.insert(1, Text("  the deployment is paused: the rollback will be refused", "red"))
    return Plan("rollback", f"Roll back {_name(d)} to revision {target.revision}?", lines,
                [d.key], {"to_revision": target.revision})


def bulk_rollback_plan(deps: Sequence[ModelDeployment]) -> Plan:
    lines: list[RenderableType] = [
        Text.assemble((_name(d), "bold"), f"  revision {d.revision} → previous revision",
                      f"  ({d.change_cause})" if d.change_cause else "")
        for d in deps
    ]
    return Plan("rollback", f"Roll back {plural(len(deps), 'deployment')} to their previous "
                "revision?", lines, [d.key for d in deps])


def scale_plan(deps: Sequence[ModelDeployment], replicas: int) -> Plan:
    lines: list[RenderableType] = []
    for d in deps:
        same = d.desired == replicas
        lines.append(Text.assemble((_name(d), "bold"), "  replicas ",
                                   (str(d.desired), "red" if not same else ""), " → ",
                                   (str(replicas), "green" if not same else ""),
                                   "  (unchanged)" if same else ""))
    return Plan("scale", f"Scale {plural(len(deps), 'deployment')} to {replicas}?", lines,
                [d.key for d in deps], {"replicas": replicas,
                                         "current": {d.key: d.desired for d in deps}})


def restart_plan(deps: Sequence[ModelDeployment]) -> Plan:
    lines: list[RenderableType] = [
        Text.assemble((_name(d), "bold"),
                      f"  new revision {d.revision + 1}: all {d.desired} pods replaced "
                      "(annotation kubectl.kubernetes.io/restartedAt=<now>)")
        for d in deps
    ]
    return Plan("restart", f"Restart {plural(len(deps), 'deployment')}?", lines,
                [d.key for d in deps])


def pause_plan(deps: Sequence[ModelDeployment], pause: bool) -> Plan:
    verb = "Pause" if pause else "Resume"
    lines: list[RenderableType] = [
        Text.assemble((_name(d), "bold"), f"  spec.paused {str(d.paused).lower()} → "
                      f"{str(pause).lower()}", "  (unchanged)" if d.paused == pause else "")
        for d in deps
    ]
    return Plan("pause" if pause else "resume",
                f"{verb} the rollout of {plural(len(deps), 'deployment')}?", lines,
                [d.key for d in deps])


def rollout_plan(d: ModelDeployment, model_uri: str, image: str, reason: str,
                 version: str = "") -> Plan:
    lines: list[RenderableType] = [Text(_name(d), style="bold")]
    changes = {}
    if model_uri and model_uri != d.model_uri:
        lines.append(Text.assemble("  env MODEL_URI  ", (d.model_uri or "-", "red"), " → ",
                                   (model_uri, "green")))
        changes["model_uri"] = model_uri
    if image and image != d.image:
        lines.append(Text.assemble("  image          ", (d.image or "-", "red"), " → ",
                                   (image, "green")))
        changes["image"] = image
    if version and version != d.version:
        lines.append(Text.assemble("  version label  ", (d.version or "-", "red"), " → ",
                                   (version, "green")))
        changes["version"] = version
    if not changes:
        raise ValueError("nothing to roll out: the model URI, image and version are unchanged")
    cause = reason or "fleet rollout"
    lines.append(Text(f"  change-cause   {cause!r}; creates revision {d.revision + 1}"))
    return Plan("rollout", f"Roll out a new version of {_name(d)}?", lines, [d.key],
                {**changes, "reason": reason or None})


def undo_plan(candidates: Sequence[Any], window: str) -> Plan:
    """Candidates of the undo wave: anything with namespace, name and revision info."""
    lines: list[RenderableType] = []
    targets: list[Key] = []
    for c in candidates:
        ns, name = getattr(c, "namespace", "?"), getattr(c, "name", "?")
        frm = getattr(c, "revision", None) or getattr(c, "current_revision", "?")
        to = getattr(c, "to_revision", None) or getattr(c, "previous_revision", "?")
        cause = getattr(c, "change_cause", "") or ""
        lines.append(Text.assemble((f"{ns}/{name}", "bold"), f"  revision {frm} → {to}",
                                   f"  ({cause})" if cause else ""))
        targets.append((ns, name))
    if not lines:
        lines.append(Text(f"no rollouts in the last {window}", style="dim"))
    return Plan("undo", f"Undo {plural(len(targets), 'rollout')} from the last {window}?",
                lines, targets)
