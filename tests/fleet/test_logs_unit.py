"""`fleet logs` without a cluster: kubectl's prefix, line splitting, query parameters, which
containers and pods are read, and the stop handle of the multiplexer."""

from __future__ import annotations

import threading

import pytest

from fleet import errors
from fleet.ops import logs as ops


def test_prefix_is_kubectls() -> None:
    # kubectl logs --prefix: "[pod/<name>/<container>] " (checked with kubectl v1.37.2)
    assert ops.prefix("web-7d9f-abcde", "server") == "[pod/web-7d9f-abcde/server] "
    src = ops.LogSource("ns", "p", "c")
    assert ops.LogLine(src, "hello world").render() == "[pod/p/c] hello world"


def test_split_lines_joins_chunks_and_keeps_a_final_partial_line() -> None:
    chunks = [b"a", b"b\nc", b"d\n\n", "\u00e9".encode()[:1], "\u00e9".encode()[1:] + b"\ne",
              b"nd"]
    assert list(ops.split_lines(iter(chunks))) == ["ab", "cd", "", "\u00e9", "end"]
    assert list(ops.split_lines(iter([b"x" * 10 + b"\n"]), max_line=4)) == ["xxxx", "xxxx", "xx"]


def test_log_options_as_query() -> None:
    assert ops.LogOptions().query("c") == {"container": "c"}
    assert ops.LogOptions(follow=True, previous=True, since_seconds=600, tail_lines=5,
                          timestamps=True, limit_bytes=100).query("c") == {
        "container": "c", "follow": "true", "previous": "true", "sinceSeconds": 600,
        "tailLines": 5, "timestamps": "true", "limitBytes": 100}
    assert ops.LogOptions(tail_lines=-1, since_time="2026-01-01T00:00:00Z").query("c") == {
        "container": "c", "sinceTime": "2026-01-01T00:00:00Z"}


def _pod(name: str, containers: list[str], init: tuple[str, ...] = (),
         default: str | None = None) -> dict:
    md = {"name": name}
    if default:
        md["annotations"] = {ops.DEFAULT_CONTAINER_ANNOTATION: default}
    return {"metadata": md, "spec": {"containers": [{"name": c} for c in containers],
                                     "initContainers": [{"name": c} for c in init]}}


def test_container_choice_like_kubectl() -> None:
    p = _pod("p", ["a", "b"], init=("setup",))
    assert ops.pod_containers(p) == ["a"]
    assert ops.pod_containers(_pod("p", ["a", "b"], default="b")) == ["b"]
    assert ops.pod_containers(p, all_containers=True) == ["setup", "a", "b"]


class FakeClient:
    def __init__(self, pods: list[dict] | None) -> None:
        self.pods = pods

    def get(self, path: str, query=None) -> dict:
        if self.pods is None:
            raise errors.NotFound('Error from server (NotFound): deployments.apps "m" not found')
        return {"metadata": {"name": "m"}, "spec": {"selector": {"matchLabels": {"app": "m"}}}}

    def list_all(self, path: str, query=None) -> dict:
        assert query == {"labelSelector": "app=m"}
        return {"items": self.pods}


def test_sources_cover_every_pod_and_say_what_is_missing() -> None:
    c = FakeClient([_pod("p2", ["a", "b"]), _pod("p1", ["a"])])
    assert ops.sources_for(c, "ns", "m") == [ops.LogSource("ns", "p1", "a"),
                                             ops.LogSource("ns", "p2", "a")]
    assert ops.sources_for(c, "ns", "m", container="b") == [ops.LogSource("ns", "p2", "b")]
    with pytest.raises(errors.NotFound) as exc:
        ops.sources_for(c, "ns", "m", container="zz")
    assert exc.value.message == ('container "zz" not found in any pod of deployment "m" '
                                 "(p1 has a; p2 has a, b)")
    with pytest.raises(errors.NotFound, match='deployment "m" in namespace "ns" has no pods'):
        ops.sources_for(FakeClient([]), "ns", "m")
    with pytest.raises(errors.NotFound, match='deployments.apps "m" not found'):
        ops.sources_for(FakeClient(None), "ns", "m")


class BlockingStream:
    """A LogStream stand-in that yields one line, then blocks until closed."""

    def __init__(self, source: ops.LogSource) -> None:
        self.source = source
        self.closed = threading.Event()

    def __iter__(self):
        yield f"first of {self.source.pod}"
        self.closed.wait(30)

    def close(self) -> None:
        self.closed.set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_follow_multiplexes_and_stops_from_another_thread(monkeypatch) -> None:
    opened: list[BlockingStream] = []

    def fake_open(client, ns, pod, container, options):
        if pod == "bad":
            raise errors.FleetError("Error from server (BadRequest): container is waiting")
        s = BlockingStream(ops.LogSource(ns, pod, container))
        opened.append(s)
        return s

    monkeypatch.setattr(ops, "open_stream", fake_open)
    sources = [ops.LogSource("ns", p, "c") for p in ("p1", "p2", "bad")]
    logs = ops.DeploymentLogs(None, sources, ops.LogOptions(follow=True), queue_size=2)
    got = []
    it = logs.lines()
    for item in it:
        got.append(item)
        if len(got) == 3:
            threading.Timer(0.05, logs.stop).start()
    assert sorted(x.render() for x in got if isinstance(x, ops.LogLine)) == [
        "[pod/p1/c] first of p1", "[pod/p2/c] first of p2"]
    failures = [x for x in got if isinstance(x, ops.LogFailure)]
    assert [f.source.pod for f in failures] == ["bad"]
    assert len(opened) == 2 and all(s.closed.is_set() for s in opened)
    assert not any(t.is_alive() for t in logs._threads)
