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


def test_mount_script_binds_from_early_fds_and_restores_covered_paths(tmp_path: Path) -> None:
    from devcluster.runner.process import mount_script

    src = tmp_path / "vol"
    src.mkdir()
    script = mount_script([Mount(src, "/tmp", False)], None,
                          protect=["/tmp/checkout/.venv", "/usr"])
    lines = script.splitlines()
    assert lines[0] == f"exec 10<{src}"
    assert lines[1] == "exec 11</tmp/checkout/.venv"  # covered by /tmp: bound back
    assert "mount --no-canonicalize --bind /proc/self/fd/10 /tmp" in lines
    assert lines.index("mount --no-canonicalize --bind /proc/self/fd/11 /tmp/checkout/.venv") \
        > lines.index("mount --no-canonicalize --bind /proc/self/fd/10 /tmp")
    assert "/usr" not in script  # not under any volume
    assert lines[-1] == "exec 10<&- 11<&-"
