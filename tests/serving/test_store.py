"""The model store on local disk and on the HDFS minicluster, and a server started from it."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from serving import store as store_mod
from serving.store import ArtifactCorrupt, ArtifactMissing, Store, StoreUnreachable, parse_uri
from tests.serving.conftest import Server, free_port, make_demo


def sealed_version(tmp_path: Path, payload: bytes = b"pb") -> Path:
    vdir = tmp_path / "src"
    (vdir / "variables").mkdir(parents=True)
    (vdir / store_mod.SAVED_MODEL_PB).write_bytes(payload)
    (vdir / "variables" / "variables.index").write_bytes(b"idx")
    store_mod.seal(vdir, {"name": "t", "signature": {"inputs": {}, "outputs": {}}})
    return vdir


def test_parse_uri_mappings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHDFS_URL", raising=False)
    assert parse_uri("hdfs://nn:8020/models/a") == store_mod.Location(
        "hdfs", "/models/a", "http://nn:9870")
    assert parse_uri("webhdfs://nn:50070/m").webhdfs == "http://nn:50070"
    assert parse_uri("hdfs://nn:8020/m", "http://127.0.0.1:1234").webhdfs == "http://127.0.0.1:1234"
    monkeypatch.setenv("WEBHDFS_URL", "http://127.0.0.1:4321/")
    assert parse_uri("hdfs://nn:8020/m").webhdfs == "http://127.0.0.1:4321"
    assert parse_uri("/tmp/x").scheme == "file"
    with pytest.raises(store_mod.StoreError, match="unsupported scheme 's3'"):
        parse_uri("s3://bucket/m")


def test_local_round_trip_and_versions(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "base"))
    with pytest.raises(ArtifactMissing, match="no such directory"):
        store.versions()
    src = sealed_version(tmp_path)
    assert store.publish(src) == 1
    assert store.publish(src) == 2
    assert store.publish(src, 5) == 5
    with pytest.raises(store_mod.StoreError, match="version 5 already exists"):
        store.publish(src, 5)
    (tmp_path / "base" / "9").mkdir()  # no metadata.json: incomplete, ignored
    assert store.versions() == [1, 2, 5]
    version, local, meta = store.fetch()
    assert version == 5 and (local / "variables" / "variables.index").read_bytes() == b"idx"
    assert meta["files"].keys() == {"saved_model.pb", "variables/variables.index"}
    assert store.read_metadata(2)["name"] == "t"
    with pytest.raises(ArtifactMissing, match="version 3 not found"):
        store.fetch(3)


def test_corrupt_local_artifacts_are_named(tmp_path: Path) -> None:
    base = tmp_path / "base"
    store = Store(str(base))
    store.publish(sealed_version(tmp_path))
    (base / "1" / "variables" / "variables.index").write_bytes(b"tampered")
    with pytest.raises(ArtifactCorrupt, match=r"variables/variables.index fails its sha256"):
        store.fetch()
    (base / "1" / "variables" / "variables.index").unlink()
    with pytest.raises(ArtifactCorrupt, match=r"/1: variables/variables.index is missing"):
        store.fetch()
    (base / "1" / "metadata.json").write_text("{broken")
    with pytest.raises(ArtifactCorrupt, match="metadata.json is not valid JSON"):
        store.fetch()


def test_unreachable_namenode_is_named(tmp_path: Path) -> None:
    port = free_port()
    store = Store(f"hdfs://127.0.0.1:{port}/models/x", webhdfs_url=f"http://127.0.0.1:{port}",
                  timeout=(1, 1))
    with pytest.raises(StoreUnreachable, match=rf"hdfs://127.0.0.1:{port}/models/x: .*"
                       rf"unreachable"):
        store.versions()


def test_server_with_missing_model_stays_not_ready(tmp_path: Path) -> None:
    srv = Server(["--model-name", "digits", "--model-uri", str(tmp_path / "nothing")],
                 log_path=tmp_path / "srv.log").start()
    try:
        srv.wait("/v2/health/live", timeout=60)
        deadline_status = None
        for _ in range(300):  # the load runs in the background after the server starts
            deadline_status = httpx.get(f"{srv.url}/v1/models/digits")
            if deadline_status.json()["model_version_status"][0]["state"] == "END":
                break
            time.sleep(0.2)
        assert deadline_status is not None and deadline_status.status_code == 503
        body = deadline_status.json()
        assert "no such directory" in body["model_version_status"][0]["status"]["error_message"]
        ready = httpx.get(f"{srv.url}/v2/health/ready")
        assert ready.status_code == 503 and str(tmp_path / "nothing") in ready.json()["error"]
        assert httpx.get(f"{srv.url}/v2/health/live").status_code == 200
        r = httpx.post(f"{srv.url}/v1/models/digits:predict", json={"instances": [[1]]})
        assert r.status_code == 503 and "is not ready" in r.json()["error"]
        assert "failed to load" in srv.log()
    finally:
        assert srv.stop() == 0


# -- HDFS minicluster ----------------------------------------------------------------------


@pytest.mark.hdfs
def test_hdfs_round_trip_and_errors(hdfs, tmp_path: Path) -> None:  # noqa: ANN001
    uri = hdfs.uri("/serving-tests/roundtrip")
    store = Store(uri, webhdfs_url=hdfs.webhdfs_url, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ArtifactMissing, match=r"/serving-tests/roundtrip: list:.*"):
        store.versions()
    src = sealed_version(tmp_path, b"saved model bytes")
    assert store.publish(src) == 1
    assert store.publish(src) == 2
    assert store.versions() == [1, 2]
    assert store.read_metadata()["name"] == "t"
    version, local, _ = store.fetch()
    assert version == 2
    assert (local / "saved_model.pb").read_bytes() == b"saved model bytes"
    assert (local / "variables" / "variables.index").read_bytes() == b"idx"
    # a corrupt upload: overwrite one file behind the metadata's back
    client = hdfs.client()
    client.write("/serving-tests/roundtrip/3/saved_model.pb", b"x", overwrite=True)
    meta = json.loads((src / "metadata.json").read_text())
    client.write("/serving-tests/roundtrip/3/metadata.json", json.dumps(meta), overwrite=True)
    fresh = Store(uri, webhdfs_url=hdfs.webhdfs_url, cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(ArtifactCorrupt, match=r"/3: .*saved_model.pb|/3: variables"):
        fresh.fetch(3)
    assert not any((tmp_path / "cache2").rglob("saved_model.pb"))  # nothing half-cached


@pytest.mark.hdfs
def test_server_starts_from_hdfs(hdfs, tmp_path: Path) -> None:  # noqa: ANN001
    uri = hdfs.uri("/serving-tests/digits")
    res = make_demo(uri, hdfs.env, "--epochs", "3")
    assert res.returncode == 0, res.stdout + res.stderr
    srv = Server(["--model-name", "digits", "--model-uri", uri, "--cache-dir",
                  str(tmp_path / "cache")], hdfs.env,
                 tmp_path / "srv.log").start()
    try:
        srv.wait()
        status = httpx.get(f"{srv.url}/v1/models/digits").json()
        assert status["model_version_status"][0]["version"] == "1"
        r = httpx.post(f"{srv.url}/v1/models/digits:predict",
                       json={"instances": [[[[0.0]] * 8] * 8]})
        assert r.status_code == 200 and len(r.json()["predictions"][0]) == 10
        assert any((tmp_path / "cache").rglob("saved_model.pb"))
    finally:
        assert srv.stop() == 0
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
