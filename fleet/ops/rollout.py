"""Start a rollout: a new model URI and/or image, recording `kubernetes.io/change-cause`.

Like `kubectl set image` / `kubectl set env` plus `--record`, but as one JSON patch led by a
`test` of metadata.resourceVersion, so a concurrent change is reported, never overwritten.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.derive import serving_container
from fleet.errors import FleetError
from fleet.kube import JSON_PATCH, deployment_path
from fleet.model import CHANGE_CAUSE, MODEL_URI_ENV, VERSION_LABEL, OpResult
from fleet.ops._common import check_not_managed, get_deployment, ref
from fleet.ops.rollback import (
    MAX_ATTEMPTS,
    _generation,
    _rv,
    changed_by_other,
    check_expected,
    reread_if_raced,
)

if TYPE_CHECKING:
    from fleet.api_client import Patcher

MODEL_VERSION_ENV = "MODEL_VERSION"  # serving/config.py: serve this version (0: the largest)


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def rollout_patch(
    dep: dict[str, Any],
    *,
    model_uri: str | None,
    image: str | None,
    version: str | None,
    change_cause: str,
    model_version: str | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(JSON patch ops without the precondition, what changed: "image" / "env" / "version")."""
    template = (dep.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    target = serving_container(template)
    if not target:
        raise FleetError(f"{ref(replicasets.meta(dep).get('name', ''))} has no containers")
    i = containers.index(target)
    base = f"/spec/template/spec/containers/{i}"
    ops: list[dict[str, Any]] = []
    changed: list[str] = []
    if image is not None and target.get("image") != image:
        ops.append({"op": "replace", "path": f"{base}/image", "value": image})
        changed.append("image")
    env_changes = [(MODEL_URI_ENV, model_uri), (MODEL_VERSION_ENV, model_version)]
    env = list(target.get("env") or [])
    env_ops: list[dict[str, Any]] = []
    for env_name, value in env_changes:
        if value is None:
            continue
        idx = next((j for j, e in enumerate(env) if e.get("name") == env_name), None)
        entry = {"name": env_name, "value": value}
        if idx is None:
            env.append(entry)
            env_ops.append({"op": "add", "path": f"{base}/env/-", "value": entry})
        elif env[idx] != entry:
            env[idx] = entry
            env_ops.append({"op": "replace", "path": f"{base}/env/{idx}", "value": entry})
    if env_ops:
        if target.get("env") is None:
            env_ops = [{"op": "add", "path": f"{base}/env", "value": env}]
        ops += env_ops
        changed.append("env")
    if version is not None:
        labels = (template.get("metadata") or {}).get("labels")
        if (labels or {}).get(VERSION_LABEL) != version:
            path = "/spec/template/metadata/labels"
            if labels is None:
                ops.append({"op": "add", "path": path, "value": {VERSION_LABEL: version}})
            else:
                ops.append({"op": "add", "path": f"{path}/{_pointer(VERSION_LABEL)}",
                            "value": version})
            changed.append("version")
    if ops:
        if replicasets.meta(dep).get("annotations") is None:
            ops.append({"op": "add", "path": "/metadata/annotations",
                        "value": {CHANGE_CAUSE: change_cause}})
        else:
            ops.append({"op": "add",
                        "path": f"/metadata/annotations/{_pointer(CHANGE_CAUSE)}",
                        "value": change_cause})
    return ops, changed


def default_change_cause(name: str, model_uri: str | None, image: str | None) -> str:
    args = ["fleet", "rollout", name]
    if model_uri is not None:
        args.append(f"--model-uri={model_uri}")
    if image is not None:
        args.append(f"--image={image}")
    return shlex.join(args)


def rollout(
    client: Patcher,
    namespace: str,
    name: str,
    *,
    model_uri: str | None = None,
    image: str | None = None,
    version: str | None = None,
    reason: str | None = None,
    model_version: str | None = None,
    expected_resource_version: str | None = None,
    expected_generation: int | None = None,
    force: bool = False,
) -> OpResult:
    """Point the serving container at a new model URI and/or image; record the change-cause.

    `model_version` pins MODEL_VERSION (serving's version selector) so a later upload to the
    same base does not change what restarted pods load."""
    if model_uri is None and image is None:
        raise FleetError("one of --model-uri or --image is required")
    cause = reason or default_change_cause(name, model_uri, image)
    dep = get_deployment(client, namespace, name)
    check_expected(name, dep, expected_resource_version, expected_generation, "rolled out")
    if not force:
        check_not_managed(dep, "rollout")
    for attempt in range(MAX_ATTEMPTS):
        ops, changed = rollout_patch(
            dep, model_uri=model_uri, image=image, version=version, change_cause=cause,
            model_version=model_version)
        if not ops:
            return OpResult(namespace, name, f"{ref(name)} unchanged", False,
                            revision=replicasets.revision_of(dep), resource_version=_rv(dep))
        ops.insert(0, {"op": "test", "path": "/metadata/resourceVersion", "value": _rv(dep)})
        try:
            out = client.patch(deployment_path(namespace, name), ops, JSON_PATCH)
        except FleetError as exc:
            fresh = reread_if_raced(client, namespace, name, dep, exc)
            if fresh is None:
                raise
            if _generation(fresh) != _generation(dep) or attempt == MAX_ATTEMPTS - 1:
                raise changed_by_other(name, dep, fresh, "rolled out") from exc
            dep = fresh
            continue
        what = " and ".join(w for w in ("image", "env") if w in changed) or "version"
        return OpResult(namespace, name, f"{ref(name)} {what} updated", True,
                        resource_version=_rv(out))
    raise AssertionError("unreachable")
