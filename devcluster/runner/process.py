"""Starting one container instance as a host process, and finding it again after a restart.

Each instance runs under a tiny bash shim in its own mount and UTS namespaces (`unshare`):
the shim sets the pod's hostname, joins the container's cgroups, bind-mounts the volumes,
the pod's /etc/hosts and the instance's termination-message file, starts the program with
stdout/stderr appended to raw files, ignores SIGTERM itself (the program gets it through
the process group) and writes the program's exit status to a file.
Because nothing runs through a pipe to the runner, a container outlives a runner restart and
the new runner adopts it by pid and start time (`Instance.adopt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from devcluster.runner.volumes import Mount

SHIM = r"""
set -e
hostname "$FLEET_HOSTNAME"
for cg in $FLEET_CGROUPS; do echo $$ > "$cg/cgroup.procs"; done
# Output and exit files are opened, and the working directory entered, before any mount:
# a volume mounted at /tmp may hide the pod directory when the state dir lies below /tmp.
exec 3>>%(out)s 4>>%(err)s 5>%(exit)s
cd %(cwd)s
%(mounts)s
cd %(cwd)s 2>/dev/null || :  # a workingDir inside a volume; the pod dir keeps its inode
set +e
"$@" >&3 2>&4 3>&- 4>&- 5>&- </dev/null &
child=$!
exec 3>&- 4>&-
trap '' TERM INT
wait $child
rc=$?
echo $rc >&5
exit $rc
"""


class MountNamespaceUnavailable(RuntimeError):
    pass


def check_mount_namespaces() -> str | None:
    """None when `unshare --mount --uts` works here, else the reason (shown as an event)."""
    try:
        proc = subprocess.run(["unshare", "--mount", "--uts", "--propagation", "private",
                               "true"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare --mount failed: {exc}"
    if proc.returncode != 0:
        return f"unshare --mount failed: {proc.stderr.strip() or proc.returncode}"
    return None


def _under(path: str, top: str) -> bool:
    top = top.rstrip("/") or "/"
    return path == top or path.startswith(top + "/") or top == "/"


def order_mounts(mounts: list[Mount]) -> list[Mount]:
    """Parents before children, and any mount that would hide another's source last.

    Sources live in the pod directory (or are hostPaths); a mount at /tmp must not cover them
    before they are bound.
    """
    sources = [str(m.host_path) for m in mounts]
    shadowing = {i for i, m in enumerate(mounts)
                 if any(_under(src, m.mount_path) for j, src in enumerate(sources) if j != i)}
    # Everything mounted inside a shadowing mount comes after it, so it moves late too.
    changed = True
    while changed:
        changed = False
        for i, m in enumerate(mounts):
            if i not in shadowing and any(_under(m.mount_path, mounts[k].mount_path)
                                          for k in shadowing):
                shadowing.add(i)
                changed = True
    def depth(m: Mount) -> int:
        return m.mount_path.rstrip("/").count("/")
    early = sorted((m for i, m in enumerate(mounts) if i not in shadowing), key=depth)
    late = sorted((m for i, m in enumerate(mounts) if i in shadowing), key=depth)
    return early + late


def _protected_paths() -> list[str]:
    """What the container's program needs from the host: the interpreter, its venv and the
    project checkout (an editable install imports from it). A volume mounted above one of
    them (e.g. an emptyDir at /tmp while the checkout lives under /tmp) must not hide it."""
    repo = Path(__file__).resolve().parents[2]
    return sorted({sys.prefix, sys.base_prefix, str(repo)})


def mount_script(mounts: list[Mount], hosts_file: Path | None,
                 protect: list[str] | None = None) -> str:
    """Bash that binds every mount from file descriptors opened before the first mount.

    Opening sources first (and `mount --no-canonicalize` on /proc/self/fd/N) makes a later
    mount unable to hide an earlier source; paths in `protect` that a volume covers are bound
    back on top of it.
    """
    all_mounts = list(mounts)
    if hosts_file is not None:
        all_mounts.append(Mount(hosts_file, "/etc/hosts", False))
    ordered = order_mounts(all_mounts)
    targets = [m.mount_path for m in ordered]
    covered = [p for p in (protect if protect is not None else _protected_paths())
               if any(_under(p, t) for t in targets)]
    opens, lines, closes = [], [], []
    fd = 10
    for m in ordered:
        opens.append(f"exec {fd}<{shlex.quote(str(m.host_path))}")
        target = shlex.quote(m.mount_path)
        if m.host_path.is_dir():
            lines.append(f"mkdir -p {target}")
        else:
            # The runtime creates a missing file target (e.g. /dev/termination-log).
            lines.append(f'[ -e {target} ] || {{ mkdir -p "$(dirname {target})"; : > {target}; }}')
        lines.append(f"mount --no-canonicalize --bind /proc/self/fd/{fd} {target}")
        if m.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
        closes.append(f"{fd}<&-")
        fd += 1
    for path in covered:
        opens.append(f"exec {fd}<{shlex.quote(path)}")
        lines.append(f"mkdir -p {shlex.quote(path)}")
        lines.append(f"mount --no-canonicalize --bind /proc/self/fd/{fd} {shlex.quote(path)}")
        closes.append(f"{fd}<&-")
        fd += 1
    if closes:
        lines.append("exec " + " ".join(closes))
    return "\n".join(opens + lines)


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass
class InstanceFiles:
    """Where one container instance keeps its raw output and exit status."""

    directory: Path
    restart_count: int

    @property
    def stdout(self) -> Path:
        return self.directory / f"{self.restart_count}.stdout"

    @property
    def stderr(self) -> Path:
        return self.directory / f"{self.restart_count}.stderr"

    @property
    def exit_file(self) -> Path:
        return self.directory / f"{self.restart_count}.exit"

    @property
    def termination_log(self) -> Path:
        """The host side of the instance's terminationMessagePath (bind-mounted there)."""
        return self.directory / f"{self.restart_count}.termination-log"


class Instance:
    """A running (or finished) container process: our child, or adopted after a restart."""

    def __init__(self, pid: int, start_time: int | None, files: InstanceFiles,
                 proc: asyncio.subprocess.Process | None = None) -> None:
        self.pid = pid
        self.start_time = start_time
        self.files = files
        self._proc = proc
        self.signalled: int | None = None

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], cwd: str, mounts: list[Mount],
                    hosts_file: Path | None, files: InstanceFiles,
                    cgroups: list[Path], protect: list[str] | None = None) -> Instance:
        """Start argv under the shim; `protect` adds host paths the program needs (the bind
        guard's library) to those a volume must not hide."""
        files.directory.mkdir(parents=True, exist_ok=True)
        for p in (files.stdout, files.stderr, files.exit_file):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        files.stdout.touch()
        files.stderr.touch()
        script = SHIM % {
            "mounts": mount_script(mounts, hosts_file,
                                   protect=sorted({*_protected_paths(), *(protect or [])})),
            "cwd": shlex.quote(cwd),
            "out": shlex.quote(str(files.stdout)),
            "err": shlex.quote(str(files.stderr)),
            "exit": shlex.quote(str(files.exit_file)),
        }
        shim_env = {**env, "FLEET_CGROUPS": " ".join(shlex.quote(str(c)) for c in cgroups),
                    "FLEET_HOSTNAME": env.get("HOSTNAME", "localhost")}
        proc = await asyncio.create_subprocess_exec(
            "unshare", "--mount", "--uts", "--propagation", "private", "--", "/bin/bash", "-c",
            script,
            "fleet-shim", *argv,
            env=shim_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(files.directory / f"{files.restart_count}.shim", "ab"),  # noqa: SIM115
            start_new_session=True,
        )
        return cls(proc.pid, proc_start_time(proc.pid), files, proc)

    @classmethod
    def adopt(cls, pid: int, start_time: int, files: InstanceFiles) -> Instance | None:
        """The instance recorded before a runner restart, if that very process still runs."""
        if proc_start_time(pid) != start_time:
            return None
        return cls(pid, start_time, files)

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.returncode is None
        return proc_start_time(self.pid) == self.start_time

    async def wait(self) -> int:
        """The program's exit status (128+signal when killed, like a container runtime)."""
        if self._proc is not None:
            shim_rc = await self._proc.wait()
        else:
            while self.alive():
                await asyncio.sleep(0.5)
            shim_rc = None
        try:
            return int(self.files.exit_file.read_text().strip())
        except (OSError, ValueError):
            pass
        if shim_rc is not None and shim_rc < 0:
            return 128 - shim_rc
        if shim_rc is not None and shim_rc != 0:
            return shim_rc
        # Adopted and killed before it could record anything: SIGKILL is the only way.
        return 128 + signal.SIGKILL

    def kill(self, sig: int) -> None:
        """Signal the whole process group (shim and program), as a runtime signals a container."""
        if not self.alive():
            return
        self.signalled = sig
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def exit_reason(exit_code: int, oom_killed: bool) -> str:
    if oom_killed:
        return "OOMKilled"
    return "Completed" if exit_code == 0 else "Error"
