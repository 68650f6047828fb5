"""The bind guard: wildcard binds in a runner pod mean its pod IP, as in a pod's own netns.

Runner pods have no network namespace; a process binding 0.0.0.0 or [::] (TensorFlow's gRPC
server always does) would listen on every host address and take the port from every other
pod. `bindguard.c`, preloaded into every container process, rewrites such binds to the pod
IP (IPv6 wildcards to the v4-mapped pod IP). The runner compiles it once at start with the
host's C compiler into its state directory, keyed by the source's hash, so an edited source
is rebuilt and nothing built lands in the checkout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("bindguard.c")
ADDRESS_ENV = "FLEET_BIND_ADDRESS"
INSTALL_HINT = ("install a C compiler and the C library headers: "
                "`sudo apt-get update && sudo apt-get install -y gcc libc6-dev` "
                "(`make setup` installs them when run as root)")


class BindGuardUnavailable(RuntimeError):
    """The guard cannot be built here; str() says why and how to fix it."""


def library_path(state_dir: Path, source: Path = SOURCE) -> Path:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    return state_dir / "lib" / f"bindguard-{digest}.so"


def build(state_dir: Path, source: Path = SOURCE, compiler: str | None = None) -> Path:
    """The guard's shared library for this source, compiled unless already cached."""
    target = library_path(state_dir, source)
    if target.is_file():
        return target
    cc = compiler or os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        raise BindGuardUnavailable(
            f"the process kubelet preloads {source.name} into every container (wildcard binds "
            f"become pod-IP binds) and must compile it, but there is no C compiler "
            f"({cc!r} not found); {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    argv = [cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(source), "-ldl"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BindGuardUnavailable(f"compiling {source} failed: {exc}; {INSTALL_HINT}") from exc
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise BindGuardUnavailable(
            f"compiling {source} failed (`{' '.join(argv)}` exited {proc.returncode}): "
            f"{proc.stderr.strip()[-800:]}; {INSTALL_HINT}")
    os.replace(tmp, target)
    return target


def preload_env(env: dict[str, str], library: Path, pod_ip: str) -> dict[str, str]:
    """`env` with the guard preloaded after the pod's own LD_PRELOAD and the pod IP to bind."""
    out = dict(env)
    own = out.get("LD_PRELOAD", "").strip()
    entries = own.replace(":", " ").split()
    if str(library) not in entries:
        out["LD_PRELOAD"] = f"{own} {library}" if own else str(library)
    out[ADDRESS_ENV] = pod_ip
    return out
