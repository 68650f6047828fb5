"""volumes: each supported type materialised, refreshes, hostPath types and container mounts."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from devcluster.runner.volumes import (
    Mount,
    VolumeError,
    VolumeSources,
    container_mounts,
    materialize,
)

IP = "127.1.128.9"
ALLOC = {"cpu": "4", "memory": "8Gi", "ephemeral-storage": "50Gi"}


def _pod(*volumes: dict[str, Any], containers: list[dict[str, Any]] | None = None) -> dict:
    return {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u-1",
            "labels": {"b": "2", "a": 'q"uote'},
            "annotations": {"x": "y"},
        },
        "spec": {
            "containers": containers
            or [{"name": "main", "resources": {"limits": {"memory": "256Mi"}}}],
            "volumes": list(volumes),
        },
    }


def _sources(**kw: Any) -> VolumeSources:
    kw.setdefault("configmaps", {})
    kw.setdefault("secrets", {})
    kw.setdefault("token", None)
    kw.setdefault("allocatable", ALLOC)
    return VolumeSources(**kw)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _files(root: Path) -> dict[str, tuple[str, int]]:
    """Visible files (following the ..data symlinks), relative path -> (text, mode)."""
    out = {}
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        rel_dir = Path(dirpath).relative_to(root)
        if any(part.startswith("..") for part in rel_dir.parts):
            continue
        dirs[:] = [d for d in dirs if not d.startswith("..")]
        for f in files:
            if f.startswith(".."):
                continue
            p = Path(dirpath) / f
            out[(rel_dir / f).as_posix()] = (p.read_text(), _mode(p))
    return out


def test_empty_dir(tmp_path: Path) -> None:
    pod = _pod(
        {"name": "scratch", "emptyDir": {}},
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        {"name": "defaulted"},
    )
    paths = materialize(pod, tmp_path, _sources(), pod_ip=IP)
    assert paths == {
        "scratch": tmp_path / "volumes" / "scratch",
        "mem": tmp_path / "volumes" / "mem",
        "defaulted": tmp_path / "volumes" / "defaulted",
    }
    for p in paths.values():
        assert p.is_dir() and _mode(p) == 0o777 and list(p.iterdir()) == []


def test_config_map_all_keys_default_mode(tmp_path: Path) -> None:
    pod = _pod({"name": "cfg", "configMap": {"name": "app"}})
    paths = materialize(
        pod, tmp_path, _sources(configmaps={"app": {"a.conf": "A", "b": "B\n"}}), pod_ip=IP
    )
    vol = paths["cfg"]
    assert _files(vol) == {"a.conf": ("A", 0o644), "b": ("B\n", 0o644)}
    # The kubelet's AtomicWriter layout: visible names are symlinks through ..data.
    assert os.readlink(vol / "a.conf") == "..data/a.conf"
    assert (vol / "..data").is_symlink()
    assert os.readlink(vol / "..data").startswith("..")


def test_config_map_items_modes_and_paths(tmp_path: Path) -> None:
    pod = _pod(
        {
            "name": "cfg",
            "configMap": {
                "name": "app",
                "defaultMode": 0o600,
                "items": [
                    {"key": "a", "path": "conf/a.yaml"},
                    {"key": "b", "path": "run.sh", "mode": 493},  # 0o755 as the API's decimal
                ],
            },
        }
    )
    cms = {"app": {"a": "A", "b": "#!/bin/sh\n", "c": "not projected"}}
    vol = materialize(pod, tmp_path, _sources(configmaps=cms), pod_ip=IP)["cfg"]
    assert _files(vol) == {"conf/a.yaml": ("A", 0o600), "run.sh": ("#!/bin/sh\n", 0o755)}
    assert sorted(p.name for p in vol.iterdir() if not p.name.startswith("..")) == [
        "conf",
        "run.sh",
    ]


def test_config_map_default_mode_420(tmp_path: Path) -> None:
    pod = _pod({"name": "cfg", "configMap": {"name": "app", "defaultMode": 420}})
    vol = materialize(pod, tmp_path, _sources(configmaps={"app": {"k": "v"}}), pod_ip=IP)["cfg"]
    assert _files(vol) == {"k": ("v", 0o644)}


def test_config_map_optional_missing(tmp_path: Path) -> None:
    pod = _pod(
        {"name": "cfg", "configMap": {"name": "absent", "optional": True}},
        {
            "name": "cfg2",
            "configMap": {
                "name": "app",
                "optional": True,
                "items": [{"key": "nope", "path": "n"}, {"key": "k", "path": "k"}],
            },
        },
    )
    paths = materialize(pod, tmp_path, _sources(configmaps={"app": {"k": "v"}}), pod_ip=IP)
    assert paths["cfg"].is_dir() and _files(paths["cfg"]) == {}
    assert _files(paths["cfg2"]) == {"k": ("v", 0o644)}


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        ({"name": "cfg", "configMap": {"name": "app"}}, 'volume "cfg": configmap "app" not found'),
        ({"name": "s", "secret": {"secretName": "db"}}, 'volume "s": secret "db" not found'),
        (
            {"name": "cfg", "configMap": {"name": "have", "items": [{"key": "K", "path": "k"}]}},
            'volume "cfg": configmap references non-existent config key: K',
        ),
        (
            {"name": "s", "secret": {"secretName": "have", "items": [{"key": "K", "path": "k"}]}},
            'volume "s": secret references non-existent secret key: K',
        ),
        (
            {"name": "data", "nfs": {"server": "x", "path": "/"}},
            'volume "data": type nfs is not supported by the local runner (supported: emptyDir, '
            "configMap, secret, downwardAPI, projected, hostPath)",
        ),
        (
            {"name": "pvc", "persistentVolumeClaim": {"claimName": "c"}},
            'volume "pvc": type persistentVolumeClaim is not supported by the local runner '
            "(supported: emptyDir, configMap, secret, downwardAPI, projected, hostPath)",
        ),
        (
            {"name": "cfg", "configMap": {"name": "have", "items": [{"key": "x", "path": "../e"}]}},
            'volume "cfg": invalid item path "../e"',
        ),
        (
            {"name": "pj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            'volume "pj": a serviceAccountToken source needs a token and none was provided',
        ),
        (
            {"name": "pj", "projected": {"sources": [{"clusterTrustBundle": {"path": "b"}}]}},
            'volume "pj": projected source clusterTrustBundle is not supported by the local runner '
            "(supported: serviceAccountToken, configMap, secret, downwardAPI)",
        ),
        (
            {
                "name": "d",
                "downwardAPI": {"items": [{"path": "x", "fieldRef": {"fieldPath": "spec.bogus"}}]},
            },
            'volume "d": unsupported fieldPath: spec.bogus',
        ),
    ],
)
def test_volume_errors(tmp_path: Path, volume: dict, message: str) -> None:
    sources = _sources(configmaps={"have": {"x": "1"}}, secrets={"have": {"x": "1"}})
    with pytest.raises(VolumeError) as info:
        materialize(_pod(volume), tmp_path, sources, pod_ip=IP)
    assert str(info.value) == message


def test_secret(tmp_path: Path) -> None:
    pod = _pod(
        {"name": "s", "secret": {"secretName": "db", "defaultMode": 256}},
        {"name": "s2", "secret": {"secretName": "db", "items": [{"key": "pw", "path": "x/pw"}]}},
    )
    paths = materialize(
        pod, tmp_path, _sources(secrets={"db": {"pw": "hunter2", "user": "u"}}), pod_ip=IP
    )
    assert _files(paths["s"]) == {"pw": ("hunter2", 0o400), "user": ("u", 0o400)}
    assert _files(paths["s2"]) == {"x/pw": ("hunter2", 0o644)}


def test_secret_bytes(tmp_path: Path) -> None:
    pod = _pod({"name": "s", "secret": {"secretName": "bin"}})
    vol = materialize(pod, tmp_path, _sources(secrets={"bin": {"k": b"\x00\xff"}}), pod_ip=IP)["s"]
    assert (vol / "k").read_bytes() == b"\x00\xff"


def test_downward_api(tmp_path: Path) -> None:
    pod = _pod(
        {
            "name": "info",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
                    {"path": "meta/ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
                    {"path": "label-b", "fieldRef": {"fieldPath": "metadata.labels['b']"}},
                    {
                        "path": "mem",
                        "resourceFieldRef": {
                            "containerName": "main",
                            "resource": "limits.memory",
                            "divisor": "1Mi",
                        },
                    },
                    {
                        "path": "cpu",
                        "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"},
                    },
                ]
            },
        }
    )
    vol = materialize(pod, tmp_path, _sources(), pod_ip=IP)["info"]
    assert _files(vol) == {
        "labels": ('a="q\\"uote"\nb="2"', 0o644),
        "annotations": ('x="y"', 0o644),
        "name": ("p", 0o600),
        "meta/ns": ("ns", 0o644),
        "label-b": ("2", 0o644),
        "mem": ("256", 0o644),
        "cpu": ("4", 0o644),  # unset limit -> node allocatable
    }


def test_projected_service_account_volume(tmp_path: Path) -> None:
    # The shape of the kube-api-access-* volume the API server injects.
    pod = _pod(
        {
            "name": "kube-api-access",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {
                        "serviceAccountToken": {
                            "expirationSeconds": 3607,
                            "path": "token",
                            "audience": "api",
                        }
                    },
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                    {
                        "secret": {
                            "name": "extra",
                            "items": [{"key": "k", "path": "sec/k", "mode": 0o400}],
                        }
                    },
                    {"configMap": {"name": "absent", "optional": True}},
                ],
            },
        }
    )
    sources = _sources(
        configmaps={"kube-root-ca.crt": {"ca.crt": "PEM"}},
        secrets={"extra": {"k": "v"}},
        token="tok.en",
    )
    vol = materialize(pod, tmp_path, sources, pod_ip=IP)["kube-api-access"]
    assert _files(vol) == {
        "token": ("tok.en", 0o644),
        "ca.crt": ("PEM", 0o644),
        "namespace": ("ns", 0o644),
        "sec/k": ("v", 0o400),
    }


def test_rematerialize_refreshes_projections_keeps_empty_dir(tmp_path: Path) -> None:
    pod = _pod(
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "app"}},
        {"name": "pj", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}},
    )
    paths = materialize(
        pod, tmp_path, _sources(configmaps={"app": {"old": "1", "k": "v1"}}, token="t1"), pod_ip=IP
    )
    (paths["scratch"] / "state").write_text("keep me")
    (paths["scratch"]).chmod(0o700)  # a container changed it; must not be reset either
    inode = (paths["cfg"]).stat().st_ino

    again = materialize(
        pod, tmp_path, _sources(configmaps={"app": {"k": "v2", "new": "n"}}, token="t2"), pod_ip=IP
    )
    assert again == paths
    assert (paths["scratch"] / "state").read_text() == "keep me"
    assert _mode(paths["scratch"]) == 0o700
    assert _files(paths["cfg"]) == {"k": ("v2", 0o644), "new": ("n", 0o644)}
    assert not (paths["cfg"] / "old").exists() and not (paths["cfg"] / "old").is_symlink()
    assert _files(paths["pj"]) == {"t": ("t2", 0o644)}
    # The volume directory itself stays (it is what is bind-mounted), old data dirs go.
    assert paths["cfg"].stat().st_ino == inode
    assert sorted(p.name for p in paths["cfg"].iterdir() if p.name.startswith("..")) == sorted(
        ["..data", os.readlink(paths["cfg"] / "..data")]
    )


def test_rematerialize_unchanged_is_a_no_op(tmp_path: Path) -> None:
    pod = _pod({"name": "cfg", "configMap": {"name": "app"}})
    sources = _sources(configmaps={"app": {"k": "v"}})
    vol = materialize(pod, tmp_path, sources, pod_ip=IP)["cfg"]
    before = os.readlink(vol / "..data")
    materialize(pod, tmp_path, sources, pod_ip=IP)
    assert os.readlink(vol / "..data") == before


def test_host_path_types(tmp_path: Path) -> None:
    existing_dir = tmp_path / "d"
    existing_dir.mkdir()
    existing_file = tmp_path / "f"
    existing_file.write_text("x")
    pod = _pod(
        {"name": "plain", "hostPath": {"path": str(existing_dir)}},
        {"name": "plain-new", "hostPath": {"path": str(tmp_path / "new-plain"), "type": ""}},
        {
            "name": "doc",
            "hostPath": {"path": str(tmp_path / "a" / "b"), "type": "DirectoryOrCreate"},
        },
        {"name": "dir", "hostPath": {"path": str(existing_dir), "type": "Directory"}},
        {"name": "foc", "hostPath": {"path": str(tmp_path / "new-file"), "type": "FileOrCreate"}},
        {"name": "file", "hostPath": {"path": str(existing_file), "type": "File"}},
    )
    paths = materialize(pod, tmp_path / "pod", _sources(), pod_ip=IP)
    assert paths == {
        "plain": existing_dir,
        "plain-new": tmp_path / "new-plain",
        "doc": tmp_path / "a" / "b",
        "dir": existing_dir,
        "foc": tmp_path / "new-file",
        "file": existing_file,
    }
    assert (tmp_path / "new-plain").is_dir()
    assert (tmp_path / "a" / "b").is_dir()
    assert (tmp_path / "new-file").is_file() and (tmp_path / "new-file").read_text() == ""
    assert existing_file.read_text() == "x"
    assert not (tmp_path / "pod" / "volumes" / "dir").exists()


@pytest.mark.parametrize(
    ("spec", "what"),
    [
        ({"path": "{t}/missing", "type": "Directory"}, "{t}/missing does not exist"),
        ({"path": "{t}/f", "type": "Directory"}, "{t}/f is not a directory"),
        ({"path": "{t}/f", "type": "DirectoryOrCreate"}, "{t}/f is not a directory"),
        ({"path": "{t}/missing", "type": "File"}, "{t}/missing does not exist"),
        ({"path": "{t}", "type": "File"}, "{t} is not a file"),
        ({"path": "{t}", "type": "FileOrCreate"}, "{t} is a directory, not a file"),
        (
            {"path": "{t}/no/f", "type": "FileOrCreate"},
            "{t}/no/f cannot be created: its directory {t}/no does not exist",
        ),
        ({"path": "{t}/f", "type": "Socket"}, "{t}/f is not a Socket"),
        ({"path": "{t}/missing", "type": "CharDevice"}, "{t}/missing does not exist"),
    ],
)
def test_host_path_type_errors(tmp_path: Path, spec: dict, what: str) -> None:
    (tmp_path / "f").write_text("x")
    spec = {k: v.format(t=tmp_path) for k, v in spec.items()}
    with pytest.raises(VolumeError) as info:
        materialize(_pod({"name": "h", "hostPath": spec}), tmp_path / "pod", _sources(), pod_ip=IP)
    assert str(info.value) == f'volume "h": hostPath type check failed: {what.format(t=tmp_path)}'


def test_host_path_socket_and_char_device(tmp_path: Path) -> None:
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        pod = _pod(
            {"name": "sock", "hostPath": {"path": str(sock_path), "type": "Socket"}},
            {"name": "null", "hostPath": {"path": "/dev/null", "type": "CharDevice"}},
        )
        paths = materialize(pod, tmp_path / "pod", _sources(), pod_ip=IP)
    assert paths == {"sock": sock_path, "null": Path("/dev/null")}


def test_host_path_bad_spec(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match='volume "h": unknown hostPath type "Weird"'):
        materialize(
            _pod({"name": "h", "hostPath": {"path": "/tmp", "type": "Weird"}}),
            tmp_path,
            _sources(),
            pod_ip=IP,
        )
    with pytest.raises(VolumeError, match='volume "h": hostPath path "rel" must be absolute'):
        materialize(
            _pod({"name": "h", "hostPath": {"path": "rel"}}), tmp_path, _sources(), pod_ip=IP
        )


# --- container mounts -------------------------------------------------------------------------


@pytest.fixture
def mounted(tmp_path: Path) -> tuple[dict, dict[str, Path]]:
    host = tmp_path / "host"
    host.mkdir()
    pod = _pod(
        {"name": "scratch", "emptyDir": {}},
        {"name": "cfg", "configMap": {"name": "app"}},
        {"name": "host", "hostPath": {"path": str(host)}},
    )
    paths = materialize(
        pod, tmp_path / "pod", _sources(configmaps={"app": {"app.conf": "c"}}), pod_ip=IP
    )
    return pod, paths


def test_container_mounts(mounted: tuple[dict, dict[str, Path]]) -> None:
    pod, paths = mounted
    container = {
        "name": "main",
        "volumeMounts": [
            {"name": "scratch", "mountPath": "/data/cache/"},
            {"name": "cfg", "mountPath": "/etc/app"},  # configMap: always read-only
            {"name": "host", "mountPath": "/mnt/host", "readOnly": True},
            {"name": "scratch", "mountPath": "/data", "subPath": "x/y"},
            {"name": "cfg", "mountPath": "/etc/one.conf", "subPath": "app.conf"},
            {"name": "scratch", "mountPath": "/work", "subPathExpr": "$(POD_NAME)/w"},
        ],
    }
    mounts = container_mounts(pod, container, paths, env={"POD_NAME": "p-0"})
    # Parents before children (by depth), otherwise in volumeMounts order.
    assert mounts == [
        Mount(paths["scratch"] / "x" / "y", "/data", False),
        Mount(paths["scratch"] / "p-0" / "w", "/work", False),
        Mount(paths["scratch"], "/data/cache", False),
        Mount(paths["cfg"], "/etc/app", True),
        Mount(paths["host"], "/mnt/host", True),
        Mount(paths["cfg"] / "app.conf", "/etc/one.conf", True),
    ]
    # Missing subPaths are created as directories (as the kubelet does) before the bind.
    assert (paths["scratch"] / "x" / "y").is_dir()
    assert (paths["scratch"] / "p-0" / "w").is_dir()
    assert (paths["cfg"] / "app.conf").read_text() == "c"


@pytest.mark.parametrize(
    ("mount", "message"),
    [
        (
            {"name": "nope", "mountPath": "/x"},
            'cannot find volume "nope" to mount into container "main"',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPath": "../etc"},
            'volume "scratch": subPath "../etc" must not contain ".."',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPath": "a/../../b"},
            'volume "scratch": subPath "a/../../b" must not contain ".."',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPathExpr": "$(UP)/etc"},
            'volume "scratch": subPath "../etc" must not contain ".."',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPath": "/etc"},
            'volume "scratch": subPath "/etc" must not be absolute',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPath": "link/passwd"},
            'volume "scratch": subPath "link/passwd" escapes the volume',
        ),
        (
            {"name": "scratch", "mountPath": "rel"},
            'volume "scratch": mountPath "rel" in container "main" must be absolute',
        ),
        (
            {"name": "scratch", "mountPath": "/x", "subPath": "a", "subPathExpr": "b"},
            'volume "scratch": subPath and subPathExpr are exclusive',
        ),
    ],
)
def test_container_mount_errors(
    mounted: tuple[dict, dict[str, Path]], mount: dict, message: str
) -> None:
    pod, paths = mounted
    os.symlink("/etc", paths["scratch"] / "link")
    with pytest.raises(VolumeError) as info:
        container_mounts(pod, {"name": "main", "volumeMounts": [mount]}, paths, env={"UP": ".."})
    assert str(info.value) == message


def test_container_without_mounts(mounted: tuple[dict, dict[str, Path]]) -> None:
    pod, paths = mounted
    assert container_mounts(pod, {"name": "main"}, paths) == []
