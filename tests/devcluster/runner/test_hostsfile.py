"""hostsfile: the kubelet-managed /etc/hosts content and in-place rewrites."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from devcluster.runner.hostsfile import hosts_file, write_hosts_file

BASE = (
    "# Kubernetes-managed hosts file.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def test_without_subdomain() -> None:
    got = hosts_file(pod_ip="127.1.128.5", hostname="web-0", subdomain=None, namespace="ns")
    assert got == BASE + "127.1.128.5\tweb-0\n"


def test_without_subdomain_ignores_peers() -> None:
    got = hosts_file(
        pod_ip="127.1.128.5",
        hostname="web-0",
        subdomain="",
        namespace="ns",
        peers=[("127.1.128.6", "web-1")],
    )
    assert got == BASE + "127.1.128.5\tweb-0\n"


def test_with_subdomain_and_peers() -> None:
    got = hosts_file(
        pod_ip="127.1.128.5",
        hostname="train-1",
        subdomain="workers",
        namespace="ml",
        peers=[
            ("127.1.128.7", "train-2"),
            ("127.1.128.5", "train-1"),  # the pod itself
            ("", "train-3"),  # not running yet: no IP
            ("127.1.128.4", "train-0"),
        ],
    )
    assert got == BASE + (
        "127.1.128.5\ttrain-1.workers.ml.svc.cluster.local\ttrain-1.workers\ttrain-1\n"
        "127.1.128.4\ttrain-0.workers.ml.svc.cluster.local\ttrain-0.workers\ttrain-0\n"
        "127.1.128.7\ttrain-2.workers.ml.svc.cluster.local\ttrain-2.workers\ttrain-2\n"
    )


def test_peer_order_is_deterministic() -> None:
    peers = [("127.1.128.9", "b"), ("127.1.128.8", "a"), ("127.1.128.7", "c")]
    a = hosts_file(pod_ip="127.1.128.1", hostname="z", subdomain="s", namespace="n", peers=peers)
    b = hosts_file(
        pod_ip="127.1.128.1",
        hostname="z",
        subdomain="s",
        namespace="n",
        peers=list(reversed(peers)),
    )
    assert a == b
    assert [line.split("\t")[-1] for line in a.splitlines()[-3:]] == ["a", "b", "c"]


def test_custom_cluster_domain_and_empty_domain() -> None:
    got = hosts_file(
        pod_ip="127.1.128.5",
        hostname="h",
        subdomain="s",
        namespace="n",
        cluster_domain="corp.local",
    )
    assert got == BASE + "127.1.128.5\th.s.n.svc.corp.local\th.s\th\n"
    # No cluster domain: the kubelet sets no domain, so only the bare hostname.
    got = hosts_file(
        pod_ip="127.1.128.5", hostname="h", subdomain="s", namespace="n", cluster_domain=""
    )
    assert got == BASE + "127.1.128.5\th\n"


def test_host_aliases() -> None:
    got = hosts_file(
        pod_ip="127.1.128.5",
        hostname="web-0",
        subdomain=None,
        namespace="ns",
        host_aliases=[
            {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
            {"ip": "10.1.2.3", "hostnames": ["baz"]},
        ],
    )
    assert got == BASE + (
        "127.1.128.5\tweb-0\n"
        "\n"
        "# Entries added by HostAliases.\n"
        "127.0.0.1\tfoo.local\tbar.local\n"
        "10.1.2.3\tbaz\n"
    )


def test_peers_then_host_aliases() -> None:
    got = hosts_file(
        pod_ip="127.1.128.5",
        hostname="a",
        subdomain="s",
        namespace="n",
        peers=[("127.1.128.6", "b")],
        host_aliases=[{"ip": "1.2.3.4", "hostnames": ["x"]}],
    )
    assert got == BASE + (
        "127.1.128.5\ta.s.n.svc.cluster.local\ta.s\ta\n"
        "127.1.128.6\tb.s.n.svc.cluster.local\tb.s\tb\n"
        "\n# Entries added by HostAliases.\n"
        "1.2.3.4\tx\n"
    )


def test_write_hosts_file_creates_then_rewrites_in_place(tmp_path: Path) -> None:
    path = tmp_path / "pod" / "etc-hosts"
    assert write_hosts_file(path, "one\n") is True
    assert path.read_text() == "one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    inode = path.stat().st_ino
    # A second handle stands in for the bind mount: it must see the new content.
    with open(path) as held:
        assert write_hosts_file(path, "two, longer content\n") is True
        assert path.stat().st_ino == inode
        assert held.read() == "two, longer content\n"
    assert write_hosts_file(path, "3\n") is True  # shorter: truncated, not left over
    assert path.read_text() == "3\n"
    assert path.stat().st_ino == inode
    assert sorted(os.listdir(path.parent)) == ["etc-hosts"]


def test_write_hosts_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    assert write_hosts_file(path, "same\n") is True
    mtime = path.stat().st_mtime_ns
    assert write_hosts_file(path, "same\n") is False
    assert path.stat().st_mtime_ns == mtime
