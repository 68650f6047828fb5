"""kubeconfig resolution like kubectl: KUBECONFIG merge order, contexts, relative paths."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from fleet.errors import ConfigError
from fleet.kubeconfig import load_credentials


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _cfg(current: str | None, cluster: str, server: str, ctx: str, ns: str | None = None) -> dict:
    c = {"cluster": cluster, "user": "u"}
    if ns:
        c["namespace"] = ns
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server,
                                                   "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"token": f"tok-{cluster}"}}],
        "contexts": [{"name": ctx, "context": c}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_merge_first_file_wins_and_current_context_from_first_setter(tmp_path, monkeypatch):
    (tmp_path / "ca.crt").write_text("CA")
    a = _write(tmp_path / "a", _cfg(None, "one", "https://127.0.0.1:1", "c1", ns="team"))
    b = _write(tmp_path / "b", _cfg("c1", "two", "https://127.0.0.1:2", "c2"))
    monkeypatch.setenv("KUBECONFIG", f"{a}:{tmp_path / 'missing'}:{b}")
    creds = load_credentials()
    assert (creds.context, creds.server, creds.namespace) == ("c1", "https://127.0.0.1:1", "team")
    assert creds.token == "tok-one"  # user "u" defined in both: the first file wins
    assert creds.ca_pem == b"CA"  # relative path resolved against the file that named it
    other = load_credentials(context="c2", namespace="x")
    assert (other.server, other.namespace) == ("https://127.0.0.1:2", "x")


def test_explicit_path_only_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no configuration has been provided"):
        load_credentials()
    p = _write(tmp_path / "k", _cfg("c1", "one", "https://127.0.0.1:1", "c1"))
    (tmp_path / "ca.crt").write_text("CA")
    assert load_credentials(str(p)).namespace == "default"
    with pytest.raises(ConfigError, match='context "zzz" does not exist'):
        load_credentials(str(p), context="zzz")
    with pytest.raises(ConfigError, match="no such file"):
        load_credentials(str(tmp_path / "absent"))


def test_inline_cert_data(tmp_path):
    doc = _cfg("c1", "one", "https://127.0.0.1:1", "c1")
    doc["clusters"][0]["cluster"] = {"server": "https://127.0.0.1:1",
                                     "certificate-authority-data": base64.b64encode(b"C").decode()}
    doc["users"][0]["user"] = {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                               "client-key-data": base64.b64encode(b"KEY").decode()}
    creds = load_credentials(str(_write(tmp_path / "k", doc)))
    assert (creds.ca_pem, creds.client_cert_pem, creds.client_key_pem) == (b"C", b"CERT", b"KEY")
