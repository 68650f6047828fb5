"""The pod's kubelet-managed /etc/hosts.

Same content as the kubelet's managedHostsFileContent, plus one line per peer pod of the
same subdomain: there is no cluster DNS here, so a headless Service's per-pod names
(`<host>.<subdomain>`, e.g. for indexed Jobs) resolve through this file instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["HEADER", "hosts_file", "write_hosts_file"]

HEADER = "# Kubernetes-managed hosts file.\n"
_LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "fe00::0\tip6-mcastprefix\n"
    "fe00::1\tip6-allnodes\n"
    "fe00::2\tip6-allrouters\n"
)


def hosts_file(
    *,
    pod_ip: str,
    hostname: str,
    subdomain: str | None,
    namespace: str,
    cluster_domain: str = "cluster.local",
    peers: Iterable[tuple[str, str]] = (),
    host_aliases: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The hosts file for one pod.

    With a subdomain (and a cluster domain, as the kubelet requires) the pod's line is
    `ip\\tfqdn\\thost.subdomain\\thost`; `peers` are (ip, hostname) pairs of the other pods
    of that subdomain, written sorted by hostname the same way; peers without an IP, or
    with the pod's own hostname, are skipped. hostAliases follow, as in the kubelet.
    """
    lines = [HEADER, _LOCALHOST]
    domain = f"{subdomain}.{namespace}.svc.{cluster_domain}" if subdomain and cluster_domain else ""
    if domain:
        lines.append(f"{pod_ip}\t{hostname}.{domain}\t{hostname}.{subdomain}\t{hostname}\n")
        seen: set[str] = set()
        for ip, peer in sorted(peers, key=lambda p: (p[1], p[0])):
            if not ip or not peer or peer == hostname or peer in seen:
                continue
            seen.add(peer)
            lines.append(f"{ip}\t{peer}.{domain}\t{peer}.{subdomain}\t{peer}\n")
    else:
        lines.append(f"{pod_ip}\t{hostname}\n")
    if host_aliases:
        lines.append("\n# Entries added by HostAliases.\n")
        for alias in host_aliases:
            names = "\t".join(alias.get("hostnames") or [])
            lines.append(f"{alias.get('ip', '')}\t{names}\n")
    return "".join(lines)


def write_hosts_file(path: Path, content: str) -> bool:
    """Write the hosts file if its content changed; return whether it did.

    An existing file is rewritten in place (truncate and write), never replaced by rename:
    it is bind-mounted over /etc/hosts in the pod's mount namespace, and a bind mount keeps
    the old inode, so a renamed-in file would never be seen by the pod. A new file is
    created atomically (temp file and rename), since nothing can have it mounted yet.
    """
    path = Path(path)
    data = content.encode("utf-8")
    try:
        with open(path, "r+b") as fh:
            if fh.read() == data:
                return False
            fh.seek(0)
            fh.truncate()
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return True
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hosts.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True
