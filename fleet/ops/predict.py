"""Send one prediction to a Ready pod of a model deployment, and run a pod's readiness probe now.

Both go through the API server's port-forward (`fleet.portforward`), or to the pod IP where it
is directly reachable (`via="pod-ip"`). Request bodies are built here from the server's own
metadata (`GET /v1/models/M/metadata` = TF Serving SignatureDefs, `GET /v2/models/M` = Open
Inference tensors), so nothing imports the model server.

For the TUI: `predict(...)` returns a `PredictResult` and `probe_now(...)` a `ProbeResult`
(typed, never printing); both block, so call them from a worker. Errors are `FleetError`s whose
`message` says what failed: no Ready pod, port-forward refused (RBAC `pods/portforward`), the
pod not answering. A model that answers 4xx/5xx is a result with `ok=False` and `error` set
(its `{"error": ...}` text), so a caller can show status, body and latency alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from fleet.derive import env_value, serving_container
from fleet.errors import FleetError, NotFound
from fleet.kube import KubeClient, collection_path
from fleet.model import SERVER_PORT
from fleet.ops._common import get_deployment
from fleet.ops.logs import selector_pods
from fleet.portforward import HttpResponse, PodHTTP, PortForwarder

if TYPE_CHECKING:
    from fleet.api_client import Reader

Obj = dict[str, Any]
PROTOCOLS = ("v1", "v2")
VIAS = ("port-forward", "pod-ip")
BODY_HEAD = 512

# TF Serving DataType enum names → (JSON zero value, V2 datatype)
_TF_ZERO: dict[str, Any] = {
    "DT_FLOAT": 0.0, "DT_DOUBLE": 0.0, "DT_HALF": 0.0, "DT_BFLOAT16": 0.0,
    "DT_INT8": 0, "DT_INT16": 0, "DT_INT32": 0, "DT_INT64": 0,
    "DT_UINT8": 0, "DT_UINT16": 0, "DT_UINT32": 0, "DT_UINT64": 0,
    "DT_BOOL": False, "DT_STRING": "",
}
_V2_ZERO: dict[str, Any] = {
    "FP16": 0.0, "FP32": 0.0, "FP64": 0.0, "BF16": 0.0,
    "INT8": 0, "INT16": 0, "INT32": 0, "INT64": 0,
    "UINT8": 0, "UINT16": 0, "UINT32": 0, "UINT64": 0,
    "BOOL": False, "BYTES": "",
}


@dataclass(frozen=True)
class PredictResult:
    """One prediction: what was sent, who answered, what came back and how long it took."""

    namespace: str
    deployment: str
    pod: str
    model: str
    protocol: str
    via: str
    path: str
    status: int
    ok: bool
    request: Any  # the JSON body sent
    response: Any  # the decoded JSON answer (or text if not JSON)
    error: str  # the model's `error` message when not ok
    latency_ms: float  # the predict request through the open tunnel
    connect_ms: float  # opening the tunnel(s) this call needed


@dataclass(frozen=True)
class ProbeResult:
    """A readiness probe run now, as the kubelet would (200–399 = success)."""

    namespace: str
    pod: str
    container: str
    url: str  # e.g. http://<pod>:8080/v2/health/ready
    via: str
    status: int
    ok: bool
    body_head: str
    latency_ms: float
    connect_ms: float


# --- example inputs ------------------------------------------------------------------------

def _dims(shape: list[Any]) -> list[int]:
    """Concrete dims for an example: -1/None (variable) → 1."""
    out = []
    for d in shape:
        n = int(d) if d is not None else -1
        out.append(1 if n < 0 else n)
    return out


def _filled(dims: list[int], value: Any) -> Any:
    if not dims:
        return value
    return [_filled(dims[1:], value) for _ in range(dims[0])]


def _tf_shape(tensor: Obj) -> list[int] | None:
    ts = tensor.get("tensor_shape") or {}
    if ts.get("unknown_rank"):
        return None
    return [int(d.get("size", -1)) for d in ts.get("dim") or []]


def example_v1(metadata: Obj, signature: str = "serving_default") -> Obj:
    """A valid TF Serving predict body from `GET /v1/models/M/metadata`: zeros of every input,
    batch of 1. One input → row format (`instances`), several → columnar (`inputs`)."""
    defs = ((metadata.get("metadata") or {}).get("signature_def") or {}).get("signature_def") or {}
    if not defs:
        raise FleetError("model metadata has no signature_def to build an example from")
    name = signature if signature in defs else sorted(defs)[0]
    inputs = (defs[name] or {}).get("inputs") or {}
    if not inputs:
        raise FleetError(f"signature {name!r} has no inputs")
    cols: dict[str, Any] = {}
    for key, t in sorted(inputs.items()):
        dtype = t.get("dtype", "DT_FLOAT")
        if dtype not in _TF_ZERO:
            raise FleetError(f"input {key!r}: cannot build an example for dtype {dtype}")
        shape = _tf_shape(t)
        cols[key] = _filled(_dims(shape if shape is not None else [1]), _TF_ZERO[dtype])
    body: Obj = {"signature_name": name}
    if len(cols) == 1:
        value = next(iter(cols.values()))
        body["instances"] = value if isinstance(value, list) else [value]
    else:
        body["inputs"] = cols
    return body


def example_v2(metadata: Obj) -> Obj:
    """A valid Open Inference request from `GET /v2/models/M`: zeros, batch of 1, flat data."""
    tensors = metadata.get("inputs") or []
    if not tensors:
        raise FleetError("model metadata has no inputs to build an example from")
    out = []
    for t in tensors:
        datatype = t.get("datatype", "FP32")
        if datatype not in _V2_ZERO:
            raise FleetError(f"input {t.get('name')!r}: cannot build an example for {datatype}")
        dims = _dims(list(t.get("shape") or []))
        out.append({"name": t.get("name"), "shape": dims, "datatype": datatype,
                    "data": [_V2_ZERO[datatype]] * math.prod(dims)})
    return {"inputs": out}


# --- pods ------------------------------------------------------------------------------------

def _condition(pod: Obj, ctype: str) -> Obj:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


def is_ready(pod: Obj) -> bool:
    md = pod.get("metadata") or {}
    return _condition(pod, "Ready").get("status") == "True" and not md.get("deletionTimestamp")


def why_not_ready(pod: Obj) -> str:
    """A short reason, e.g. `Pending: Unschedulable`, `Running, not ready: ContainersNotReady`."""
    md, st = pod.get("metadata") or {}, pod.get("status") or {}
    if md.get("deletionTimestamp"):
        return "Terminating"
    phase = st.get("phase") or "Unknown"
    for cs in st.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return f"{phase}: container {cs.get('name')} {waiting['reason']}"
    sched = _condition(pod, "PodScheduled")
    if sched.get("status") == "False":
        return f"{phase}: {sched.get('reason') or 'not scheduled'}"
    ready = _condition(pod, "Ready")
    reason = ready.get("reason") or "not ready"
    return f"{phase}, not ready: {reason}"


def choose_pod(client: Reader, namespace: str, name: str, pod: str | None = None
               ) -> tuple[Obj, Obj]:
    """(deployment, pod): `pod` if given (it must match the selector), else a Ready pod
    (the oldest Ready one, for stable answers); else a `FleetError` saying why none is."""
    dep = get_deployment(client, namespace, name)
    pods = selector_pods(client, namespace, dep)
    if pod:
        for p in pods:
            if p["metadata"]["name"] == pod:
                return dep, p
        raise NotFound(f'pod "{pod}" is not a pod of deployment "{name}" in namespace '
                       f'"{namespace}" ({len(pods)} pods match its selector)')
    ready = [p for p in pods if is_ready(p)]
    if ready:
        ready.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "",
                                  p["metadata"]["name"]))
        return dep, ready[0]
    if not pods:
        replicas = (dep.get("spec") or {}).get("replicas", 1)
        raise FleetError(f'no Ready pod for deployment "{name}" in namespace "{namespace}": '
                         f"it has no pods (spec.replicas={replicas})")
    reasons = "; ".join(f"{p['metadata']['name']} ({why_not_ready(p)})" for p in pods)
    raise FleetError(f'no Ready pod for deployment "{name}" in namespace "{namespace}": '
                     f"{len(pods)} pod{'s' if len(pods) != 1 else ''}, none Ready: {reasons}")


def _container(pod: Obj, container: str | None) -> Obj:
    containers = (pod.get("spec") or {}).get("containers") or []
    if container:
        for c in containers:
            if c.get("name") == container:
                return c
        names = ", ".join(c.get("name", "") for c in containers)
        raise NotFound(f'container "{container}" not found in pod '
                       f'"{pod["metadata"]["name"]}" (containers: {names})')
    return serving_container({"spec": pod.get("spec") or {}})


def resolve_port(container: Obj, port: Any) -> int:
    """A probe/port value (number or containerPort name) as a number."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise FleetError(f'container "{container.get("name")}" has no port named "{port}"')


def serving_port(container: Obj) -> int:
    """The model server's HTTP port: the readiness probe's, else a port named http, else the
    first containerPort, else SERVER_PORT (8080)."""
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if probe and probe.get("port") is not None:
        return resolve_port(container, probe["port"])
    ports = container.get("ports") or []
    for p in ports:
        if p.get("name") == "http":
            return int(p["containerPort"])
    return int(ports[0]["containerPort"]) if ports else SERVER_PORT


def _forwarder(client: Reader, kubeconfig: str | None, context: str | None) -> PortForwarder:
    """A tunnel maker as `client`'s user (its credentials and impersonation), else one built
    from `kubeconfig`/`context` (a client that is not a `KubeClient`)."""
    if isinstance(client, KubeClient):
        return PortForwarder.for_client(client)
    return PortForwarder(kubeconfig, context)


def _http(namespace: str, pod: Obj, port: int, *, via: str, forwarder: PortForwarder | None,
          client: Reader, kubeconfig: str | None, context: str | None, timeout: float,
          scheme: str = "http") -> PodHTTP:
    name = pod["metadata"]["name"]
    if via == "pod-ip":
        return PodHTTP(namespace, name, port, pod_ip=(pod.get("status") or {}).get("podIP", ""),
                       timeout=timeout, scheme=scheme)
    if via != "port-forward":
        raise FleetError(f"unknown via {via!r} (use one of {', '.join(VIAS)})")
    fwd = forwarder or _forwarder(client, kubeconfig, context)
    return PodHTTP(namespace, name, port, forwarder=fwd, timeout=timeout, scheme=scheme)


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return body.decode(errors="replace")


def _error_text(resp: HttpResponse) -> str:
    doc = _decode(resp.body)
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return doc["error"]
    text = doc if isinstance(doc, str) else resp.body.decode(errors="replace")
    return text.strip()[:BODY_HEAD] or resp.reason


def _get_json(conn: PodHTTP, path: str, what: str) -> Any:
    resp = conn.request("GET", path)
    if resp.status >= 400:
        raise FleetError(f"{what}: GET {path} on pod/{conn.pod} answered {resp.status}: "
                         f"{_error_text(resp)}", status=resp.status)
    return _decode(resp.body)


def model_name_of(container: Obj, conn: PodHTTP) -> str:
    """MODEL_NAME from the container env, else the first model the server lists (`/v1/models`)."""
    name = env_value(container, "MODEL_NAME")
    if name:
        return name
    doc = _get_json(conn, "/v1/models", "listing the served models")
    models = doc.get("models") if isinstance(doc, dict) else None
    if not models:
        raise FleetError(f"pod/{conn.pod} serves no model (GET /v1/models); pass --model")
    first = models[0]
    return first.get("name", "") if isinstance(first, dict) else str(first)


def example_input(conn: PodHTTP, model: str, protocol: str) -> Obj:
    m = quote(model, safe="")
    if protocol == "v1":
        meta = _get_json(conn, f"/v1/models/{m}/metadata", "reading the model signature")
        return example_v1(meta if isinstance(meta, dict) else {})
    meta = _get_json(conn, f"/v2/models/{m}", "reading the model metadata")
    return example_v2(meta if isinstance(meta, dict) else {})


def predict(client: Reader, namespace: str, name: str, *, body: Any = None, example: bool = False,
            protocol: str = "v2", pod: str | None = None, model: str | None = None,
            via: str = "port-forward", forwarder: PortForwarder | None = None,
            kubeconfig: str | None = None, context: str | None = None,
            timeout: float = 30.0) -> PredictResult:
    """One prediction against a Ready pod of deployment `name` (or `pod`).

    `body` is the JSON request (a dict, or bytes/str of JSON); with `example=True` it is built
    from the model's metadata. The port-forward uses `forwarder`, else one with `client`'s
    credentials (`kubeconfig`/`context` only serve a client that is not a `KubeClient`)."""
    if protocol not in PROTOCOLS:
        raise FleetError(f"unknown protocol {protocol!r} (use v1 or v2)")
    if body is None and not example:
        raise FleetError("nothing to send: give an input body or use the example input")
    if isinstance(body, bytes | str):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise FleetError(f"the input is not valid JSON: {exc}") from exc
    _dep, p = choose_pod(client, namespace, name, pod)
    container = _container(p, None)
    port = serving_port(container)
    with _http(namespace, p, port, via=via, forwarder=forwarder, client=client,
               kubeconfig=kubeconfig, context=context, timeout=timeout) as conn:
        model = model or model_name_of(container, conn)
        if body is None:
            body = example_input(conn, model, protocol)
        m = quote(model, safe="")
        path = f"/v1/models/{m}:predict" if protocol == "v1" else f"/v2/models/{m}/infer"
        resp = conn.request("POST", path, body=orjson.dumps(body))
        ok = 200 <= resp.status < 300
        return PredictResult(
            namespace=namespace, deployment=name, pod=p["metadata"]["name"], model=model,
            protocol=protocol, via=conn.via, path=path, status=resp.status, ok=ok,
            request=body, response=_decode(resp.body), error="" if ok else _error_text(resp),
            latency_ms=round(resp.latency_ms, 3), connect_ms=round(conn.connect_total_ms, 3),
        )


def probe_now(client: Reader, namespace: str, pod: str, *, container: str | None = None,
              via: str = "port-forward", forwarder: PortForwarder | None = None,
              kubeconfig: str | None = None, context: str | None = None,
              timeout: float | None = None) -> ProbeResult:
    """Run the pod's readinessProbe httpGet now (path, port, scheme, headers, timeoutSeconds
    as the kubelet would; `host` is ignored: the tunnel always reaches the pod itself)."""
    p = client.get(f"{collection_path('v1', 'pods', namespace)}/{quote(pod, safe='')}")
    c = _container(p, container)
    probe = c.get("readinessProbe")
    if not probe:
        raise FleetError(f'container "{c.get("name")}" of pod "{pod}" has no readinessProbe')
    h = probe.get("httpGet")
    if h is None:
        kind = next((k for k in ("exec", "tcpSocket", "grpc") if k in probe), "unknown")
        raise FleetError(f'the readinessProbe of container "{c.get("name")}" is {kind}; '
                         "probe now runs httpGet probes only")
    port = resolve_port(c, h.get("port"))
    path = h.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    scheme = str(h.get("scheme") or "HTTP").lower()
    headers = {x["name"]: x.get("value", "") for x in h.get("httpHeaders") or [] if x.get("name")}
    headers.setdefault("User-Agent", "kube-probe/1.37")
    headers.setdefault("Accept", "*/*")
    limit = timeout if timeout is not None else float(probe.get("timeoutSeconds") or 1)
    with _http(namespace, p, port, via=via, forwarder=forwarder, client=client,
               kubeconfig=kubeconfig, context=context, timeout=limit, scheme=scheme) as conn:
        resp = conn.request("GET", path, headers=headers)
    return ProbeResult(
        namespace=namespace, pod=pod, container=c.get("name", ""),
        url=f"{scheme}://{pod}:{port}{path}", via=conn.via, status=resp.status,
        ok=200 <= resp.status < 400,
        body_head=resp.body[:BODY_HEAD].decode(errors="replace"),
        latency_ms=round(resp.latency_ms, 3), connect_ms=round(resp.connect_ms, 3),
    )
