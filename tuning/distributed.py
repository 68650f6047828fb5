"""TF_CONFIG for a multi-worker trial run as an Indexed Job behind a headless Service.

Pure (no TensorFlow): the Indexed Job gives each pod `JOB_COMPLETION_INDEX` and the hostname
`<job>-<index>`; with `subdomain: <svc>` every pod resolves as `<job>-<i>.<svc>` (on the local
process kubelet through its own /etc/hosts, kept current as peers get IPs; on a real cluster
through cluster DNS). `MultiWorkerMirroredStrategy` reads the cluster from `$TF_CONFIG`;
worker 0 is the chief.

Environment read by `from_env`:

    NUM_WORKERS            number of workers (pods); absent means 1 (a single-worker trial)
    JOB_COMPLETION_INDEX   this pod's index, 0..NUM_WORKERS-1 (absent with one worker: 0)
    JOB_NAME, SUBDOMAIN    the Job's name and the headless Service (only with > 1 worker)
    TF_PORT                the gRPC port every worker listens on (only with > 1 worker)
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tuning.contract import TrainerError

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label
_MAX_LABEL = 63


def worker_hosts(job_name: str, subdomain: str, workers: int) -> list[str]:
    """The workers' hostnames `<job>-<i>.<subdomain>`, i = 0..workers-1 (no port)."""
    return [f"{job_name}-{i}.{subdomain}" for i in range(workers)]


def tf_config(job_name: str, subdomain: str, index: int, workers: int, port: int) -> dict[
        str, Any]:
    """The TF_CONFIG dict for worker `index` of `workers` (task type "worker"; 0 is chief)."""
    if workers < 1:
        raise TrainerError(f"workers must be at least 1, got {workers}")
    _check_names(job_name, subdomain, workers)
    if not 0 <= index < workers:
        raise TrainerError(f"worker index {index} is outside 0..{workers - 1}")
    if not 1 <= port <= 65535:
        raise TrainerError(f"port {port} is outside 1..65535")
    return {
        "cluster": {"worker": [f"{h}:{port}" for h in worker_hosts(job_name, subdomain,
                                                                   workers)]},
        "task": {"type": "worker", "index": index},
    }


def _check_names(job_name: str, subdomain: str, workers: int) -> None:
    if not job_name:
        raise TrainerError("JOB_NAME is empty")
    host = f"{job_name}-{workers - 1}"
    if not _LABEL.match(job_name) or len(host) > _MAX_LABEL:
        raise TrainerError(f"JOB_NAME {job_name!r} does not give valid pod hostnames like "
                           f"{host!r} (lowercase letters, digits and '-', at most "
                           f"{_MAX_LABEL} characters)")
    if not subdomain:
        raise TrainerError("SUBDOMAIN is empty")
    if not _LABEL.match(subdomain) or len(subdomain) > _MAX_LABEL:
        raise TrainerError(f"SUBDOMAIN {subdomain!r} is not a valid Service name (lowercase "
                           f"letters, digits and '-', at most {_MAX_LABEL} characters)")


def _int_env(environ: Mapping[str, str], name: str, *, required: bool, default: int = 0,
             low: int | None = None, high: int | None = None) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        if required:
            raise TrainerError(f"{name} is not set")
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise TrainerError(f"{name}={raw!r} is not an integer") from None
    if low is not None and value < low:
        raise TrainerError(f"{name}={value} must be at least {low}")
    if high is not None and value > high:
        raise TrainerError(f"{name}={value} must be at most {high}")
    return value


def from_env(environ: Mapping[str, str]) -> tuple[int, int, dict[str, Any] | None]:
    """(index, workers, tf_config) from a pod's environment; tf_config is None for 1 worker.

    With one worker only NUM_WORKERS/JOB_COMPLETION_INDEX are looked at (both optional); with
    more, all five variables are required. Every missing or invalid value raises
    `TrainerError` naming the variable.
    """
    workers = _int_env(environ, "NUM_WORKERS", required=False, default=1, low=1)
    multi = workers > 1
    index = _int_env(environ, "JOB_COMPLETION_INDEX", required=multi, default=0, low=0)
    if index >= workers:
        raise TrainerError(f"JOB_COMPLETION_INDEX={index} is outside 0..{workers - 1} "
                           f"(NUM_WORKERS={workers})")
    if not multi:
        return index, workers, None
    missing = [n for n in ("JOB_NAME", "SUBDOMAIN") if not environ.get(n, "").strip()]
    if missing:
        raise TrainerError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                           f"not set (needed with NUM_WORKERS={workers})")
    port = _int_env(environ, "TF_PORT", required=True, low=1, high=65535)
    config = tf_config(environ["JOB_NAME"].strip(), environ["SUBDOMAIN"].strip(), index,
                       workers, port)
    return index, workers, config


def hosts_of(config: Mapping[str, Any]) -> list[str]:
    """The hostnames (ports stripped) of every worker in a TF_CONFIG dict."""
    return [_strip_port(addr) for addr in config["cluster"]["worker"]]


def _strip_port(addr: str) -> str:
    host, sep, port = addr.rpartition(":")
    return host if host and sep and port.isdigit() else addr


Resolver = Callable[..., Any]


def wait_for_peers(hosts: Iterable[str], timeout_s: float,
                   resolve: Resolver = socket.getaddrinfo, *,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic,
                   first_delay_s: float = 0.1, max_delay_s: float = 2.0) -> dict[str, str]:
    """Wait until every host name resolves; return {host: first address}.

    `hosts` may carry ports (`host:2222`, as in TF_CONFIG). Retries with exponential backoff
    (first_delay_s doubling up to max_delay_s, never sleeping past the deadline) and raises
    `TimeoutError` naming the peers still unresolved, and the last error for each, once
    `timeout_s` has passed.
    """
    pending = list(dict.fromkeys(_strip_port(h) for h in hosts))
    resolved: dict[str, str] = {}
    errors: dict[str, str] = {}
    deadline = clock() + timeout_s
    delay = first_delay_s
    while True:
        for host in list(pending):
            try:
                infos = resolve(host, None)
            except (OSError, UnicodeError) as exc:
                errors[host] = f"{type(exc).__name__}: {exc}"
                continue
            if not infos:
                errors[host] = "no addresses"
                continue
            resolved[host] = str(infos[0][4][0])
            pending.remove(host)
            errors.pop(host, None)
        if not pending:
            return resolved
        left = deadline - clock()
        if left <= 0:
            detail = "; ".join(f"{h} ({errors.get(h, 'unresolved')})" for h in pending)
            raise TimeoutError(f"{len(pending)} of {len(pending) + len(resolved)} peers did "
                               f"not resolve within {timeout_s:g}s: {detail}")
        sleep(min(delay, left))
        delay = min(delay * 2, max_delay_s)
