"""What an action will change, as text for the confirmation modal (pure, testable)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from rich.console import RenderableType
from rich.text import Text

from fleet import replicasets
from fleet.errors import FleetError
from fleet.model import ModelDeployment, Revision

Key = tuple[str, str]


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


def _rev_label(r: Revision) -> str:
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
    return yaml.safe_dump(replicasets.strip_hash(template), sort_keys=True,
                          default_flow_style=False)


def template_diff(a: Revision, b: Revision) -> Text:
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


def rollback_choice(d: ModelDeployment, history: Sequence[Revision],
                    to_revision: int = 0) -> tuple[Revision, Revision]:
    """(current, target) as `kubectl rollout undo` picks them (fleet.replicasets's rule);
    ValueError with kubectl's message when there is nothing to go back to."""
    revs = sorted(history, key=lambda r: r.revision)
    current = next((r for r in revs if r.current), revs[-1] if revs else None)
    if current is None:
        raise ValueError(f'no rollout history found for deployment "{d.name}"')
    try:
        target = replicasets.pick_rollback(revs, lambda r: r.revision, to_revision, d.name)
    except FleetError as exc:
        raise ValueError(exc.message) from None
    return current, target


def rollback_plan(d: ModelDeployment, history: Sequence[Revision], to_revision: int = 0,
                  generation: int = 0) -> Plan:
    """Roll back to `to_revision` (0: the previous one), like `kubectl rollout undo`.

    `generation` is the Deployment's metadata.generation read with `history`: the rollback is
    refused if the spec changed after that read (e.g. while the confirm screen was open)."""
    current, target = rollback_choice(d, history, to_revision)
    lines: list[RenderableType] = [
        Text.assemble((_name(d), "bold"), f"  (rollout state: {d.rollout_state})"),
        Text.assemble("  from  ", (_rev_label(current), "red")),
        Text.assemble("  to    ", (_rev_label(target), "green")),
        Text(f"  becomes revision {max(r.revision for r in history) + 1}; "
             "pod template below is what changes:", style="dim"),
        template_diff(current, target),
    ]
    if d.paused:
        lines.insert(1, Text("  the deployment is paused: the rollback will be refused", "red"))
    return Plan("rollback", f"Roll back {_name(d)} to revision {target.revision}?", lines,
                [d.key], {"to_revision": target.revision, "generation": generation})


def bulk_rollback_plan(
    deps: Sequence[ModelDeployment],
    histories: Mapping[Key, tuple[int, Sequence[Revision]] | BaseException],
) -> Plan:
    """Roll back each deployment to the revision named on its line.

    `histories[key]` is (generation, revisions) read for it, or the error reading them. Each
    target carries its own `to_revision` and `generation`: a deployment changed after this plan
    was read (after the user confirmed, too) is refused, not rolled back to something else.
    Deployments with nothing to go back to are listed and left out."""
    lines: list[RenderableType] = []
    targets: list[Key] = []
    to_revision: dict[Key, int] = {}
    generation: dict[Key, int] = {}
    for d in deps:
        got = histories.get(d.key)
        try:
            if got is None:
                raise ValueError("history not read")
            if isinstance(got, BaseException):
                raise ValueError(getattr(got, "message", None) or str(got) or repr(got))
            gen, history = got
            current, target = rollback_choice(d, history)
        except ValueError as exc:
            lines.append(Text.assemble((_name(d), "bold"), ("  skipped: ", "red"), str(exc)))
            continue
        targets.append(d.key)
        to_revision[d.key] = target.revision
        generation[d.key] = gen
        lines.append(Text.assemble((_name(d), "bold"), "  ",
                                   (_rev_label(current), "red"), " → ",
                                   (_rev_label(target), "green")))
    return Plan("rollback", f"Roll back {plural(len(targets), 'deployment')} to the revision "
                "named on each line?", lines, targets,
                {"to_revision": to_revision, "generation": generation})


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
