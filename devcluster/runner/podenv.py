"""A container's environment, resolved from the Pod spec the way the kubelet does it.

The runner has no container runtime, so the kubelet's `makeEnvironmentVariables`,
`$(VAR)` expansion and downward-API field resolution are reproduced here, as pure
functions over objects the integrator has already fetched (no API calls).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any

__all__ = [
    "EnvError",
    "PodContext",
    "Refs",
    "container_env",
    "expand",
    "field_value",
    "format_map",
    "host_allocatable",
    "parse_quantity",
    "pod_hostname",
    "references",
    "resource_value",
]

_OPERATOR = "$"
_OPENER = "("
_CLOSER = ")"


def expand(value: str, env: Mapping[str, str]) -> str:
    """Expand `$(NAME)` references like the kubelet (third_party/forked/golang/expansion).

    `$(NAME)` becomes env[NAME] when defined and stays verbatim otherwise; `$$` is an escaped
    `$` (so `$$(NAME)` yields the literal `$(NAME)`); an unterminated `$(` and a `$` before any
    other character (or at the end) are kept as written.
    """
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(value)
    while cursor < n:
        if value[cursor] == _OPERATOR and cursor + 1 < n:
            out.append(value[checkpoint:cursor])
            nxt = value[cursor + 1]
            advance = 1
            if nxt == _OPERATOR:
                out.append(_OPERATOR)
            elif nxt == _OPENER:
                close = value.find(_CLOSER, cursor + 2)
                if close == -1:
                    # Incomplete reference: emit "$(" and keep scanning after the "(".
                    out.append(_OPERATOR + _OPENER)
                else:
                    name = value[cursor + 2 : close]
                    out.append(env.get(name, f"$({name})"))
                    advance = close - cursor
            else:
                out.append(_OPERATOR + nxt)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


# --- quantities -------------------------------------------------------------------------------

_QUANTITY = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_EXPONENT = re.compile(r"[eE]([+-]?\d+)")


def parse_quantity(s: str | int | float) -> Decimal:
    """Parse a Kubernetes quantity ("500m", "2", "1Gi", "512Mi", "1e3", "1.5") exactly.

    Decimal keeps "0.1" and "100m" equal, which float would not; resource rounding must be
    exact to match the kubelet's integer arithmetic.
    """
    if isinstance(s, bool):
        raise ValueError(f"quantities must be strings or numbers, not {s!r}")
    if isinstance(s, int | float):
        s = str(s)
    m = _QUANTITY.fullmatch(s)
    if not m:
        raise ValueError(f"invalid quantity {s!r}")
    sign, number, suffix = m.groups()
    with localcontext() as ctx:
        ctx.prec = 80
        value = Decimal(number)
        if suffix in _BINARY:
            value *= Decimal(1024) ** _BINARY[suffix]
        elif suffix in _DECIMAL:
            value = value.scaleb(_DECIMAL[suffix])
        elif (e := _EXPONENT.fullmatch(suffix)) is not None:
            value = value.scaleb(int(e.group(1)))
        else:
            raise ValueError(f"invalid quantity {s!r}: unknown suffix {suffix!r}")
        return -value if sign == "-" else +value


# --- pod helpers -------------------------------------------------------------------------------


def pod_hostname(pod: Mapping[str, Any], cluster_domain: str = "cluster.local") -> str:
    """The pod's hostname as the kubelet sets it (spec.hostname or the name, max 63 chars).

    With spec.setHostnameAsFQDN and a subdomain the hostname is the FQDN, as in the kubelet.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(meta.get("name") or "")
    hostname = str(spec.get("hostname") or name)
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
    subdomain = spec.get("subdomain")
    if spec.get("setHostnameAsFQDN") and subdomain and cluster_domain:
        ns = meta.get("namespace") or "default"
        hostname = f"{hostname}.{subdomain}.{ns}.svc.{cluster_domain}"
    return hostname


def _go_quote(s: str) -> str:
    """Go's %q for a string: the quoting the downward API uses for label/annotation values."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append(
                {
                    "\a": "\\a",
                    "\b": "\\b",
                    "\f": "\\f",
                    "\n": "\\n",
                    "\r": "\\r",
                    "\t": "\\t",
                    "\v": "\\v",
                }[ch]
            )
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def format_map(m: Mapping[str, str]) -> str:
    """Render labels/annotations like the kubelet: `key="value"` lines sorted by key."""
    return "\n".join(f"{k}={_go_quote(str(m[k]))}" for k in sorted(m))


def _split_subscript(path: str) -> tuple[str, str | None]:
    if not path.endswith("']"):
        return path, None
    head, sep, key = path[:-2].partition("['")
    if not sep or not head:
        return path, None
    return head, key


class EnvError(Exception):
    """A container's environment cannot be built; str() is the kubelet-style message."""

    reason = "CreateContainerConfigError"


def field_value(
    pod: Mapping[str, Any],
    field_path: str,
    *,
    pod_ip: str = "",
    host_ip: str = "",
    node_name: str = "",
) -> str:
    """Resolve a downward-API fieldPath (env fieldRef or downwardAPI volume item)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "",
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "metadata.name": meta.get("name") or "",
        "metadata.namespace": meta.get("namespace") or "",
        "metadata.uid": meta.get("uid") or "",
    }
    if field_path in simple:
        return str(simple[field_path])
    head, key = _split_subscript(field_path)
    if head in ("metadata.labels", "metadata.annotations"):
        values: Mapping[str, str] = meta.get(head.split(".", 1)[1]) or {}
        if key is None:
            return format_map(values)
        return str(values.get(key, ""))
    raise EnvError(f"unsupported fieldPath: {field_path}")


def host_allocatable() -> dict[str, str]:
    """This host's capacity, standing in for the node's allocatable (limits default to it)."""
    cpu = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = 0
    storage = shutil.disk_usage("/").total
    return {"cpu": str(cpu), "memory": str(memory), "ephemeral-storage": str(storage)}


_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def resource_value(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    resource: str,
    divisor: str | int | None,
    allocatable: Mapping[str, str],
) -> str:
    """Resolve a resourceFieldRef like the kubelet's containerResourceRuntimeValue.

    Unset limits fall back to pod-level limits (PodLevelResources) and then to the node's
    allocatable; unset requests default to the container's own limits (as API defaulting
    does) or 0. CPU rounds up to whole divisor units in millis, memory/storage in bytes.
    """
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in _RESOURCES:
        raise EnvError(f"unsupported container resource : {resource}")
    res = container.get("resources") or {}
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    if kind == "limits":
        pod_limits = ((pod.get("spec") or {}).get("resources") or {}).get("limits") or {}
        raw = limits.get(name) or pod_limits.get(name) or allocatable.get(name) or "0"
    else:
        raw = requests.get(name) or limits.get(name) or "0"
    try:
        quantity = parse_quantity(raw)
        div = parse_quantity(divisor) if divisor not in (None, "", 0, "0") else Decimal(1)
    except ValueError as exc:
        raise EnvError(f"resource {resource}: {exc}") from exc
    if name == "cpu":
        num, den = math.ceil(quantity * 1000), math.ceil(div * 1000)
    else:
        num, den = math.ceil(quantity), math.ceil(div)
    if den == 0:
        raise EnvError(f"resource {resource}: divisor {divisor!r} rounds to zero")
    return str(-((-num) // den))


# --- references --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refs:
    """ConfigMaps and Secrets (by name, in the pod's namespace) the integrator must fetch."""

    configmaps: frozenset[str]
    secrets: frozenset[str]


def _all_containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    spec = pod.get("spec") or {}
    return [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
    ]


def references(pod: dict[str, Any]) -> Refs:
    """Every ConfigMap/Secret the pod's env, envFrom and volumes name (optional ones too)."""
    cms: set[str] = set()
    secrets: set[str] = set()
    for c in _all_containers(pod):
        for ef in c.get("envFrom") or []:
            if (ref := ef.get("configMapRef")) and ref.get("name"):
                cms.add(ref["name"])
            if (ref := ef.get("secretRef")) and ref.get("name"):
                secrets.add(ref["name"])
        for ev in c.get("env") or []:
            vf = ev.get("valueFrom") or {}
            if (ref := vf.get("configMapKeyRef")) and ref.get("name"):
                cms.add(ref["name"])
            if (ref := vf.get("secretKeyRef")) and ref.get("name"):
                secrets.add(ref["name"])
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        if (cm := vol.get("configMap")) and cm.get("name"):
            cms.add(cm["name"])
        if (sec := vol.get("secret")) and sec.get("secretName"):
            secrets.add(sec["secretName"])
        for src in (vol.get("projected") or {}).get("sources") or []:
            if (cm := src.get("configMap")) and cm.get("name"):
                cms.add(cm["name"])
            if (sec := src.get("secret")) and sec.get("name"):
                secrets.add(sec["name"])
    return Refs(configmaps=frozenset(cms), secrets=frozenset(secrets))


# --- environment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodContext:
    """Everything container_env needs, prefetched by the integrator."""

    pod: dict[str, Any]
    pod_ip: str
    host_ip: str
    node_name: str
    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]
    # Runner-provided vars (KUBERNETES_SERVICE_HOST/PORT, GPU vars): applied first, so the
    # pod's own env overrides them, and visible to $(VAR) like the kubelet's service env.
    extra: Mapping[str, str] = field(default_factory=dict)
    # Node allocatable, the fallback for unset limits in resourceFieldRef.
    allocatable: Mapping[str, str] = field(default_factory=host_allocatable)
    cluster_domain: str = "cluster.local"


def _text(value: str | bytes) -> str:
    # Secrets may carry bytes; surrogateescape keeps non-UTF-8 bytes round-trippable via os.
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _lookup(
    ctx: PodContext, kind: str, name: str, optional: bool
) -> Mapping[str, str | bytes] | None:
    store = ctx.configmaps if kind == "configmap" else ctx.secrets
    if name in store:
        return store[name]
    if optional:
        return None
    raise EnvError(f'{kind} "{name}" not found')


def container_env(ctx: PodContext, container: dict[str, Any]) -> dict[str, str]:
    """The container's environment, in the kubelet's order and precedence.

    Order: ctx.extra, HOSTNAME (the runtime's), envFrom sources in order, then env in order;
    later entries win. `$(VAR)` in an env `value` sees ctx.extra, envFrom and earlier env
    entries but not HOSTNAME, exactly as in the kubelet (HOSTNAME comes from the runtime).
    Keys containing "=" (or empty) from envFrom are skipped; they cannot be env names.
    """
    ns = (ctx.pod.get("metadata") or {}).get("namespace") or "default"
    result: dict[str, str] = {k: str(v) for k, v in ctx.extra.items()}
    result["HOSTNAME"] = pod_hostname(ctx.pod, ctx.cluster_domain)
    defined: dict[str, str] = dict(result)
    defined.pop("HOSTNAME")
    if "HOSTNAME" in ctx.extra:
        defined["HOSTNAME"] = str(ctx.extra["HOSTNAME"])

    def put(key: str, value: str) -> None:
        result.pop(key, None)  # re-insert so the dict order shows where the value came from
        result[key] = value
        defined[key] = value

    for ef in container.get("envFrom") or []:
        prefix = ef.get("prefix") or ""
        if (ref := ef.get("configMapRef")) is not None:
            kind, ref_name = "configmap", ref.get("name") or ""
        elif (ref := ef.get("secretRef")) is not None:
            kind, ref_name = "secret", ref.get("name") or ""
        else:
            continue
        data = _lookup(ctx, kind, ref_name, bool(ref.get("optional")))
        if data is None:
            continue
        for key in sorted(data):
            name = prefix + key
            if not name or "=" in name:
                continue
            put(name, _text(data[key]))

    for ev in container.get("env") or []:
        name = ev["name"]
        value = ev.get("value") or ""
        vf = ev.get("valueFrom")
        if value:
            value = expand(value, defined)
        elif vf:
            resolved = _value_from(ctx, container, vf, ns)
            if resolved is None:
                continue
            value = resolved
        put(name, value)
    return result


def _value_from(
    ctx: PodContext, container: Mapping[str, Any], vf: Mapping[str, Any], ns: str
) -> str | None:
    """One env valueFrom; None means an optional source is missing and the var is unset."""
    if (fr := vf.get("fieldRef")) is not None:
        return field_value(
            ctx.pod,
            fr.get("fieldPath", ""),
            pod_ip=ctx.pod_ip,
            host_ip=ctx.host_ip,
            node_name=ctx.node_name,
        )
    if (rf := vf.get("resourceFieldRef")) is not None:
        target: Mapping[str, Any] = container
        if cname := rf.get("containerName"):
            target = next((c for c in _all_containers(ctx.pod) if c.get("name") == cname), None)
            if target is None:
                raise EnvError(f"container {cname} not found")
        return resource_value(
            ctx.pod, target, rf.get("resource", ""), rf.get("divisor"), ctx.allocatable
        )
    for key, kind, label in (
        ("configMapKeyRef", "configmap", "ConfigMap"),
        ("secretKeyRef", "secret", "Secret"),
    ):
        if (ref := vf.get(key)) is None:
            continue
        optional = bool(ref.get("optional"))
        data = _lookup(ctx, kind, ref.get("name") or "", optional)
        if data is None:
            return None
        k = ref.get("key", "")
        if k not in data:
            if optional:
                return None
            raise EnvError(f"couldn't find key {k} in {label} {ns}/{ref.get('name')}")
        return _text(data[k])
    raise EnvError("unsupported valueFrom source: " + (", ".join(sorted(vf)) or "(empty)"))
