"""A black-holed API server: a loopback TCP listener that accepts and never answers."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import yaml


class BlackHole:
    """Accepts connections on 127.0.0.1 and keeps them open without sending a byte, so a
    client hangs in its TLS handshake / LIST until its own timeout."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)
            self.accepted += 1

    def kubeconfig(self, directory: Path) -> Path:
        path = directory / "kubeconfig"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "hole",
            "clusters": [{"name": "hole", "cluster": {
                "server": f"https://127.0.0.1:{self.port}", "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "hole", "context": {"cluster": "hole", "user": "u",
                                                       "namespace": "default"}}],
        }))
        return path

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()
