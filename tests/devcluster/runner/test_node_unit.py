"""Runner node pieces that need no cluster: IP blocks shared across clusters, pod IPs."""

from __future__ import annotations

import socket
from pathlib import Path

from devcluster.runner import node


def test_ip_blocks_are_exclusive_across_claimers(tmp_path: Path) -> None:
    a, b = node.IpBlocks(tmp_path), node.IpBlocks(tmp_path)
    first = a.claim()
    second = b.claim(preferred=first)  # taken: b falls back to the next free block
    assert (first, second) == (0, 1)
    assert a.claim(preferred=5) == 5
    assert str(node.node_pod_cidr(second)) == "127.1.129.0/24"
    assert node.block_of("127.1.133.0/24") == 5
    assert node.block_of("10.0.0.0/24") is None and node.block_of(None) is None


def test_pod_ips_skip_addresses_with_a_listener() -> None:
    ips = node.PodIps(100)
    with socket.socket() as s:
        s.bind(("127.1.228.2", 0))
        s.listen(1)
        first = ips.allocate("uid-a")
    assert first == "127.1.228.3"  # .2 is taken by a process outside any pod
    assert ips.allocate("uid-a") == first  # stable per pod
    assert ips.allocate("uid-b") == "127.1.228.2"  # free again once the listener closed
    ips.release("uid-a")
    assert ips.allocate("uid-c") == "127.1.228.3"
