"""A small Kustomize renderer for the project's own `manifests/` (what `kubectl kustomize` does
with them), so `fleet deploy` applies the same objects a user gets from `kubectl apply -k`.

Supported, because our kustomizations use exactly this: `resources` (YAML files and
directories with a kustomization.yaml), `patches` with `path:` (strategic-merge patches that
name their target by apiVersion/kind/metadata.name), `labels` (`pairs`, `includeSelectors:
false`, `includeTemplates`) and `images` (`name`, `newName`, `newTag`, `digest`). Anything else
raises `UnsupportedKustomization` instead of rendering something different from kubectl;
tests/fleet/test_deploy_unit.py checks parity with the pinned `kubectl kustomize`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from fleet.errors import FleetError

Obj = dict[str, Any]

SUPPORTED_KEYS = frozenset({"apiVersion", "kind", "resources", "patches", "labels", "images"})
# Strategic-merge keys of the list fields our objects carry (from the Kubernetes OpenAPI
# `x-kubernetes-patch-merge-key`); other lists are replaced, as for atomic lists.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
}
PORT_MERGE_KEYS = {"Service": "port"}  # container ports merge on containerPort
WORKLOAD_TEMPLATES = {
    "Deployment": ("spec", "template"), "ReplicaSet": ("spec", "template"),
    "StatefulSet": ("spec", "template"), "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


class UnsupportedKustomization(FleetError):
    """The kustomization uses a feature this renderer does not implement."""


def _load_all(path: Path) -> list[Obj]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise FleetError(f"cannot read {path}: {exc}") from exc
    for d in docs:
        if not isinstance(d, dict) or "kind" not in d:
            raise FleetError(f"{path}: not a Kubernetes object")
    return docs


def _id(obj: Obj) -> tuple[str, str, str]:
    group = (obj.get("apiVersion") or "").rpartition("/")[0]
    return group, obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")


def render(directory: Path | str) -> list[Obj]:
    """Render the kustomization in `directory`; returns the objects in resource order."""
    root = Path(directory)
    kfile = root / "kustomization.yaml"
    try:
        kust = yaml.safe_load(kfile.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FleetError(f"cannot read {kfile}: {exc}") from exc
    unknown = set(kust) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(
            f"{kfile}: {', '.join(sorted(unknown))} not supported by fleet's renderer")
    objs: list[Obj] = []
    for res in kust.get("resources") or []:
        path = root / res
        objs.extend(render(path) if path.is_dir() else _load_all(path))
    for patch in kust.get("patches") or []:
        if set(patch) != {"path"}:
            raise UnsupportedKustomization(f"{kfile}: only `patches: - path: FILE` is supported")
        for doc in _load_all(root / patch["path"]):
            target = [o for o in objs if _id(o) == _id(doc)]
            if not target:
                raise FleetError(f"{kfile}: patch {patch['path']} matches no resource "
                                 f"{_id(doc)[1]}/{_id(doc)[2]}")
            for o in target:
                merged = strategic_merge(o, doc, o.get("kind", ""))
                o.clear()
                o.update(merged)
    for spec in kust.get("labels") or []:
        if spec.get("includeSelectors") or set(spec) - {"pairs", "includeSelectors",
                                                          "includeTemplates"}:
            raise UnsupportedKustomization(f"{kfile}: only labels without selectors supported")
        for o in objs:
            add_labels(o, spec.get("pairs") or {}, templates=bool(spec.get("includeTemplates")))
    for image in kust.get("images") or []:
        for o in objs:
            set_image(o, image)
    return objs


def strategic_merge(original: Any, patch: Any, kind: str = "", field: str = "") -> Any:
    """A strategic-merge patch without directives: maps merge, keyed lists merge by key, other
    lists and scalars are replaced, `null` deletes a key."""
    if isinstance(original, dict) and isinstance(patch, dict):
        out = copy.deepcopy(original)
        for key, value in patch.items():
            if isinstance(key, str) and key.startswith("$"):
                raise UnsupportedKustomization(f"patch directive {key} is not supported")
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, kind, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(original, list) and isinstance(patch, list):
        key = PORT_MERGE_KEYS.get(kind, "containerPort") if field == "ports" else \
            MERGE_KEYS.get(field)
        if key is None:
            return copy.deepcopy(patch)
        # kyaml's order: the patch's items first (merged into their originals), then the
        # original items the patch does not name.
        by_key = {o.get(key): o for o in original if isinstance(o, dict)}
        merged: list[Any] = []
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise UnsupportedKustomization(f"{field}: list item without merge key {key}")
            base = by_key.get(item[key])
            merged.append(copy.deepcopy(item) if base is None
                          else strategic_merge(base, item, kind, ""))
        named = {item[key] for item in patch}
        merged.extend(copy.deepcopy(o) for o in original
                      if not (isinstance(o, dict) and o.get(key) in named))
        return merged
    return copy.deepcopy(patch)


def add_labels(obj: Obj, pairs: dict[str, str], *, templates: bool) -> None:
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    path = WORKLOAD_TEMPLATES.get(obj.get("kind", "")) if templates else None
    if path:
        node = obj
        for part in path:
            node = node.setdefault(part, {})
        node.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _split_image(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) of an image reference."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest


def set_image(obj: Obj, spec: dict[str, str]) -> None:
    """Kustomize's image transformer on pod templates: match by name, set name/tag/digest."""
    path = WORKLOAD_TEMPLATES.get(obj.get("kind", ""))
    if not path:
        return
    node: Any = obj
    for part in path:
        node = (node or {}).get(part)
    pod_spec = (node or {}).get("spec") or {}
    for field in ("initContainers", "containers"):
        for c in pod_spec.get(field) or []:
            name, tag, digest = _split_image(c.get("image", ""))
            if name != spec.get("name"):
                continue
            name = spec.get("newName") or name
            if spec.get("digest"):
                c["image"] = f"{name}@{spec['digest']}"
            elif spec.get("newTag"):
                c["image"] = f"{name}:{spec['newTag']}"
            else:
                c["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
