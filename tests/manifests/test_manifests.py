"""manifests/: the serving Dockerfile and the Kustomize base and overlays.

Offline checks read the files with PyYAML. Render checks run `kubectl kustomize` with the local
cluster's kubectl. Dry-run checks send the rendered objects to the real API server
(`kubectl apply --dry-run=server`) in a namespace that warns on the `restricted` Pod Security
profile, so the server, not this file, judges the securityContext.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
DOCKERFILE = MANIFESTS / "serving" / "Dockerfile"
REQUIREMENTS = MANIFESTS / "serving" / "requirements.txt"
VARIANTS = {"base": "base", "latency": "overlays/latency", "throughput": "overlays/throughput"}
MODE = {"base": "latency", "latency": "latency", "throughput": "throughput"}
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"
VERSION = "app.kubernetes.io/version"
# Imports allowed under serving/ without being in the image, by file: the demo trainer runs
# in the dev environment (`fleet model demo`), never in the container.
DEV_ONLY_IMPORTS = {"sklearn": {"demo_model.py"}}

Obj = dict[str, Any]


# ---------------------------------------------------------------- Dockerfile (offline)

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        op, _, args = full.partition(" ")
        out.append((op.upper(), args.strip()))
    return out


def test_dockerfile_base_user_entrypoint() -> None:
    ins = dockerfile_instructions()
    ops = [op for op, _ in ins]
    assert ins[0] == ("FROM", "python:3.11-slim")
    assert ops.count("FROM") == 1
    users = [args for op, args in ins if op == "USER"]
    assert len(users) == 1 and ops.index("USER") > max(i for i, op in enumerate(ops) if op == "RUN")
    uid = users[0].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "USER must be a numeric non-root UID (runAsNonRoot)"
    entry = [args for op, args in ins if op == "ENTRYPOINT"]
    assert entry and json.loads(entry[-1]) == ["python", "-m", "serving"]


def test_dockerfile_installs_pinned_serving_deps_and_no_model() -> None:
    ins = dockerfile_instructions()
    copies = [args.split() for op, args in ins if op in ("COPY", "ADD")]
    sources = {src for args in copies for src in args[:-1] if not src.startswith("--")}
    assert sources == {"constraints.txt", "manifests/serving/requirements.txt", "serving/"}
    pip = [args for op, args in ins if op == "RUN" and "pip install" in args]
    assert len(pip) == 1
    assert re.search(r"-r \S*requirements\.txt", pip[0])
    assert re.search(r"-c \S*constraints\.txt", pip[0])
    assert not any(op == "ADD" for op, _ in ins), "ADD can fetch remote content; use COPY"
    ignore = [line.strip() for line in
              (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "the build context must start empty and allow only what is copied"
    assert {line[1:] for line in ignore if line.startswith("!")} == sources


def _requirement_names() -> list[str]:
    names = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9._-]+", line), f"unpinned names only: {line!r}"
            names.append(_norm(line))
    return names


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_serving_requirements_are_pinned_project_dependencies() -> None:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        m = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    direct = {_norm(re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0])
              for dep in project["dependencies"]}
    names = _requirement_names()
    assert names
    for name in names:
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert name in direct, f"{name} is not a dependency in pyproject.toml"


def _closure(names: list[str]) -> set[str]:
    """The distributions ``names`` install here, following Requires-Dist (no extras)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return seen


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> files under serving/ that import it (stdlib and serving left out)."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "serving").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                mods = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top != "serving" and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(path.name)
    return found


def test_image_dependencies_are_all_pinned() -> None:
    """Every distribution the image installs (here: Linux, CPython 3.11) has a pin."""
    pins = {_norm(line.split("==")[0]) for line in
            (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    unpinned = _closure(_requirement_names()) - pins
    assert not unpinned, f"add to constraints.txt: {sorted(unpinned)}"


def test_image_covers_every_serving_import() -> None:
    installed = _closure(_requirement_names())
    dists = metadata.packages_distributions()
    missing = {}
    for module, files in _third_party_imports().items():
        if files <= DEV_ONLY_IMPORTS.get(module, set()):
            continue
        provided = {_norm(d) for d in dists.get(module, [])}
        if not provided & installed:
            missing[module] = sorted(files)
    assert not missing, f"imported under serving/ but not installed in the image: {missing}"


def test_image_tag_matches_project_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    arg = [args for op, args in dockerfile_instructions() if op == "ARG"]
    assert f"VERSION={version}" in arg
    kust = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    assert [i["newTag"] for i in kust["images"]] == [version]


# ---------------------------------------------------------------- Kustomize files (offline)

def test_kustomizations_reference_existing_files() -> None:
    for rel in VARIANTS.values():
        directory = MANIFESTS / rel
        kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
        assert kust["kind"] == "Kustomization"
        for res in kust.get("resources", []):
            assert (directory / res).exists(), f"{rel}: missing resource {res}"
        for patch in kust.get("patches", []):
            assert (directory / patch["path"]).is_file(), f"{rel}: missing patch {patch}"
        if rel != "base":
            assert kust["resources"] == ["../../base"]


def test_no_wildcard_or_private_address_literals() -> None:
    octet = r"(?:25[0-5]|2[0-4]\d|1?\d?\d)"
    bad = re.compile(
        rf"\b(?:0\.0\.0\.0|10\.{octet}\.{octet}\.{octet}|192\.168\.{octet}\.{octet}"
        rf"|172\.(?:1[6-9]|2\d|3[01])\.{octet}\.{octet})\b"
    )
    hits = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in MANIFESTS.rglob("*") if p.is_file()
            for m in bad.finditer(p.read_text())]
    assert not hits


# ---------------------------------------------------------------- rendered (kubectl kustomize)

@pytest.fixture(scope="module")
def kubectl(request: pytest.FixtureRequest) -> str:
    """The kubectl pinned with the local cluster; the cluster fixture explains when missing."""
    from devcluster.cluster import binaries

    found = binaries.find_binary("kubectl")
    return str(found) if found else request.getfixturevalue("cluster").kubectl


def render(kubectl: str, variant: str) -> str:
    res = subprocess.run([kubectl, "kustomize", str(MANIFESTS / VARIANTS[variant])],
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[Obj]]:
    return {v: list(yaml.safe_load_all(render(kubectl, v))) for v in VARIANTS}


def one(objs: list[Obj], kind: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def env_of(container: Obj) -> dict[str, Obj]:
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env: {names}"
    return {e["name"]: e for e in container["env"]}


def server(dep: Obj) -> Obj:
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_objects_and_labels(rendered: dict[str, list[Obj]], variant: str) -> None:
    objs = rendered[variant]
    assert sorted(o["kind"] for o in objs) == [
        "Deployment", "HTTPRoute", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    dep = one(objs, "Deployment")
    template_labels = dep["spec"]["template"]["metadata"]["labels"]
    for labels in (dep["metadata"]["labels"], template_labels):
        assert labels[COMPONENT] == "model-server"
        assert labels[NAME] and labels[VERSION]
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template_labels.items()
    assert VERSION not in selector, "a version in the selector would block rollouts"
    svc = one(objs, "Service")
    assert svc["spec"]["selector"].items() <= template_labels.items()
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {"http"}
    pdb = one(objs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
    hpa = one(objs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_probes_and_shutdown(rendered: dict[str, list[Obj]], variant: str) -> None:
    dep = one(rendered[variant], "Deployment")
    c = server(dep)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = env_of(c)
    assert str(ports["http"]) == env["PORT"]["value"]
    for probe, path in (("startupProbe", "/v2/health/ready"),
                        ("readinessProbe", "/v2/health/ready"),
                        ("livenessProbe", "/v2/health/live")):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    # Startup may fetch and warm a model for minutes before liveness takes over.
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(pre_stop[1]) + float(env["SHUTDOWN_TIMEOUT_S"]["value"])
    rolling = dep["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_security_and_env(rendered: dict[str, list[Obj]], variant: str) -> None:
    dep = one(rendered[variant], "Deployment")
    pod = dep["spec"]["template"]["spec"]
    c = server(dep)
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    # The read-only root needs writable /tmp and model cache volumes.
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = env_of(c)
    for path in ("/tmp", env["MODEL_CACHE_DIR"]["value"]):
        assert "emptyDir" in volumes[mounts[path]]
    assert {"MODEL_NAME", "MODEL_URI", "SERVING_MODE", "PORT", "HOST"} <= env.keys()
    assert env["HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["SERVING_MODE"]["value"] == MODE[variant]
    assert env["MODEL_URI"]["value"].startswith("hdfs://")
    res = c["resources"]
    for key in ("cpu", "memory"):
        assert key in res["requests"] and key in res["limits"]
    assert not c["image"].endswith(":latest") and ":" in c["image"]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_env_is_a_valid_server_config(rendered: dict[str, list[Obj]],
                                               variant: str) -> None:
    """Every env var is an option `python -m serving` knows, and the values parse."""
    from serving import config

    known = set(re.findall(r"\[\$([A-Z_]+)\]", config.build_parser({}).format_help()))
    c = server(one(rendered[variant], "Deployment"))
    env = env_of(c)
    assert env.keys() <= known, f"unknown to the server: {sorted(env.keys() - known)}"
    values = {name: e.get("value", "") for name, e in env.items()}
    values["HOST"] = "127.0.0.1"  # stands in for status.podIP
    cfg = config.load([], values)
    assert cfg.mode == MODE[variant]
    assert cfg.port == c["ports"][0]["containerPort"]
    assert cfg.model_name == values["MODEL_NAME"] and cfg.model_uri == values["MODEL_URI"]


def _cpu(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_overlays_tune_mode_and_resources(rendered: dict[str, list[Obj]]) -> None:
    base_env = env_of(server(one(rendered["base"], "Deployment")))
    lat = server(one(rendered["latency"], "Deployment"))
    thr = server(one(rendered["throughput"], "Deployment"))
    lat_env, thr_env = env_of(lat), env_of(thr)
    assert int(lat_env["RESPONSE_CACHE_SIZE"]["value"]) > 0
    assert "MAX_BATCH_SIZE" not in lat_env
    assert int(thr_env["MAX_BATCH_SIZE"]["value"]) > 1
    assert float(thr_env["MAX_BATCH_WAIT_MS"]["value"]) > 0
    assert int(thr_env["MAX_QUEUE"]["value"]) >= int(thr_env["MAX_BATCH_SIZE"]["value"])
    for c, env in ((lat, lat_env), (thr, thr_env)):
        # Guaranteed QoS, and no more worker processes than CPUs.
        assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
        assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
        assert int(env["SERVING_WORKERS"]["value"]) <= _cpu(c["resources"]["limits"]["cpu"])
        assert env["MODEL_URI"] == base_env["MODEL_URI"]
    assert _cpu(thr["resources"]["limits"]["cpu"]) > _cpu(lat["resources"]["limits"]["cpu"])
    lat_hpa = one(rendered["latency"], "HorizontalPodAutoscaler")["spec"]
    thr_hpa = one(rendered["throughput"], "HorizontalPodAutoscaler")["spec"]
    util = [h["metrics"][0]["resource"]["target"]["averageUtilization"]
            for h in (lat_hpa, thr_hpa)]
    assert util[0] < util[1], "latency scales out earlier than throughput"


# ---------------------------------------------------------------- server-side dry-run

def dry_run(cluster: Any, namespace: str, docs: list[Obj]) -> subprocess.CompletedProcess[str]:
    body = yaml.safe_dump_all(docs)
    return subprocess.run(
        [cluster.kubectl, "apply", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-"],
        input=body, capture_output=True, text=True, env=cluster.env, timeout=120, check=False,
    )


@pytest.fixture
def restricted_namespace(cluster: Any, namespace: str) -> str:
    """The test namespace, with Pod Security `restricted` warnings turned on."""
    res = subprocess.run(
        [cluster.kubectl, "label", "namespace", namespace,
         "pod-security.kubernetes.io/warn=restricted",
         "pod-security.kubernetes.io/warn-version=latest"],
        capture_output=True, text=True, env=cluster.env, timeout=60, check=False,
    )
    assert res.returncode == 0, res.stderr
    return namespace


@pytest.mark.cluster
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_server_side_dry_run(cluster: Any, restricted_namespace: str,
                             rendered: dict[str, list[Obj]], variant: str) -> None:
    res = dry_run(cluster, restricted_namespace, rendered[variant])
    assert res.returncode == 0, res.stderr
    assert "PodSecurity" not in res.stderr, res.stderr
    out = json.loads(res.stdout)
    items = out["items"] if out.get("kind") == "List" else [out]
    assert sorted(i["kind"] for i in items) == sorted(o["kind"] for o in rendered[variant])
    for item in items:
        assert item["metadata"]["namespace"] == restricted_namespace
        assert "uid" in item["metadata"], "not answered by the API server"
    dep = one(items, "Deployment")
    # The server kept the downward-API HOST and defaulted the probes' scheme.
    c = server(dep)
    assert env_of(c)["HOST"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTP"


@pytest.mark.cluster
def test_server_side_dry_run_catches_mistakes(cluster: Any, restricted_namespace: str,
                                              rendered: dict[str, list[Obj]]) -> None:
    """Controls: the same path rejects a broken object and warns on a weakened one."""
    broken = copy.deepcopy(one(rendered["base"], "Deployment"))
    broken["spec"]["selector"]["matchLabels"][NAME] = "some-other-model"
    res = dry_run(cluster, restricted_namespace, [broken])
    assert res.returncode != 0
    assert "selector" in res.stderr

    weak = copy.deepcopy(one(rendered["base"], "Deployment"))
    sc = server(weak)["securityContext"]
    sc["allowPrivilegeEscalation"] = True
    del sc["capabilities"]
    res = dry_run(cluster, restricted_namespace, [weak])
    assert res.returncode == 0, res.stderr
    assert "would violate PodSecurity" in res.stderr
    assert "allowPrivilegeEscalation" in res.stderr
