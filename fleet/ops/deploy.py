"""`fleet deploy`: a new model from the Kustomize base + mode overlay in `manifests/`.

Steps, each finished before the next starts:

1. `validate`: every flag checked offline (names, quantities, URIs, replica bounds).
2. `build_objects`: render `manifests/overlays/<mode>` (fleet.kustomize, the same objects
   `kubectl apply -k` makes) and set this model's name, labels, env and resources on them.
3. `preflight`: read-only checks against the cluster: the namespace, an existing object of
   the same name (a Deployment gets the `fleet rollout` hint), the RuntimeClass, whether the
   Gateway API is served (no CRDs: the route is left out with a warning, or refused with
   `require_route`), then a server-side dry run of every object. Nothing is written before all
   of that passed.
4. `apply_objects`: server-side apply (field manager `modelfleet`); a failure part-way deletes
   what this call created, so nothing is left half-applied.
5. `wait_available`: follow the Deployment until Available, reporting progress; on timeout
   `diagnose` says why in one line. `rollback` deletes exactly the objects this deploy created
   (UID preconditions).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fleet import kustomize
from fleet.derive import condition, serving_container
from fleet.errors import FleetError, NotFound, Timeout
from fleet.kube import collection_path
from fleet.model import (
    CHANGE_CAUSE,
    COMPONENT_LABEL,
    GPU_RESOURCE,
    MANAGED_BY_LABEL,
    MODEL_SERVER_COMPONENT,
    MODEL_URI_ENV,
    NAME_LABEL,
    SERVER_PORT,
    SERVING_MODES,
    SERVING_RUNTIMES,
    VERSION_LABEL,
)

if TYPE_CHECKING:
    from fleet.api_client import Deployer, Patcher, Reader, Requester

Obj = dict[str, Any]

# Manifests location. The project is installed from its checkout (`pip install -e .`, as
# `make setup` does), so `manifests/` sits next to the `fleet` package: <repo>/fleet/ops/ ->
# <repo>/manifests. A wheel install has no such directory; point FLEET_MANIFESTS (or
# `fleet deploy --manifests DIR`) at a copy of the repository's manifests/ directory.
MANIFESTS_ENV = "FLEET_MANIFESTS"
FIELD_MANAGER = "modelfleet"
APPLY_PATCH = "application/apply-patch+yaml"
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = f"{GATEWAY_GROUP}/v1"
GATEWAY_ENV = "FLEET_GATEWAY"
DEFAULT_GATEWAY = "fleet-system/fleet-gateway"
BASE_NAME = "model-server"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # DNS-1035: Service names
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# Env the deploy sets itself; --env may not override these (use the dedicated flags).
_OWN_ENV = ("MODEL_NAME", MODEL_URI_ENV, "SERVING_MODE", "SERVING_RUNTIME", "HOST", "PORT")

# Apply order (kustomize's legacy order): the route last, after the Service it points at.
KIND_ORDER = ("Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler",
              "HTTPRoute")
RESOURCES = {  # kind -> (group/version, plural, short ref prefix like kubectl)
    "Service": ("v1", "services", "service"),
    "Deployment": ("apps/v1", "deployments", "deployment.apps"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", "poddisruptionbudget.policy"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers",
                                "horizontalpodautoscaler.autoscaling"),
    "HTTPRoute": (GATEWAY_VERSION, "httproutes", "httproute.gateway.networking.k8s.io"),
}


def manifests_dir(override: str | None = None) -> Path:
    path = Path(override or os.environ.get(MANIFESTS_ENV)
                or Path(__file__).resolve().parents[2] / "manifests")
    if not (path / "overlays").is_dir():
        raise FleetError(f"no Kustomize manifests at {path} (expected base/ and overlays/); "
                         f"set {MANIFESTS_ENV} or --manifests to the repository's manifests/")
    return path


@dataclass(frozen=True)
class DeploySpec:
    name: str
    namespace: str
    model_uri: str
    version: str | None = None
    replicas: int | None = None
    mode: str = "latency"
    runtime: str | None = None
    gpus: int = 0
    min_replicas: int | None = None
    max_replicas: int | None = None
    cpu_target: int | None = None
    runtime_class: str | None = None
    cpu: str | None = None
    memory: str | None = None
    ephemeral_storage: str | None = None
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    gateway: str | None = None  # NS/NAME; None: $FLEET_GATEWAY or fleet-system/fleet-gateway
    hostname: str | None = None
    route: bool = True  # False: leave the HTTPRoute out (no Gateway API on the cluster)

    def gateway_ref(self) -> tuple[str, str]:
        text = self.gateway or os.environ.get(GATEWAY_ENV) or DEFAULT_GATEWAY
        ns, _, name = text.partition("/")
        return ns, name


@dataclass
class DeployObject:
    kind: str
    name: str
    action: str = "planned"  # planned | created | deleted
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"{RESOURCES[self.kind][2]}/{self.name}"


@dataclass
class DeployResult:
    namespace: str
    name: str
    objects: list[DeployObject] = field(default_factory=list)
    route: str = ""  # "/models/NAME on fleet-system/fleet-gateway", or "" without a route
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False
    available: bool | None = None  # None: not waited for
    ready: int = 0
    replicas: int = 0
    elapsed_s: float = 0.0
    failure: str = ""
    rolled_back: bool = False


# ---- 1. validation ----------------------------------------------------------------------------

def validate(spec: DeploySpec) -> None:
    """Every offline check, with what was wrong and what to do; raises FleetError."""
    problems: list[str] = []
    if not _DNS_LABEL.match(spec.name) or len(spec.name) > 63:
        problems.append(f"NAME {spec.name!r} must be a DNS-1035 label (lowercase letters, "
                        "digits and '-', starting with a letter, at most 63 characters), "
                        "because it names the Service")
    if not _DNS_LABEL.match(spec.namespace or "-") and not _DNS_SUBDOMAIN.match(spec.namespace):
        problems.append(f"namespace {spec.namespace!r} is not a valid namespace name")
    problems += _model_uri_problems(spec.model_uri)
    if spec.version is not None and (not spec.version or len(spec.version) > 63
                                     or not _LABEL_VALUE.match(spec.version)):
        problems.append(f"--version {spec.version!r} must be a label value (letters, digits, "
                        "'-', '_', '.', at most 63 characters)")
    if spec.mode not in SERVING_MODES:
        problems.append(f"--mode {spec.mode!r} must be one of {', '.join(SERVING_MODES)}")
    if spec.runtime is not None and spec.runtime not in SERVING_RUNTIMES:
        problems.append(f"--runtime {spec.runtime!r} must be one of {', '.join(SERVING_RUNTIMES)}")
    for flag, value, least in (("--replicas", spec.replicas, 0), ("--gpus", spec.gpus, 0),
                               ("--min-replicas", spec.min_replicas, 1),
                               ("--max-replicas", spec.max_replicas, 1),
                               ("--cpu-target", spec.cpu_target, 1)):
        if value is not None and value < least:
            problems.append(f"{flag} must be {least} or more, got {value}")
    if spec.cpu_target is not None and spec.cpu_target > 100:
        problems.append(f"--cpu-target is a CPU utilization percentage (1-100), got "
                        f"{spec.cpu_target}")
    for flag, quantity in (("--cpu", spec.cpu), ("--memory", spec.memory),
                           ("--ephemeral-storage", spec.ephemeral_storage)):
        if quantity is not None and not _QUANTITY.match(quantity):
            problems.append(f"{flag} {quantity!r} is not a Kubernetes quantity "
                            "(e.g. 500m, 2, 1Gi)")
    for flag, quantity in (("--cpu", spec.cpu), ("--memory", spec.memory)):
        if quantity is not None and _QUANTITY.match(quantity) and not re.search(r"[1-9]",
                                                                                 quantity):
            problems.append(f"{flag} must be more than 0")
    if spec.runtime_class is not None and not _DNS_SUBDOMAIN.match(spec.runtime_class):
        problems.append(f"--runtime-class {spec.runtime_class!r} is not a valid object name")
    if spec.image is not None and (not spec.image or re.search(r"\s", spec.image)):
        problems.append(f"--image {spec.image!r} is not an image reference")
    gw_ns, gw_name = spec.gateway_ref()
    if not (_DNS_LABEL.match(gw_ns) or _DNS_SUBDOMAIN.match(gw_ns)) \
            or not _DNS_SUBDOMAIN.match(gw_name):
        source = "--gateway" if spec.gateway else f"${GATEWAY_ENV}"
        problems.append(f"{source} {spec.gateway or os.environ.get(GATEWAY_ENV)!r} must be "
                        "NAMESPACE/NAME of a Gateway")
    if spec.hostname is not None and (not _HOSTNAME.match(spec.hostname)
                                      or len(spec.hostname) > 253):
        problems.append(f"--hostname {spec.hostname!r} must be a DNS name (optionally *.domain)")
    for key, _value in spec.env:
        if not _ENV_NAME.match(key):
            problems.append(f"--env {key!r} is not a valid environment variable name")
        elif key in _OWN_ENV:
            problems.append(f"--env {key} is set by fleet deploy itself; use its own flag")
    problems += _replica_problems(spec)
    if problems:
        raise FleetError("invalid deploy: " + "; ".join(problems) + ". Nothing was changed.")


def _model_uri_problems(uri: str) -> list[str]:
    if not uri:
        return ["--model-uri is required"]
    parts = urlsplit(uri)
    if parts.scheme in ("hdfs", "webhdfs"):
        if not parts.hostname or not parts.path.strip("/"):
            return [f"--model-uri {uri!r} needs a host and a path, e.g. "
                    f"{parts.scheme}://namenode:{8020 if parts.scheme == 'hdfs' else 9870}"
                    "/models/NAME"]
        return []
    if not parts.scheme and uri.startswith("/"):
        return []  # a directory inside the container (a mounted volume)
    return [f"--model-uri {uri!r}: use hdfs://NAMENODE:PORT/PATH, webhdfs://HOST:PORT/PATH or "
            "an absolute path inside the container"]


def overlay_hpa_bounds(objs: list[Obj]) -> tuple[int, int]:
    hpa = next((o for o in objs if o["kind"] == "HorizontalPodAutoscaler"), None)
    spec = (hpa or {}).get("spec") or {}
    return int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 1)


def replica_plan(spec: DeploySpec, overlay_min: int, overlay_max: int) -> tuple[int, int, int]:
    """(replicas, HPA min, HPA max). `--replicas` below the overlay's minimum lowers the HPA
    minimum to it (the HPA would otherwise scale straight up to the overlay's minimum)."""
    hi = spec.max_replicas if spec.max_replicas is not None else overlay_max
    if spec.min_replicas is not None:
        lo = spec.min_replicas
    elif spec.replicas is not None and spec.replicas >= 1:
        lo = min(spec.replicas, overlay_min)
    else:
        lo = overlay_min
    hi = max(hi, lo) if spec.max_replicas is None else hi
    replicas = spec.replicas if spec.replicas is not None else lo
    return replicas, lo, hi


def _replica_problems(spec: DeploySpec) -> list[str]:
    if spec.min_replicas is not None and spec.max_replicas is not None \
            and spec.min_replicas > spec.max_replicas:
        return [f"--min-replicas {spec.min_replicas} is above --max-replicas {spec.max_replicas}"]
    if spec.replicas is not None and spec.replicas >= 1:
        if spec.min_replicas is not None and spec.replicas < spec.min_replicas:
            return [f"--replicas {spec.replicas} is below --min-replicas {spec.min_replicas} "
                    "(the autoscaler would scale it up at once)"]
        if spec.max_replicas is not None and spec.replicas > spec.max_replicas:
            return [f"--replicas {spec.replicas} is above --max-replicas {spec.max_replicas}"]
    return []


# ---- 2. the objects -----------------------------------------------------------------------------

def build_objects(spec: DeploySpec, manifests: Path | None = None) -> list[Obj]:
    """The overlay's objects, customised for this model, in apply order."""
    objs = kustomize.render((manifests or manifests_dir()) / "overlays" / spec.mode)
    lo, hi = overlay_hpa_bounds(objs)
    replicas, lo, hi = replica_plan(spec, lo, hi)
    if spec.max_replicas is None and replicas > hi:
        hi = replicas
    if replicas > hi:
        raise FleetError(f"--replicas {replicas} is above the autoscaler's maximum {hi}; "
                         "pass --max-replicas. Nothing was changed.")
    out: list[Obj] = []
    for obj in objs:
        kind = obj.get("kind", "")
        if kind not in RESOURCES:
            raise FleetError(f"manifests render an unexpected {kind}; fleet deploy knows "
                             f"{', '.join(KIND_ORDER)}")
        if kind == "HTTPRoute" and not spec.route:
            continue
        md = obj.setdefault("metadata", {})
        md["name"] = spec.name
        md["namespace"] = spec.namespace
        labels = md.setdefault("labels", {})
        labels[NAME_LABEL] = spec.name
        labels[MANAGED_BY_LABEL] = FIELD_MANAGER
        if kind == "Deployment":
            _customize_deployment(obj, spec, replicas)
        elif kind in ("Service", "PodDisruptionBudget"):
            sel = obj["spec"]["selector"]
            (sel.setdefault("matchLabels", {}) if kind == "PodDisruptionBudget" else sel)[
                NAME_LABEL] = spec.name
        elif kind == "HorizontalPodAutoscaler":
            hs = obj["spec"]
            hs["scaleTargetRef"]["name"] = spec.name
            hs["minReplicas"], hs["maxReplicas"] = lo, hi
            if spec.cpu_target is not None:
                for m in hs.get("metrics") or []:
                    if (m.get("resource") or {}).get("name") == "cpu":
                        m["resource"]["target"]["averageUtilization"] = spec.cpu_target
        elif kind == "HTTPRoute":
            _customize_route(obj, spec)
        out.append(obj)
    return sorted(out, key=lambda o: KIND_ORDER.index(o["kind"]))


def change_cause(spec: DeploySpec) -> str:
    args = ["fleet", "deploy", spec.name, f"--model-uri={spec.model_uri}"]
    if spec.version:
        args.append(f"--version={spec.version}")
    args.append(f"--mode={spec.mode}")
    return shlex.join(args)


def _set_env(container: Obj, name: str, value: str) -> None:
    env = container.setdefault("env", [])
    for e in env:
        if e.get("name") == name:
            e.clear()
            e.update({"name": name, "value": value})
            return
    env.append({"name": name, "value": value})


def _customize_deployment(dep: Obj, spec: DeploySpec, replicas: int) -> None:
    md = dep["metadata"]
    if spec.version:
        md["labels"][VERSION_LABEL] = spec.version
    md.setdefault("annotations", {})[CHANGE_CAUSE] = change_cause(spec)
    ds = dep["spec"]
    ds["replicas"] = replicas
    ds["selector"]["matchLabels"][NAME_LABEL] = spec.name
    tmpl = ds["template"]
    tlabels = tmpl.setdefault("metadata", {}).setdefault("labels", {})
    tlabels[NAME_LABEL] = spec.name
    tlabels[MANAGED_BY_LABEL] = FIELD_MANAGER
    if spec.version:
        tlabels[VERSION_LABEL] = spec.version
    pod = tmpl["spec"]
    if spec.runtime_class:
        pod["runtimeClassName"] = spec.runtime_class
    c = serving_container(tmpl)
    if spec.image:
        c["image"] = spec.image
    _set_env(c, "MODEL_NAME", spec.name)
    _set_env(c, MODEL_URI_ENV, spec.model_uri)
    _set_env(c, "SERVING_MODE", spec.mode)
    if spec.runtime:
        _set_env(c, "SERVING_RUNTIME", spec.runtime)
    for key, value in spec.env:
        _set_env(c, key, value)
    res = c.setdefault("resources", {})
    requests, limits = res.setdefault("requests", {}), res.setdefault("limits", {})
    # --cpu/--memory set request and limit alike: the overlays run Guaranteed QoS.
    for key, quantity in (("cpu", spec.cpu), ("memory", spec.memory)):
        if quantity is not None:
            requests[key] = limits[key] = quantity
    if spec.ephemeral_storage is not None:
        requests["ephemeral-storage"] = spec.ephemeral_storage
        if _bytes(limits.get("ephemeral-storage")) < _bytes(spec.ephemeral_storage):
            limits["ephemeral-storage"] = spec.ephemeral_storage
    if spec.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpus)


_SUFFIX = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "m": 10**-3}


def _bytes(quantity: str | None) -> float:
    m = _QUANTITY.match(quantity or "")
    return float(m.group(1)) * _SUFFIX[m.group(3) or ""] if m else 0.0


def route_path(spec: DeploySpec) -> str:
    return "/" if spec.hostname else f"/models/{spec.name}"


def _customize_route(route: Obj, spec: DeploySpec) -> None:
    gw_ns, gw_name = spec.gateway_ref()
    rs = route["spec"]
    rs["parentRefs"] = [{"group": GATEWAY_GROUP, "kind": "Gateway", "namespace": gw_ns,
                         "name": gw_name}]
    if spec.hostname:
        rs["hostnames"] = [spec.hostname]
    for rule in rs.get("rules") or []:
        for match in rule.get("matches") or []:
            match["path"] = {"type": "PathPrefix", "value": route_path(spec)}
        if spec.hostname:  # the whole host is the model's: nothing to strip
            rule.pop("filters", None)
        for ref in rule.get("backendRefs") or []:
            ref["name"] = spec.name
            ref["port"] = SERVER_PORT


def route_description(spec: DeploySpec) -> str:
    gw_ns, gw_name = spec.gateway_ref()
    where = f"{spec.hostname}/" if spec.hostname else route_path(spec)
    return f"{where} on Gateway {gw_ns}/{gw_name}"


# ---- 3. preflight --------------------------------------------------------------------------------

def object_path(kind: str, namespace: str, name: str | None = None) -> str:
    gv, plural, _ = RESOURCES[kind]
    p = collection_path(gv, plural, namespace)
    return p if name is None else f"{p}/{quote(name, safe='')}"


def gateway_api_served(client: Reader) -> bool:
    """True when the cluster serves HTTPRoutes (the Gateway API CRDs are installed)."""
    try:
        doc = client.get(f"/apis/{GATEWAY_VERSION}")
    except NotFound:
        return False
    return any(r.get("name") == "httproutes" for r in doc.get("resources") or [])


def preflight(client: Reader, spec: DeploySpec, *, require_route: bool) -> tuple[DeploySpec,
                                                                             list[str]]:
    """Read-only checks; returns the spec to deploy (route dropped if unserved) and warnings."""
    warnings: list[str] = []
    try:
        client.get(f"/api/v1/namespaces/{quote(spec.namespace, safe='')}")
    except NotFound:
        raise FleetError(f'namespace "{spec.namespace}" not found; create it with `kubectl '
                         f"create namespace {spec.namespace}` or pick one with -n. "
                         "Nothing was changed.") from None
    if spec.runtime_class:
        try:
            client.get(f"/apis/node.k8s.io/v1/runtimeclasses/{quote(spec.runtime_class)}")
        except NotFound:
            raise FleetError(f'RuntimeClass "{spec.runtime_class}" not found on this cluster '
                             "(`kubectl get runtimeclass` lists them). Nothing was changed."
                             ) from None
    route = spec.route
    if route and not gateway_api_served(client):
        msg = (f"the cluster does not serve the Gateway API ({GATEWAY_VERSION} HTTPRoute): "
               "install its CRDs (standard channel) and a Gateway to route to the model")
        if require_route:
            raise FleetError(f"{msg}. --require-route was given, so nothing was changed.")
        warnings.append(f"Warning: {msg}; deploying without the HTTPRoute.")
        route = False
    if route:
        gw_ns, gw_name = spec.gateway_ref()
        try:
            client.get(f"/apis/{GATEWAY_VERSION}/namespaces/{quote(gw_ns, safe='')}/gateways/"
                       f"{quote(gw_name, safe='')}")
        except NotFound:
            msg = (f'Gateway "{gw_ns}/{gw_name}" not found: the HTTPRoute will not be '
                   "accepted until it exists (choose one with --gateway NS/NAME)")
            if require_route:
                raise FleetError(f"{msg}. --require-route was given, so nothing was changed."
                                 ) from None
            warnings.append(f"Warning: {msg}.")
    kinds = [k for k in KIND_ORDER if route or k != "HTTPRoute"]
    existing = []
    for kind in kinds:
        try:
            client.get(object_path(kind, spec.namespace, spec.name))
        except NotFound:
            continue
        existing.append(kind)
    if "Deployment" in existing:
        raise FleetError(f'deployment "{spec.name}" already exists in namespace '
                         f'"{spec.namespace}": fleet deploy only creates new models; use '
                         f"`fleet rollout {spec.name} --model-uri URI` to change it. "
                         "Nothing was changed.")
    if existing:
        refs = ", ".join(f"{RESOURCES[k][2]}/{spec.name}" for k in existing)
        raise FleetError(f"{refs} already exist(s) in namespace \"{spec.namespace}\" without "
                         "the deployment; delete or rename it, or pick another NAME. "
                         "Nothing was changed.")
    from dataclasses import replace

    return replace(spec, route=route), warnings


def apply_one(client: Patcher, obj: Obj, *, dry_run: bool = False) -> Obj:
    md = obj["metadata"]
    query = {"fieldManager": FIELD_MANAGER}
    if dry_run:
        query["dryRun"] = "All"
    return client.patch(object_path(obj["kind"], md["namespace"], md["name"]), obj, APPLY_PATCH,
                        query)


def server_dry_run(client: Patcher, objs: list[Obj]) -> None:
    """Every object through admission and validation without persisting anything."""
    for obj in objs:
        try:
            apply_one(client, obj, dry_run=True)
        except FleetError as exc:
            raise FleetError(f"the server rejects {RESOURCES[obj['kind']][2]}/"
                             f"{obj['metadata']['name']}: {exc.detail}. Nothing was changed.",
                             status=exc.status, reason=exc.reason) from exc


# ---- 4. apply, rollback -----------------------------------------------------------------------

def apply_objects(client: Deployer, objs: list[Obj], result: DeployResult,
                  on_message: Callable[[str], None] | None = None) -> None:
    """Server-side apply in order; on a failure, delete what this call created, then raise."""
    for obj in objs:
        item = DeployObject(obj["kind"], obj["metadata"]["name"])
        try:
            out = apply_one(client, obj)
        except FleetError as exc:
            rollback(client, result)
            undone = " (removed again: " + ", ".join(o.ref for o in result.objects) + ")" \
                if result.objects else ""
            raise FleetError(f"applying {item.ref} failed: {exc.detail}{undone}",
                             status=exc.status, reason=exc.reason) from exc
        item.uid = (out.get("metadata") or {}).get("uid", "")
        item.action = "created"
        result.objects.append(item)
        if on_message:
            on_message(f"{item.ref} created (server-side apply)")


def rollback(client: Requester, result: DeployResult) -> list[str]:
    """Delete exactly the objects this deploy created (newest first, UID preconditions);
    returns the errors (an object already gone is not one)."""
    errors: list[str] = []
    for item in reversed([o for o in result.objects if o.action == "created"]):
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background",
                "preconditions": {"uid": item.uid} if item.uid else None}
        try:
            client.request("DELETE", object_path(item.kind, result.namespace, item.name),
                           body={k: v for k, v in body.items() if v is not None})
        except NotFound:
            pass
        except FleetError as exc:
            errors.append(f"{item.ref}: {exc.detail}")
            continue
        item.action = "deleted"
    result.rolled_back = not errors
    return errors


# ---- 5. wait and diagnose ---------------------------------------------------------------------

@dataclass(frozen=True)
class Observation:
    replicas: int
    created: int
    ready: int
    available: bool
    last_event: str
    deadline_exceeded: bool = False


def _events(client: Reader, namespace: str) -> list[Obj]:
    doc = client.list_all(collection_path("v1", "events", namespace))
    items = doc.get("items") or []
    def when(e: Obj) -> tuple[str, int]:
        md = e.get("metadata") or {}
        rv = str(md.get("resourceVersion") or "0")
        return (e.get("lastTimestamp") or e.get("eventTime") or md.get("creationTimestamp")
                or "", int(rv) if rv.isdigit() else 0)

    return sorted(items, key=when)


def _pods(client: Reader, namespace: str, name: str) -> list[Obj]:
    selector = f"{COMPONENT_LABEL}={MODEL_SERVER_COMPONENT},{NAME_LABEL}={name}"
    return client.list_all(collection_path("v1", "pods", namespace),
                           {"labelSelector": selector}).get("items") or []


def _ours(events: list[Obj], name: str, pod_names: set[str]) -> list[Obj]:
    def mine(e: Obj) -> bool:
        inv = e.get("involvedObject") or {}
        n, kind = inv.get("name", ""), inv.get("kind", "")
        return (kind == "Pod" and n in pod_names) or (kind == "Deployment" and n == name) or \
            (kind == "ReplicaSet" and n.startswith(name + "-"))
    return [e for e in events if mine(e)]


def _pod_ready(pod: Obj) -> bool:
    return (condition(pod.get("status") or {}, "Ready") or {}).get("status") == "True"


def observe(client: Reader, namespace: str, name: str) -> tuple[Observation, list[Obj], list[Obj]]:
    dep = client.get(object_path("Deployment", namespace, name))
    pods = [p for p in _pods(client, namespace, name)
            if not (p.get("metadata") or {}).get("deletionTimestamp")]
    events = _ours(_events(client, namespace), name,
                   {(p.get("metadata") or {}).get("name", "") for p in pods})
    md, ds, st = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    replicas = int(ds["replicas"]) if ds.get("replicas") is not None else 1
    observed = int(st.get("observedGeneration") or 0) >= int(md.get("generation") or 0)
    avail_cond = (condition(st, "Available") or {}).get("status") == "True"
    progressing = condition(st, "Progressing") or {}
    available = observed and avail_cond and int(st.get("availableReplicas") or 0) >= replicas \
        and int(st.get("updatedReplicas") or 0) >= replicas
    last = events[-1] if events else None
    last_text = (f"{last.get('reason', '')}: {(last.get('message') or '').strip()}"
                 if last else "")
    obs = Observation(replicas, len(pods), sum(map(_pod_ready, pods)), available, last_text,
                      progressing.get("reason") == "ProgressDeadlineExceeded")
    return obs, pods, events


def progress_line(obs: Observation) -> str:
    line = f"pods created {obs.created}/{obs.replicas}, ready {obs.ready}/{obs.replicas}"
    return line + (f"; last event: {obs.last_event}" if obs.last_event else "")


_INSUFFICIENT = re.compile(r"Insufficient ([\w./-]+)")


def diagnose(pods: list[Obj], events: list[Obj], obs: Observation) -> str:
    """Why the Deployment is not Available, in one line: creation failures, scheduling
    (Pending for lack of a resource), image pulls and container crashes, failing probes."""
    failed_create = [e for e in events if e.get("reason") == "FailedCreate"]
    if obs.created < obs.replicas and failed_create:
        return f"pods cannot be created: {failed_create[-1].get('message', '').strip()}"
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        st = pod.get("status") or {}
        sched = condition(st, "PodScheduled") or {}
        if sched.get("status") == "False":
            msg = (sched.get("message") or "").strip()
            lacking = sorted({r.rstrip(".,;") for r in _INSUFFICIENT.findall(msg)})
            if lacking:
                return (f"pod {name} is Pending for lack of {', '.join(lacking)} "
                        f"(scheduler: {msg})")
            return f"pod {name} is Pending: {msg or sched.get('reason', 'not scheduled')}"
        for cs in st.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                          "CreateContainerConfigError", "CreateContainerError",
                          "RunContainerError", "CrashLoopBackOff"):
                detail = (waiting.get("message") or "").strip()
                term = (cs.get("lastState") or {}).get("terminated") or {}
                if reason == "CrashLoopBackOff" and term:
                    said = " ".join((term.get("message") or "").split())[:300]
                    detail = (f"exited with code {term.get('exitCode')} "
                              f"({term.get('reason', 'Error')}), restarted "
                              f"{cs.get('restartCount', 0)} times"
                              + (f": {said}" if said else ""))
                return f"pod {name} container {cs.get('name')} is {reason}" + \
                    (f": {detail}" if detail else "")
    unhealthy = [e for e in events if e.get("reason") == "Unhealthy"]
    if unhealthy:
        e = unhealthy[-1]
        pod = (e.get("involvedObject") or {}).get("name", "")
        return f"pod {pod}: {(e.get('message') or '').strip()}"
    if obs.deadline_exceeded:
        return "the Deployment exceeded its progress deadline"
    detail = f"; last event: {obs.last_event}" if obs.last_event else ""
    return f"{obs.ready} of {obs.replicas} pods ready{detail}"


def wait_available(client: Reader, result: DeployResult, timeout: float,
                   on_progress: Callable[[str], None] | None = None,
                   interval: float = 1.0) -> bool:
    """Follow the Deployment until Available (True) or `timeout` seconds (False, with
    `result.failure` saying why). Polls: pods, the Deployment and events together."""
    started = time.monotonic()
    deadline = started + timeout
    last_line = ""
    while True:
        obs, pods, events = observe(client, result.namespace, result.name)
        result.ready, result.replicas = obs.ready, obs.replicas
        line = progress_line(obs)
        if on_progress and line != last_line:
            on_progress(line)
            last_line = line
        if obs.available:
            result.available = True
            result.elapsed_s = time.monotonic() - started
            return True
        if time.monotonic() >= deadline or obs.deadline_exceeded:
            result.available = False
            result.elapsed_s = time.monotonic() - started
            result.failure = diagnose(pods, events, obs)
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


# ---- the whole operation ----------------------------------------------------------------------

def deploy(
    client: Deployer,
    spec: DeploySpec,
    *,
    dry_run: bool = False,
    wait: bool = True,
    timeout: float = 300.0,
    rollback_on_failure: bool = False,
    require_route: bool = False,
    manifests: Path | None = None,
    on_message: Callable[[str], None] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> tuple[DeployResult, list[Obj]]:
    """Validate, render, preflight, dry-run, apply, wait. Returns (result, objects applied).

    Raises FleetError before any write for bad input or a refused preflight. A timeout is not
    raised: `result.available` is False and `result.failure` says why.
    """
    validate(spec)
    build_objects(spec, manifests)  # render errors surface before talking to the cluster
    spec, warnings = preflight(client, spec, require_route=require_route)
    objs = build_objects(spec, manifests)
    result = DeployResult(spec.namespace, spec.name, warnings=warnings, dry_run=dry_run,
                          route=route_description(spec) if spec.route else "")
    for w in warnings:
        if on_message:
            on_message(w)
    server_dry_run(client, objs)
    if dry_run:
        result.objects = [DeployObject(o["kind"], o["metadata"]["name"]) for o in objs]
        return result, objs
    apply_objects(client, objs, result, on_message)
    if not wait:
        return result, objs
    ok = wait_available(client, result, timeout, on_progress)
    if not ok and rollback_on_failure:
        errors = rollback(client, result)
        if errors:
            result.failure += "; rollback incomplete: " + "; ".join(errors)
    return result, objs


def timeout_error(result: DeployResult, timeout: float) -> Timeout:
    tail = ("removed what this deploy created (--rollback-on-failure)" if result.rolled_back
            else "left as it is")
    return Timeout(f"deployment \"{result.name}\" not Available after {timeout:.0f}s: "
                   f"{result.failure}; {tail}")
