"""kubectl's `DescribePodTemplate` (pkg/describe/describe.go) as printed by
`kubectl rollout history --revision=N`: tab-separated, no tabwriter alignment there.

Covers labels, annotations (140-character folding), service account, init/regular containers
(image, ports, command/args, limits/requests, probes, envFrom, env incl. valueFrom, mounts),
the common volume types (emptyDir, configMap, secret, persistentVolumeClaim, hostPath), node
selectors, tolerations and priority class. Other volume types print only their type name.
"""

from __future__ import annotations

import math
import re
from typing import Any

from fleet.ops.probes import describe_probe

Obj = dict[str, Any]
MAX_ANNOTATION_LEN = 140
_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def _multiline(title: str, items: list[str]) -> list[str]:
    if not items:
        return [f"{title}:\t<none>"]
    return [f"{title}:\t{items[0]}"] + [f"\t{i}" for i in items[1:]]


def _annotations(title: str, ann: dict[str, str]) -> list[str]:
    out: list[str] = []
    for i, key in enumerate(sorted(ann)):
        lead = f"{title}:\t" if i == 0 else "\t"
        value = ann[key].removesuffix("\n")
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            out.append(f"{lead}{key}:")
            for s in value.split("\n"):
                cut = MAX_ANNOTATION_LEN - 2
                out.append(f"\t  {s[:cut] + '...' if len(s) > cut else s}")
        else:
            out.append(f"{lead}{key}: {value}")
    return out


def _quantity(text: str) -> float:
    m = _QTY.match(str(text))
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(text)
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def _resource_field(ref: Obj, container: Obj) -> str:
    """kubectl's ExtractContainerResourceValue with divisor 1: cores rounded up, bytes."""
    kind, _, res = (ref.get("resource") or "").partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(res)
    if value is None:
        return ""
    try:
        divisor = _quantity(ref.get("divisor") or "1") or 1.0  # the API defaults it to "0"
        q = _quantity(value) / divisor
    except ValueError:
        return str(value)
    return str(math.ceil(q))


def _env(container: Obj) -> list[str]:
    env = container.get("env") or []
    if not env:
        return ["    Environment:\t<none>"]
    out = ["    Environment:"]
    for e in env:
        vf = e.get("valueFrom")
        name = e.get("name", "")
        if not vf:
            lines = str(e.get("value") or "").split("\n")
            out.append(f"      {name}:\t{lines[0]}")
            out += [f"\t{s}" for s in lines[1:]]
        elif "fieldRef" in vf:
            f = vf["fieldRef"]
            out.append(f"      {name}:\t ({f.get('apiVersion') or 'v1'}:{f.get('fieldPath')})")
        elif "resourceFieldRef" in vf:
            r = vf["resourceFieldRef"]
            out.append(f"      {name}:\t{_resource_field(r, container)} ({r.get('resource')})")
        elif "secretKeyRef" in vf:
            s = vf["secretKeyRef"]
            out.append(f"      {name}:\t<set to the key '{s.get('key')}' in secret "
                       f"'{s.get('name')}'>\tOptional: {str(bool(s.get('optional'))).lower()}")
        elif "configMapKeyRef" in vf:
            c = vf["configMapKeyRef"]
            out.append(f"      {name}:\t<set to the key '{c.get('key')}' of config map "
                       f"'{c.get('name')}'>\tOptional: {str(bool(c.get('optional'))).lower()}")
    return out


def _env_from(container: Obj) -> list[str]:
    sources = container.get("envFrom") or []
    if not sources:
        return []
    out = ["    Environment Variables from:"]
    for src in sources:
        ref, kind = (src["configMapRef"], "ConfigMap") if "configMapRef" in src else (
            src.get("secretRef") or {}, "Secret")
        prefix = f" with prefix '{src['prefix']}'" if src.get("prefix") else ""
        optional = str(bool(ref.get("optional"))).lower()
        out.append(f"      {ref.get('name')}\t{kind}{prefix}\tOptional: {optional}")
    return out


def _ports(ports: list[Obj], field: str, one: str, many: str) -> str:
    text = ", ".join(f"{p.get(field) or 0}/{p.get('protocol') or 'TCP'}" for p in ports)
    return f"    {many}:\t{text}" if "," in text else f"    {one}:\t{text or '<none>'}"


def _container(c: Obj) -> list[str]:
    out = [f"   {c.get('name')}:", f"    Image:\t{c.get('image', '')}"]
    ports = c.get("ports") or []
    out.append(_ports(ports, "containerPort", "Port", "Ports"))
    out.append(_ports(ports, "hostPort", "Host Port", "Host Ports"))
    for field, title in (("command", "Command"), ("args", "Args")):
        if c.get(field):
            out.append(f"    {title}:")
            out += [f"      {s}" for item in c[field] for s in str(item).split("\n")]
    res = c.get("resources") or {}
    for field, title in (("limits", "Limits"), ("requests", "Requests")):
        if res.get(field):
            out.append(f"    {title}:")
            out += [f"      {k}:\t{v}" for k, v in sorted(res[field].items())]
    for field, title in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                         ("startupProbe", "Startup")):
        if c.get(field):
            out.append(f"    {title}:\t{describe_probe(c[field])[2]}")
    out += _env_from(c)
    out += _env(c)
    mounts = sorted(c.get("volumeMounts") or [], key=lambda m: m.get("mountPath", ""))
    out.append("    Mounts:" + ("" if mounts else "\t<none>"))
    for m in mounts:
        flags = ["ro" if m.get("readOnly") else "rw"]
        if m.get("subPath"):
            flags.append(f'path="{m["subPath"]}"')
        out.append(f"      {m.get('mountPath')} from {m.get('name')} ({','.join(flags)})")
    return out


def _volume(v: Obj) -> list[str]:
    out = [f"   {v.get('name')}:"]
    if "emptyDir" in v:
        e = v["emptyDir"] or {}
        out += ["    Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)",
                f"    Medium:\t{e.get('medium', '')}",
                f"    SizeLimit:\t{e.get('sizeLimit') or '<unset>'}"]
    elif "configMap" in v:
        c = v["configMap"] or {}
        out += ["    Type:\tConfigMap (a volume populated by a ConfigMap)",
                f"    Name:\t{c.get('name', '')}",
                f"    Optional:\t{str(bool(c.get('optional'))).lower()}"]
    elif "secret" in v:
        s = v["secret"] or {}
        out += ["    Type:\tSecret (a volume populated by a Secret)",
                f"    SecretName:\t{s.get('secretName', '')}",
                f"    Optional:\t{str(bool(s.get('optional'))).lower()}"]
    elif "persistentVolumeClaim" in v:
        p = v["persistentVolumeClaim"] or {}
        out += ["    Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the "
                "same namespace)",
                f"    ClaimName:\t{p.get('claimName', '')}",
                f"    ReadOnly:\t{str(bool(p.get('readOnly'))).lower()}"]
    elif "hostPath" in v:
        h = v["hostPath"] or {}
        out += ["    Type:\tHostPath (bare host directory volume)",
                f"    Path:\t{h.get('path', '')}",
                f"    HostPathType:\t{h.get('type', '')}"]
    else:
        kind = next((k for k in v if k != "name"), "unknown")
        out.append(f"    Type:\t{kind}")
    return out


def _toleration(t: Obj) -> str:
    text = t.get("key", "")
    if t.get("value"):
        text += f"={t['value']}"
    if t.get("effect"):
        text += f":{t['effect']}"
    if t.get("operator") == "Exists" and not t.get("value"):
        text += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
    if t.get("tolerationSeconds") is not None:
        text += f" for {t['tolerationSeconds']}s"
    return text


def describe_pod_template(template: Obj) -> str:
    """The `Pod Template:` block, newline-terminated."""
    md, spec = template.get("metadata") or {}, template.get("spec") or {}
    out = ["Pod Template:"]
    labels = md.get("labels") or {}
    out += _multiline("  Labels", [f"{k}={labels[k]}" for k in sorted(labels)])
    if md.get("annotations"):
        out += _annotations("  Annotations", md["annotations"])
    if spec.get("serviceAccountName"):
        out.append(f"  Service Account:\t{spec['serviceAccountName']}")
    if spec.get("initContainers"):
        out.append("  Init Containers:")
        for c in spec["initContainers"]:
            out += _container(c)
    out.append("  Containers:")
    for c in spec.get("containers") or []:
        out += _container(c)
    volumes = spec.get("volumes") or []
    out.append("  Volumes:" + ("" if volumes else "\t<none>"))
    for v in volumes:
        out += _volume(v)
    sel = spec.get("nodeSelector") or {}
    out += _multiline("  Node-Selectors", [f"{k}={sel[k]}" for k in sorted(sel)])
    tols = sorted(spec.get("tolerations") or [], key=lambda t: t.get("key", ""))
    out += _multiline("  Tolerations", [_toleration(t) for t in tols])
    if spec.get("priorityClassName"):
        out.append(f"  Priority Class Name:\t{spec['priorityClassName']}")
    return "\n".join(out) + "\n"
