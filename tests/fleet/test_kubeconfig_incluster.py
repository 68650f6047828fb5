"""In-cluster credentials: kubectl's fallback when a pod has no kubeconfig."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet import kubeconfig
from fleet.errors import ConfigError


@pytest.fixture
def sa_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "sa"
    d.mkdir()
    (d / "token").write_text("tok-123\n")
    (d / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (d / "namespace").write_text("ml-team")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", d)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    return d


def test_no_kubeconfig_inside_a_pod_uses_the_service_account(sa_dir: Path) -> None:
    creds = kubeconfig.load_credentials()
    assert creds.server == "https://127.0.0.1:6443"
    assert creds.token == "tok-123" and creds.context == "in-cluster"
    assert creds.namespace == "ml-team" and creds.ca_pem.startswith(b"-----BEGIN")
    assert kubeconfig.load_credentials(namespace="other").namespace == "other"


def test_an_explicit_kubeconfig_never_falls_back(sa_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        kubeconfig.load_credentials(str(tmp_path / "missing"))


def test_outside_a_pod_the_kubectl_message_stays(sa_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError, match="no configuration has been provided"):
        kubeconfig.load_credentials()


def test_an_empty_token_is_a_config_error(sa_dir: Path) -> None:
    (sa_dir / "token").write_text("")
    with pytest.raises(ConfigError, match="in-cluster configuration"):
        kubeconfig.load_credentials()
