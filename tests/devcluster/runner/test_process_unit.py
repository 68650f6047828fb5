"""Mount ordering of the container shim (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

from devcluster.runner.process import order_mounts
from devcluster.runner.volumes import Mount


def test_a_mount_that_hides_other_sources_goes_last() -> None:
    pod = Path("/tmp/state/runner/local-0/pods/ns_p_uid")
    tmp = Mount(pod / "volumes" / "tmp", "/tmp", False)
    cache = Mount(pod / "volumes" / "model-cache", "/var/cache/model", False)
    hosts = Mount(pod / "etc-hosts", "/etc/hosts", False)
    inside_tmp = Mount(Path("/srv/data"), "/tmp/data", True)
    ordered = order_mounts([tmp, inside_tmp, cache, hosts])
    assert [m.mount_path for m in ordered] == ["/etc/hosts", "/var/cache/model", "/tmp",
                                               "/tmp/data"]


def test_parents_mount_before_children() -> None:
    a = Mount(Path("/srv/a"), "/data/sub", False)
    b = Mount(Path("/srv/b"), "/data", False)
    assert [m.mount_path for m in order_mounts([a, b])] == ["/data", "/data/sub"]
