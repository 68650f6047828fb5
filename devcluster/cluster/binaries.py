"""Find the control-plane binaries, or build them from the Go module proxy.

Lookup order per binary: `TEST_ASSET_<NAME>`, `$KUBEBUILDER_ASSETS/<name>`, `PATH`
(only when its version matches the pin), the user cache
(`$XDG_CACHE_HOME/modelfleet/bin/<versions>/`), else a build with the local Go toolchain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devcluster.cluster import versions
from devcluster.cluster.errors import ClusterError

BUILD_SCRIPT = Path(__file__).with_name("build_binaries.sh")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelfleet"


def cache_dir() -> Path:
    return cache_root() / "bin" / versions.cache_key()


@dataclass(frozen=True)
class Binaries:
    etcd: Path
    kwok: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    metrics_server: Path

    @classmethod
    def from_mapping(cls, paths: dict[str, Path]) -> Binaries:
        return cls(**{name.replace("-", "_"): paths[name] for name in versions.ALL_BINARIES})


def _env_asset(name: str) -> Path | None:
    var = "TEST_ASSET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    if os.environ.get(var):
        return Path(os.environ[var])
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets and (Path(assets) / name).is_file():
        return Path(assets) / name
    return None


def _path_matches_pin(path: Path, name: str) -> bool:
    """A binary on PATH counts only when it reports the pinned version."""
    want = {
        "etcd": versions.ETCD,
        "kwok": versions.KWOK,
        "metrics-server": versions.METRICS_SERVER,
    }.get(name, versions.KUBERNETES)
    args = {"etcd": ["--version"], "kwok": ["--version"], "kubectl": ["version", "--client"],
            "metrics-server": ["--version"]}
    try:
        out = subprocess.run(
            [str(path), *args.get(name, ["--version"])],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return want.lstrip("v") in (out.stdout + out.stderr)


def find_binary(name: str) -> Path | None:
    found = _env_asset(name)
    if found:
        return found
    on_path = shutil.which(name)
    if on_path and _path_matches_pin(Path(on_path), name):
        return Path(on_path)
    cached = cache_dir() / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    return None


def find_all() -> tuple[dict[str, Path], list[str]]:
    """Return (found binaries, names still missing)."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in versions.ALL_BINARIES:
        path = find_binary(name)
        if path:
            found[name] = path
        else:
            missing.append(name)
    return found, missing


def require() -> Binaries:
    found, missing = find_all()
    if missing:
        raise ClusterError(
            f"control-plane binaries not found: {', '.join(missing)}. "
            "Run `fleet cluster build` (needs Go >= 1.26), or set KUBEBUILDER_ASSETS "
            "to a directory holding them."
        )
    return Binaries.from_mapping(found)


def _check_go() -> str:
    go = shutil.which("go")
    if not go:
        raise ClusterError(
            "no control-plane binaries and no Go toolchain to build them. Install Go >= 1.26 "
            "(e.g. `apt-get install golang-go` or the official tarball), or set "
            "KUBEBUILDER_ASSETS to a directory with kube-apiserver, kube-controller-manager, "
            "kube-scheduler, kubectl, etcd and kwok."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", out.stdout.strip())
    if not match or (int(match[1]), int(match[2])) < (1, 26):
        raise ClusterError(
            f"Go {out.stdout.strip() or 'unknown'} is too old to build Kubernetes "
            f"{versions.KUBERNETES}; install Go >= 1.26."
        )
    return go


def build(progress: Callable[[str], None] | None = None) -> Binaries:
    """Build every missing binary into the user cache; shows which step runs and for how long."""
    found, missing = find_all()
    if not missing:
        kwok_crds(progress)
        gateway_crds(progress)
        return Binaries.from_mapping(found)
    _check_go()
    target = cache_dir()
    staging = target.with_name(target.name + ".partial")
    staging.mkdir(parents=True, exist_ok=True)
    # The script skips what it finds in its output dir: link the binaries already found there,
    # so that a newly pinned binary (metrics-server) is built alone.
    for name, path in found.items():
        link = staging / name
        if not link.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(path.resolve())
    log_path = cache_root() / "build.log"
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    say(f"building control-plane binaries ({', '.join(missing)}); log: {log_path}")
    started = time.monotonic()
    step_started = started
    step = "start"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["bash", str(BUILD_SCRIPT), str(staging),
             versions.KUBERNETES, versions.ETCD, versions.KWOK,
             versions.METRICS_SERVER],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if line.startswith("STEP "):
                now = time.monotonic()
                if step != "start":
                    say(f"  {step}: done in {now - step_started:.0f}s")
                step, step_started = line.split()[1], now
                if step != "done":
                    say(f"  {step}: building… (total {now - started:.0f}s)")
        rc = proc.wait()
    if rc != 0:
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-20:])
        raise ClusterError(f"building {step} failed (exit {rc}); see {log_path}:\n{tail}")
    target.mkdir(parents=True, exist_ok=True)
    for name in missing:
        src = staging / name
        if src.exists() and not src.is_symlink():
            src.replace(target / name)
    shutil.rmtree(staging, ignore_errors=True)
    say(f"built in {time.monotonic() - started:.0f}s into {target}")
    kwok_crds(progress)
    gateway_crds(progress)
    return require()


KWOK_CRD_KINDS = ("logs", "portforwards", "execs", "attaches",
                  "metrics", "resourceusages", "clusterresourceusages")
# kwok's ready-made Metric for metrics-server (the kubelet's /metrics/resource).
KWOK_METRIC_SOURCE = Path("kustomize", "metrics", "resource", "metrics-resource.yaml")


def kwok_crds(progress: Callable[[str], None] | None = None) -> list[Path]:
    """kwok's Logs/PortForward/Exec/Attach/Metric/ResourceUsage CRDs, copied once from kwok's
    module zip (with the module's `metrics-resource` Metric, see `kwok_metric`).

    kwok reads these objects (CRD mode) but does not install the CRDs; kwokctl would. The
    files live in the binary cache next to kwok, never in the repository.
    """
    target = cache_dir() / "kwok-crds"
    files = [target / f"kwok.x-k8s.io_{k}.yaml" for k in KWOK_CRD_KINDS]
    metric = target / KWOK_METRIC_SOURCE.name
    if all(f.is_file() for f in files) and metric.is_file():
        return files
    go = _check_go()
    cache_root().mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"fetching kwok {versions.KWOK} CRDs from the Go module proxy")
    out = subprocess.run([go, "mod", "download", "-json", f"sigs.k8s.io/kwok@{versions.KWOK}"],
                         capture_output=True, text=True, check=False, timeout=600,
                         cwd=cache_root())
    try:
        module_dir = Path(json.loads(out.stdout)["Dir"])
    except (ValueError, KeyError) as exc:
        raise ClusterError(f"could not download sigs.k8s.io/kwok@{versions.KWOK}: "
                           f"{out.stderr.strip() or exc}") from exc
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        src = module_dir / "kustomize" / "crd" / "bases" / f.name
        if not src.is_file():
            raise ClusterError(f"{src} is missing from the kwok module; cannot enable logs.")
        shutil.copyfile(src, f)
    if not (module_dir / KWOK_METRIC_SOURCE).is_file():
        raise ClusterError(f"{module_dir / KWOK_METRIC_SOURCE} is missing from the kwok module; "
                           "cannot serve /metrics/resource for metrics-server.")
    shutil.copyfile(module_dir / KWOK_METRIC_SOURCE, metric)
    return files


def kwok_metric(progress: Callable[[str], None] | None = None) -> Path:
    """kwok's `metrics-resource` Metric: the kubelet's resource metrics for metrics-server,
    computed from ResourceUsage objects (`kustomize/metrics/resource/` of the kwok module)."""
    kwok_crds(progress)
    return cache_dir() / "kwok-crds" / KWOK_METRIC_SOURCE.name


GATEWAY_API_VERSION = "v1.6.3"


def gateway_crds(progress: Callable[[str], None] | None = None) -> list[Path]:
    """The Gateway API standard-channel CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute,
    ReferenceGrant, ...), copied once from the `sigs.k8s.io/gateway-api` module zip.

    Only `config/crd/standard/*.yaml` CustomResourceDefinitions are taken (not the
    ValidatingAdmissionPolicy beside them). Like `kwok_crds`, the files live in the binary
    cache, never in the repository.
    """
    target = cache_dir() / f"gateway-api-{GATEWAY_API_VERSION}-crds"
    done = target / ".complete"
    if done.is_file():
        return sorted(target.glob("*.yaml"))
    go = _check_go()
    cache_root().mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"fetching Gateway API {GATEWAY_API_VERSION} CRDs from the Go module proxy")
    module = f"sigs.k8s.io/gateway-api@{GATEWAY_API_VERSION}"
    out = subprocess.run([go, "mod", "download", "-json", module],
                         capture_output=True, text=True, check=False, timeout=600,
                         cwd=cache_root())
    try:
        module_dir = Path(json.loads(out.stdout)["Dir"])
    except (ValueError, KeyError) as exc:
        raise ClusterError(f"could not download {module}: {out.stderr.strip() or exc}") from exc
    sources = sorted((module_dir / "config" / "crd" / "standard").glob("*.yaml"))
    crds = [s for s in sources if "kind: CustomResourceDefinition" in s.read_text()]
    if not any(s.name.endswith("_httproutes.yaml") for s in crds):
        raise ClusterError(f"{module} has no standard-channel HTTPRoute CRD in "
                           f"{module_dir / 'config/crd/standard'}")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for s in crds:
        shutil.copyfile(s, target / s.name)
    done.write_text(GATEWAY_API_VERSION + "\n")
    return sorted(target.glob("*.yaml"))
