"""The Hadoop HDFS minicluster (WebHDFS on) bound to 127.0.0.1: a local stand-in for Hadoop.

``devcluster/hdfs/minicluster.sh`` fetches the jars (cached outside the repo, first run
downloads about 100 MB) and starts one JVM running a NameNode and one DataNode. The tests'
``hdfs`` fixture (tests/fixtures/hdfs.py) and ``fleet cluster up --hdfs`` start it through
this module, in its own process group, and stop exactly that group.

Two ports, two protocols:

- ``url`` = ``hdfs://127.0.0.1:<rpc_port>``: the NameNode RPC address (Hadoop's 8020). This is
  what an ``hdfs://`` model URI names, e.g. ``MODEL_URI=hdfs://127.0.0.1:<rpc_port>/models/x``.
- ``webhdfs_url`` = ``http://127.0.0.1:<http_port>``: the NameNode HTTP address (Hadoop 3's
  9870), where WebHDFS lives (``/webhdfs/v1/...``). HdfsCLI (``hdfs.InsecureClient``) talks
  only to this one; its 307 redirects point at the DataNode's own loopback HTTP port.

Set ``MODELFLEET_TEST_HDFS_DIR`` to keep one cluster across runs: the fixture uses the cluster
recorded there if it still answers, else starts one there and leaves it running
(``devcluster/hdfs/minicluster.sh stop --base "$MODELFLEET_TEST_HDFS_DIR"`` stops it).

The RPC port cannot be turned into the HTTP port by rule (the serving store assumes 9870 only
for ``webhdfs://`` URIs without a port), so whoever hands an ``hdfs://`` URI to the store must
also hand over the WebHDFS base, as ``serving.store`` reads it: ``hdfs.env`` is
``{"WEBHDFS_URL": webhdfs_url}`` for a server process, ``webhdfs_uri(path)`` is the same
location as a ``webhdfs://127.0.0.1:<http_port>/path`` URI that needs no override, and
``webhdfs_for(uri)`` / ``namenodes`` give the mapping itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from hdfs import InsecureClient

SCRIPT = Path(__file__).with_name("minicluster.sh")
HOST = "127.0.0.1"
START_TIMEOUT_S = float(os.environ.get("MODELFLEET_HDFS_START_TIMEOUT", "240"))
EXIT_PORT_IN_USE = 3


class HdfsStartError(RuntimeError):
    """The minicluster could not be fetched or started; the message says why."""


@dataclass(frozen=True)
class HdfsCluster:
    """A running minicluster: addresses and helpers (see the module docstring)."""

    rpc_port: int
    http_port: int
    pid: int
    base: Path

    @property
    def url(self) -> str:
        """``hdfs://127.0.0.1:<rpc_port>``: the NameNode RPC address."""
        return f"hdfs://{HOST}:{self.rpc_port}"

    @property
    def webhdfs_url(self) -> str:
        """``http://127.0.0.1:<http_port>``: the NameNode HTTP (WebHDFS) address."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def namenodes(self) -> dict[str, str]:
        """``{"127.0.0.1:<rpc_port>": webhdfs_url}``: hdfs:// authority to WebHDFS base URL."""
        return {f"{HOST}:{self.rpc_port}": self.webhdfs_url}

    def uri(self, path: str) -> str:
        """The ``hdfs://`` URI of an absolute HDFS path on this cluster."""
        return f"{self.url}/{path.lstrip('/')}"

    def webhdfs_uri(self, path: str) -> str:
        """The ``webhdfs://127.0.0.1:<http_port>/path`` URI of an HDFS path."""
        return f"webhdfs://{HOST}:{self.http_port}/{path.lstrip('/')}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a server given ``uri(...)``: ``{"WEBHDFS_URL": webhdfs_url}``."""
        return {"WEBHDFS_URL": self.webhdfs_url}

    def webhdfs_for(self, uri: str) -> tuple[str, str]:
        """Map ``hdfs://127.0.0.1:<rpc_port>/p`` to ``(webhdfs_url, "/p")``.

        Raises ``ValueError`` for a URI that does not name this cluster.
        """
        parts = urlsplit(uri)
        if parts.scheme != "hdfs" or parts.netloc not in self.namenodes:
            raise ValueError(f"{uri!r} does not name this cluster ({self.url})")
        return self.namenodes[parts.netloc], parts.path or "/"

    def client(
        self,
        user: str | None = None,
        root: str | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
    ) -> InsecureClient:
        """An ``hdfs.InsecureClient`` on WebHDFS (permissions are off, any user may write)."""
        from hdfs import InsecureClient

        return InsecureClient(self.webhdfs_url, user=user or "modelfleet", root=root,
                              timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def _http_json(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.load(resp)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def stop(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """Stop the process group this module started: SIGTERM, then SIGKILL after ``grace_s``.

    The launcher's trap forwards SIGTERM to the JVM and waits for it, so the leader's exit
    means the JVM is gone too.
    """
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
            return


def fetch() -> Path:
    """Resolve the jars into the cache (no-op when cached); return the classpath file."""
    res = subprocess.run([str(SCRIPT), "fetch"], stdout=subprocess.PIPE, stderr=None, text=True,
                         check=False)
    if res.returncode != 0:
        raise HdfsStartError(f"{SCRIPT.name} fetch failed (exit {res.returncode}); see above")
    return Path(res.stdout.strip().splitlines()[-1])


def start(base: Path, attempts: int = 3, watch_pid: int | None = None,
          detach: bool = False) -> tuple[HdfsCluster, subprocess.Popen[bytes]]:
    """Start the minicluster under ``base`` and wait until WebHDFS serves and a DataNode is live.

    The cluster stops by itself when ``watch_pid`` (default: this process) is gone, unless
    ``detach``. Retries with new ports when one was taken between picking and binding.
    """
    watch = [] if detach else ["--watch-pid", str(watch_pid or os.getpid())]
    for attempt in range(1, attempts + 1):
        rpc = http = _free_port()
        while http == rpc:
            http = _free_port()
        (base / "ports.json").unlink(missing_ok=True)  # a stale one from an earlier run
        launcher_log = base / "launcher.log"
        with launcher_log.open("wb") as out:
            proc = subprocess.Popen(
                [str(SCRIPT), "run", "--base", str(base), "--nnport", str(rpc),
                 "--httpport", str(http), *watch],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            cluster = _wait_ready(proc, base, rpc, http)
        except _PortTaken:
            stop(proc)
            if attempt == attempts:
                raise HdfsStartError(f"ports kept colliding; last: {_tail(launcher_log)}") from None
            continue
        except BaseException:
            stop(proc)
            raise
        return cluster, proc
    raise AssertionError("unreachable")


class _PortTaken(Exception):
    pass


def attach(base: Path) -> HdfsCluster | None:
    """The cluster recorded under ``base`` when its JVM still runs and WebHDFS answers."""
    try:
        info = json.loads((base / "ports.json").read_text())
        cmdline = Path(f"/proc/{int(info['pid'])}/cmdline").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    if b"MiniDFSClusterManager" not in cmdline:
        return None
    cluster = HdfsCluster(rpc_port=int(info["rpc_port"]), http_port=int(info["http_port"]),
                          pid=int(info["pid"]), base=base)
    return cluster if _serving(cluster) else None


def _serving(cluster: HdfsCluster) -> bool:
    status = f"{cluster.webhdfs_url}/webhdfs/v1/?op=GETFILESTATUS&user.name=modelfleet"
    jmx = f"{cluster.webhdfs_url}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystemState"
    beans = (_http_json(jmx) or {}).get("beans") or [{}]
    return _http_json(status) is not None and beans[0].get("NumLiveDataNodes", 0) >= 1


def _wait_ready(proc: subprocess.Popen[bytes], base: Path, rpc: int, http: int) -> HdfsCluster:
    ports_file = base / "ports.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ports_file.exists():
        code = proc.poll()
        if code == EXIT_PORT_IN_USE:
            raise _PortTaken
        if code is not None:
            raise HdfsStartError(
                f"minicluster.sh exited with {code} during startup.\n"
                f"--- launcher ---\n{_tail(base / 'launcher.log')}\n"
                f"--- {base / 'minicluster.log'} ---\n{_tail(base / 'minicluster.log')}"
            )
        if time.monotonic() > deadline:
            raise HdfsStartError(
                f"HDFS not up after {START_TIMEOUT_S:.0f}s.\n{_tail(base / 'minicluster.log')}"
            )
        time.sleep(0.25)
    info = json.loads(ports_file.read_text())
    cluster = HdfsCluster(rpc_port=rpc, http_port=http, pid=int(info["pid"]), base=base)
    while True:
        if _serving(cluster):
            return cluster
        if proc.poll() is not None or time.monotonic() > deadline:
            raise HdfsStartError(
                f"WebHDFS at {cluster.webhdfs_url} never became ready (no live DataNode?).\n"
                f"{_tail(base / 'minicluster.log')}"
            )
        time.sleep(0.25)


