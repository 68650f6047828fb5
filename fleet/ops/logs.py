"""Container logs: one pod+container stream (`LogStream`), and every pod of a deployment
multiplexed with kubectl's `[pod/NAME/CONTAINER] ` prefixes (`DeploymentLogs`).

For the TUI: `open_stream(client, ns, pod, container, LogOptions(follow=True, tail_lines=500))`
returns a `LogStream`; iterate it in a worker for lines (str, no newline) and call `close()`
from any thread to stop it; iteration then ends without an error. The stream ends by itself
when the server closes it (a non-follow read, or a container that ended); reconnecting is
the caller's choice (e.g. `LogOptions(since_time=<last timestamp>, timestamps=True)`).
`DeploymentLogs.lines()` is the same for a whole deployment, with a bounded queue between the
per-stream threads and the consumer (back-pressure, not unbounded memory).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import urllib3

from fleet import errors, replicasets
from fleet.kube import collection_path
from fleet.ops._common import get_deployment

if TYPE_CHECKING:
    from fleet.api_client import LogReader, Reader

Obj = dict[str, Any]
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
MAX_LINE = 1 << 20  # a line longer than this is split (bounded memory for newline-less output)


@dataclass(frozen=True)
class LogOptions:
    """`PodLogOptions` as query parameters (kubectl's flags of the same names)."""

    follow: bool = False
    previous: bool = False
    since_seconds: int | None = None
    since_time: str | None = None  # RFC 3339
    tail_lines: int | None = None  # None or negative: all
    timestamps: bool = False
    limit_bytes: int | None = None

    def query(self, container: str) -> dict[str, Any]:
        q: dict[str, Any] = {"container": container}
        if self.follow:
            q["follow"] = "true"
        if self.previous:
            q["previous"] = "true"
        if self.since_seconds is not None and self.since_seconds > 0:
            q["sinceSeconds"] = int(self.since_seconds)
        elif self.since_time:
            q["sinceTime"] = self.since_time
        if self.tail_lines is not None and self.tail_lines >= 0:
            q["tailLines"] = int(self.tail_lines)
        if self.timestamps:
            q["timestamps"] = "true"
        if self.limit_bytes:
            q["limitBytes"] = int(self.limit_bytes)
        return q


@dataclass(frozen=True)
class LogSource:
    namespace: str
    pod: str
    container: str

    @property
    def prefix(self) -> str:
        """kubectl's `--prefix` (`[pod/NAME/CONTAINER] `, logs.go `addPrefixIfNeeded`)."""
        return prefix(self.pod, self.container)


def prefix(pod: str, container: str) -> str:
    return f"[pod/{pod}/{container}] "


@dataclass(frozen=True)
class LogLine:
    source: LogSource
    text: str  # without the trailing newline

    def render(self) -> str:
        return self.source.prefix + self.text


@dataclass(frozen=True)
class LogFailure:
    """A stream that could not be opened or broke; the others go on."""

    source: LogSource
    error: errors.FleetError


def split_lines(chunks: Iterator[bytes], max_line: int = MAX_LINE) -> Iterator[str]:
    """Bytes chunks → decoded lines without newlines; a final unterminated line too."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            while len(line) > max_line:
                yield line[:max_line].decode(errors="replace")
                line = line[max_line:]
            yield line.decode(errors="replace")
        while len(buf) >= max_line:
            line, buf = buf[:max_line], buf[max_line:]
            yield line.decode(errors="replace")
    if buf:
        yield buf.decode(errors="replace")


def pod_log_path(namespace: str, pod: str) -> str:
    return f"{collection_path('v1', 'pods', namespace)}/{quote(pod, safe='')}/log"


class LogStream:
    """One open `GET …/pods/P/log` response. Iterate for lines; `close()` from any thread."""

    def __init__(self, source: LogSource, response: urllib3.BaseHTTPResponse) -> None:
        self.source = source
        self._resp = response
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _chunks(self) -> Iterator[bytes]:
        resp = self._resp
        while not self._closed.is_set():
            data = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not data:
                return
            yield data

    def __iter__(self) -> Iterator[str]:
        try:
            for line in split_lines(self._chunks()):
                if self._closed.is_set():
                    return
                yield line
        except Exception as exc:
            # close() from another thread tears the response down under the reader; http.client
            # then fails in odd ways (ValueError, AttributeError): a stop, not an error.
            if self._closed.is_set():
                return
            if isinstance(exc, urllib3.exceptions.HTTPError | OSError | ValueError):
                raise errors.Unreachable(
                    f"log stream of pod/{self.source.pod}/{self.source.container} lost: {exc}"
                ) from exc
            raise
        finally:
            with contextlib.suppress(Exception):
                self._resp.release_conn()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(Exception):  # best effort from another thread
            self._resp.shutdown()
        with contextlib.suppress(Exception):
            self._resp.close()

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stream(client: LogReader, namespace: str, pod: str, container: str,
                options: LogOptions = LogOptions()) -> LogStream:
    """Open one container's log; API errors (pod gone, container waiting, no previous
    container) raise typed `FleetError`s with the server's message."""
    read = None if options.follow else client.timeout
    try:
        resp = client.stream(pod_log_path(namespace, pod), options.query(container),
                             read_timeout=read, accept="*/*")
    except errors.FleetError as err:
        if options.previous and err.status == 400:
            raise _previous_error(client, namespace, pod, container) or err from None
        raise
    return LogStream(LogSource(namespace, pod, container), resp)


def _previous_error(client: Reader, namespace: str, pod: str, container: str
                    ) -> errors.FleetError | None:
    """The kubelet's text when there is no previous instance (kwok answers with a file path)."""
    try:
        p = client.get(pod_log_path(namespace, pod)[: -len("/log")])
    except errors.FleetError:
        return None
    st = p.get("status") or {}
    for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        if cs.get("name") == container and not (cs.get("lastState") or {}).get("terminated"):
            msg = f'previous terminated container "{container}" in pod "{pod}" not found'
            return errors.FleetError(f"Error from server (BadRequest): {msg}", status=400,
                                     reason="BadRequest", detail=msg)
    return None


# --- a deployment's pods -------------------------------------------------------------------

def pod_containers(pod: Obj, *, all_containers: bool = False) -> list[str]:
    """kubectl's choice: the default-container annotation, else the first container; with
    `all_containers` init containers, containers and ephemeral containers in spec order."""
    spec = pod.get("spec") or {}
    if all_containers:
        return [c.get("name", "") for key in ("initContainers", "containers",
                                               "ephemeralContainers")
                for c in spec.get(key) or []]
    names = [c.get("name", "") for c in spec.get("containers") or []]
    default = replicasets.annotations_of(pod).get(DEFAULT_CONTAINER_ANNOTATION)
    if default and default in names:
        return [default]
    return names[:1]


def all_container_names(pod: Obj) -> list[str]:
    return pod_containers(pod, all_containers=True)


def selector_pods(client: Reader, namespace: str, deployment: Obj) -> list[Obj]:
    """Every pod the Deployment's selector matches (the current ReplicaSet's and older ones),
    sorted by name."""
    selector = replicasets.selector_to_query((deployment.get("spec") or {}).get("selector"))
    if not selector:
        name = (deployment.get("metadata") or {}).get("name")
        raise errors.FleetError(f'deployment "{name}" has no selector')
    doc = client.list_all(collection_path("v1", "pods", namespace), {"labelSelector": selector})
    return sorted(doc.get("items") or [], key=lambda p: (p.get("metadata") or {}).get("name", ""))


def deployment_pods(client: Reader, namespace: str, name: str) -> list[Obj]:
    """`selector_pods` of deployment `name`; `NotFound` (kubectl's text) if it does not exist."""
    return selector_pods(client, namespace, get_deployment(client, namespace, name))


def job_pods(client: Reader, namespace: str, name: str) -> list[Obj]:
    """The pods of Job `name` (every index of a distributed training run), sorted by name."""
    from urllib.parse import quote

    client.get(f"{collection_path('batch/v1', 'jobs', namespace)}/{quote(name, safe='')}")
    doc = client.list_all(collection_path("v1", "pods", namespace),
                          {"labelSelector": f"batch.kubernetes.io/job-name={name}"})
    return sorted(doc.get("items") or [], key=lambda p: (p.get("metadata") or {}).get("name", ""))


def resolve_pods(client: Reader, namespace: str, name: str) -> tuple[str, str, list[Obj]]:
    """(kind, name, pods) for `NAME`, `deployment/NAME` or `job/NAME`. A bare name is a
    Deployment if one exists, else a Job (training runs, sweep workers)."""
    kind, sep, bare = name.partition("/")
    if sep:
        kind = {"deploy": "deployment", "deployments": "deployment", "jobs": "job",
                "job.batch": "job", "deployment.apps": "deployment"}.get(kind, kind)
        if kind not in ("deployment", "job"):
            raise errors.FleetError(f'error: fleet logs reads deployments and jobs, not "{kind}"')
        if kind == "job":
            return "job", bare, job_pods(client, namespace, bare)
        return "deployment", bare, deployment_pods(client, namespace, bare)
    try:
        return "deployment", name, deployment_pods(client, namespace, name)
    except errors.NotFound as not_a_deployment:
        try:
            return "job", name, job_pods(client, namespace, name)
        except errors.NotFound:
            raise not_a_deployment from None  # kubectl's message names the deployment


def sources_for(client: Reader, namespace: str, name: str, *, container: str | None = None,
                all_containers: bool = False) -> list[LogSource]:
    """The (pod, container) streams of a deployment or job, or a clear error: unknown name,
    no pods, a container no pod has."""
    kind, name, pods = resolve_pods(client, namespace, name)
    if not pods:
        raise errors.NotFound(f'{kind} "{name}" in namespace "{namespace}" has no pods')
    out: list[LogSource] = []
    missing: list[str] = []
    for p in pods:
        pname = p["metadata"]["name"]
        if container:
            names = all_container_names(p)
            if container in names:
                out.append(LogSource(namespace, pname, container))
            else:
                missing.append(f"{pname} has {', '.join(names) or 'none'}")
        else:
            out.extend(LogSource(namespace, pname, c)
                       for c in pod_containers(p, all_containers=all_containers))
    if container and not out:
        raise errors.NotFound(f'container "{container}" not found in any pod of {kind} '
                              f'"{name}" ({"; ".join(missing)})')
    return out


@dataclass
class DeploymentLogs:
    """The logs of several streams as one iterator of `LogLine`/`LogFailure`.

    Without follow the streams are read one after the other (kubectl's order, output grouped
    per pod); with follow, one thread per stream feeds a bounded queue. `stop()` from any
    thread ends `lines()` promptly and closes every stream."""

    client: LogReader
    sources: list[LogSource]
    options: LogOptions = field(default_factory=LogOptions)
    queue_size: int = 1000
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _streams: list[LogStream] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)

    def _open(self, source: LogSource) -> LogStream | None:
        stream = open_stream(self.client, source.namespace, source.pod, source.container,
                             self.options)
        with self._lock:
            if self._stop.is_set():
                stream.close()
                return None
            self._streams.append(stream)
        return stream

    def _sequential(self) -> Iterator[LogLine | LogFailure]:
        for source in self.sources:
            if self._stop.is_set():
                return
            try:
                stream = self._open(source)
                if stream is None:
                    return
                with stream:
                    for text in stream:
                        yield LogLine(source, text)
            except errors.FleetError as exc:
                yield LogFailure(source, exc)

    def _pump(self, source: LogSource, out: queue.Queue) -> None:
        def put(item: object) -> bool:
            while not self._stop.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            stream = self._open(source)
            if stream is None:
                return
            with stream:
                for text in stream:
                    if not put(LogLine(source, text)):
                        return
        except errors.FleetError as exc:
            put(LogFailure(source, exc))
        finally:
            put(None)

    def _concurrent(self) -> Iterator[LogLine | LogFailure]:
        out: queue.Queue = queue.Queue(maxsize=self.queue_size)
        for source in self.sources:
            t = threading.Thread(target=self._pump, args=(source, out), daemon=True,
                                 name=f"logs {source.pod}/{source.container}")
            self._threads.append(t)
            t.start()
        running = len(self._threads)
        try:
            while running and not self._stop.is_set():
                try:
                    item = out.get(timeout=0.5)
                except queue.Empty:
                    continue
                if item is None:
                    running -= 1
                else:
                    yield item
        finally:
            self.stop()

    def lines(self) -> Iterator[LogLine | LogFailure]:
        if self.options.follow and len(self.sources) > 1:
            return self._concurrent()
        return self._sequential()

    def stop(self, join_timeout: float = 5.0) -> None:
        """Stop every stream (from any thread); waits briefly for the pump threads."""
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(join_timeout)
