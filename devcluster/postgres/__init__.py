"""A local PostgreSQL server (Debian's packages) for Optuna's ``RDBStorage``: tests, benchmarks
and ``fleet cluster up --postgres``.

``start(base)`` initialises (once) and starts one server under ``base`` and returns a
:class:`PostgresServer`; ``attach(base)`` finds the one recorded there if it still answers.

- **Binaries:** ``$MODELFLEET_POSTGRES_BIN`` (a directory, used alone), else ``initdb`` and
  ``postgres`` from ``PATH`` (from one directory once symlinks are resolved), else the newest
  ``/usr/lib/postgresql/<major>/bin``. A data directory made by an older major picks that
  major's binaries. None found: :class:`PostgresNotFound` names the ``apt-get`` command.
- **Never as root:** ``postgres`` refuses root, and a database server should not have it
  anyway. Run as root, initdb and the server run as the system user ``modelfleet-pg``
  (``$MODELFLEET_POSTGRES_USER``), created with ``useradd --system`` when missing; otherwise
  as the calling user. That user owns ``base/data`` and ``base/run``. It must be able to
  reach them: where a directory above ``base`` is closed to it (``/root`` and ``mkdtemp``
  directories are 0700), root grants that user search permission (``x``, no listing) on that
  directory with a POSIX ACL, as ``setfacl -m u:modelfleet-pg:x DIR`` would, and says so.
- **Network:** TCP on ``127.0.0.1`` only, on a free port chosen at start (another one when it
  is taken by the time the server binds; the recorded port is tried first on a later start).
  The Unix socket lives in ``base/run`` (given to the server relative to its data directory, so
  deep state dirs do not hit the 107-byte socket path limit).
- **Authentication:** ``scram-sha-256`` for every connection (``pg_hba.conf`` is written by
  this module): a superuser ``modelfleet_admin`` and a login role ``fleet_<hex>`` with
  ``CREATEDB`` that owns the database ``optuna``; both passwords are generated. The record
  ``base/server.json`` (mode 0600, owned by the caller) keeps them with the port and pid.
- **URL:** ``url`` is the SQLAlchemy URL for psycopg 3,
  ``postgresql+psycopg://USER:PASS@127.0.0.1:PORT/optuna`` (plain ``postgresql://`` would pick
  SQLAlchemy's default driver). Passwords are hex, so the URL needs no quoting.

Layout of ``base``: ``data/`` (PGDATA), ``run/`` (socket), ``server.json``, ``postgres.log``
(the server's stderr), ``initdb.log``, ``.lock`` (serialises concurrent ``start`` calls).

Optuna after a restart: a pooled SQLAlchemy connection is dead once the server restarted, and
``RDBStorage`` enables ``pool_pre_ping`` only for MySQL. Workers that must ride out a
restart pass ``engine_kwargs={"pool_pre_ping": True}`` (or ``{"poolclass": NullPool}``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import operator
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

HOST = "127.0.0.1"
DATABASE = "optuna"
ADMIN_USER = "modelfleet_admin"
DEFAULT_OS_USER = "modelfleet-pg"
DEFAULT_MAX_CONNECTIONS = 100
BIN_GLOB = "/usr/lib/postgresql/*/bin"
RECORD = "server.json"
START_TIMEOUT_S = float(os.environ.get("MODELFLEET_POSTGRES_START_TIMEOUT", "60"))
APT_PACKAGE = "postgresql"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Progress = Callable[[str], None]


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, prepared or started; the message says why."""


class PostgresNotFound(PostgresError):
    """No PostgreSQL server binaries; the message names the install command."""


class PostgresStartError(PostgresError):
    """initdb or the server failed; the message carries the end of the log."""


def install_command() -> str:
    """The exact command that installs the server (as devcluster/system_deps.sh does)."""
    if os.geteuid() == 0:
        return f"apt-get update && apt-get install -y {APT_PACKAGE}"
    return f"sudo apt-get update && sudo apt-get install -y {APT_PACKAGE}"


# ---- binaries --------------------------------------------------------------------------------
def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) and (bindir / name).is_file()
               for name in ("initdb", "postgres"))


def _candidates() -> list[Path]:
    env = os.environ.get("MODELFLEET_POSTGRES_BIN")
    if env:
        return [Path(env)] if _has_server(Path(env)) else []
    found: list[Path] = []
    on_path = [shutil.which(name) for name in ("postgres", "initdb")]
    if on_path[0]:
        bindir = Path(os.path.realpath(on_path[0])).parent
        if on_path[1] is None or Path(os.path.realpath(on_path[1])).parent == bindir:
            found.append(bindir)
    import glob

    def major(p: str) -> tuple[int, ...]:
        name = Path(p).parent.name
        return tuple(int(x) for x in re.findall(r"\d+", name)) or (0,)

    for d in sorted(glob.glob(BIN_GLOB), key=major, reverse=True):
        if Path(d) not in found:
            found.append(Path(d))
    return [d for d in found if _has_server(d)]


def server_version(bindir: Path) -> str:
    """The major version of the server in ``bindir`` (``"15"``), from ``postgres -V``."""
    out = subprocess.run([str(bindir / "postgres"), "-V"], capture_output=True, text=True,
                         check=False, timeout=30).stdout
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    if not m:
        raise PostgresNotFound(f"{bindir / 'postgres'} -V printed {out.strip()!r}")
    return m.group(1)


def find_binaries(major: str | None = None) -> Path:
    """The directory holding ``initdb`` and ``postgres`` (of ``major`` when given)."""
    found = _candidates()
    if not found:
        where = (f"$MODELFLEET_POSTGRES_BIN={os.environ['MODELFLEET_POSTGRES_BIN']}"
                 if os.environ.get("MODELFLEET_POSTGRES_BIN") else f"PATH or {BIN_GLOB}")
        raise PostgresNotFound(
            f"PostgreSQL server binaries (initdb, postgres) not found in {where}; "
            f"install them with:\n  {install_command()}\n"
            "(or run `bash devcluster/system_deps.sh`)"
        )
    if major is None:
        return found[0]
    for d in found:
        if server_version(d) == major:
            return d
    raise PostgresNotFound(
        f"this data directory was made by PostgreSQL {major}, but only "
        f"{', '.join(f'{server_version(d)} ({d})' for d in found)} is installed; install "
        f"postgresql-{major} (`{install_command()}-{major}`) or remove the data directory."
    )


# ---- the OS user ----------------------------------------------------------------------------
def _nologin() -> str:
    for shell in ("/usr/sbin/nologin", "/sbin/nologin"):
        if os.access(shell, os.X_OK):
            return shell
    return "/bin/false"


def useradd_command(name: str) -> list[str]:
    """The command that creates the server's system user."""
    return ["useradd", "--system", "--user-group", "--no-create-home",
            "--home-dir", "/nonexistent", "--shell", _nologin(),
            "--comment", "modelfleet local PostgreSQL", name]


def os_user(create: bool = True) -> pwd.struct_passwd:
    """The user initdb and the server run as (see the module docstring)."""
    wanted = os.environ.get("MODELFLEET_POSTGRES_USER")
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        if wanted and wanted != me.pw_name:
            raise PostgresStartError(
                f"MODELFLEET_POSTGRES_USER={wanted}: running PostgreSQL as another user needs "
                f"root; unset it to run the server as {me.pw_name}.")
        return me
    name = wanted or DEFAULT_OS_USER
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        cmd = useradd_command(name)
        if not create or shutil.which("useradd") is None:
            raise PostgresStartError(
                f"the system user {name!r} that runs PostgreSQL does not exist; create it "
                f"with:\n  {' '.join(cmd)}") from None
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:  # exit 9: created meanwhile by a concurrent start
            user = pwd.getpwnam(name)
        except KeyError:
            raise PostgresStartError(
                f"`{' '.join(cmd)}` failed (exit {res.returncode}): {res.stderr.strip()}"
            ) from None
    if user.pw_uid == 0:
        raise PostgresStartError(f"MODELFLEET_POSTGRES_USER={name} is root; PostgreSQL must "
                                 "not run as root.")
    return user


def _as_user(user: pwd.struct_passwd) -> dict[str, Any]:
    """Popen keyword arguments that run a child as ``user`` (none when that is us)."""
    if user.pw_uid == os.geteuid():
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _child_env(user: pwd.struct_passwd) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C",
            "HOME": user.pw_dir or "/nonexistent"}


# ---- reaching the data dir: search permission by POSIX ACL ----------------------------------
_ACL_XATTR = "system.posix_acl_access"
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def _first_closed(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory from ``/`` down to ``path`` that ``user`` may not search."""
    prefixes = [str(p) for p in reversed(path.parents)] + [str(path)]
    res = subprocess.run(
        ["/bin/sh", "-c", 'for d; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done',
         "sh", *prefixes],
        capture_output=True, text=True, check=False, env=_child_env(user), **_as_user(user))
    return Path(res.stdout) if res.returncode else None


def grant_search(directory: Path, uid: int) -> None:
    """Add ``u:<uid>:--x`` to the access ACL of ``directory`` (``setfacl -m u:UID:x``)."""
    try:
        blob = os.getxattr(directory, _ACL_XATTR)
        entries = [struct.unpack_from("<HHI", blob, 4 + 8 * i)
                   for i in range((len(blob) - 4) // 8)]
    except OSError:
        mode = os.stat(directory).st_mode
        entries = [(_USER_OBJ, (mode >> 6) & 7, _NO_ID), (_GROUP_OBJ, (mode >> 3) & 7, _NO_ID),
                   (_OTHER, mode & 7, _NO_ID)]
    by_key = {(tag, eid): perm for tag, perm, eid in entries}
    by_key[(_USER, uid)] = by_key.get((_USER, uid), 0) | 1
    if (_MASK, _NO_ID) in by_key:
        by_key[(_MASK, _NO_ID)] |= 1
    else:  # a first named entry needs a mask: the union of the group class, as setfacl makes
        by_key[(_MASK, _NO_ID)] = functools.reduce(operator.or_, (
            perm for (tag, _), perm in by_key.items() if tag in (_USER, _GROUP_OBJ, _GROUP)))
    ordered = sorted(by_key.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    os.setxattr(directory, _ACL_XATTR, struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, eid) for (tag, eid), perm in ordered))


def ensure_reachable(path: Path, user: pwd.struct_passwd, say: Progress) -> list[Path]:
    """Make every directory above ``path`` searchable by ``user``; returns those granted."""
    granted: list[Path] = []
    if user.pw_uid == os.geteuid():
        return granted  # our own directories
    while (closed := _first_closed(path, user)) is not None:
        if closed in granted or closed == path:
            break
        try:
            grant_search(closed, user.pw_uid)
        except OSError as exc:
            raise PostgresStartError(
                f"{user.pw_name} cannot reach {path}: {closed} is closed to it and its ACL "
                f"could not be changed ({exc}). Open it with `chmod o+x {closed}` or use a "
                "state directory it can reach.") from exc
        say(f"  postgres: granted {user.pw_name} search permission (x, POSIX ACL) on {closed} "
            "so it can reach its data directory")
        granted.append(closed)
    if (closed := _first_closed(path, user)) is not None:
        raise PostgresStartError(f"{user.pw_name} still cannot search {closed} on the way to "
                                 f"{path}; open it with `chmod o+x {closed}`.")
    return granted


# ---- the record -----------------------------------------------------------------------------
def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _tail(path: Path, offset: int = 0, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


_procs: dict[int, subprocess.Popen[bytes]] = {}


@dataclass
class PostgresServer:
    """One server under ``base``; see the module docstring. ``pid`` changes on ``restart``."""

    base: Path
    port: int
    pid: int
    user: str
    password: str = field(repr=False)
    admin_password: str = field(repr=False)
    os_user: str
    bindir: Path
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    database: str = DATABASE
    admin_user: str = ADMIN_USER

    # -- where things are
    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    # -- addresses
    @property
    def url(self) -> str:
        """``postgresql+psycopg://USER:PASS@127.0.0.1:PORT/optuna`` (SQLAlchemy, psycopg 3)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """The SQLAlchemy URL of another database on this server, as the same role."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def conninfo(self, database: str | None = None, admin: bool = False) -> dict[str, Any]:
        """``psycopg.connect(**conninfo())`` keyword arguments (TCP, scram-sha-256)."""
        return {"host": HOST, "port": self.port, "dbname": database or self.database,
                "user": self.admin_user if admin else self.user,
                "password": self.admin_password if admin else self.password,
                "connect_timeout": 5}

    def connect(self, database: str | None = None, admin: bool = False,
                **kwargs: Any) -> psycopg.Connection:
        import psycopg

        return psycopg.connect(**(self.conninfo(database, admin) | kwargs))

    # -- state
    def alive(self) -> bool:
        """The recorded pid is still this server's postmaster (not a reused pid)."""
        if self.pid <= 0:
            return False
        proc = _procs.get(self.pid)
        if proc is not None and proc.poll() is not None:
            return False
        try:
            exe = os.readlink(f"/proc/{self.pid}/exe")
        except OSError:
            return False
        if exe.removesuffix(" (deleted)") != os.path.realpath(self.bindir / "postgres"):
            return False
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return True  # not readable for us; the exe check has to do
        return first.strip() == str(self.pid)

    def _accepting(self, database: str = "postgres", admin: bool = True) -> bool:
        import psycopg

        try:
            with self.connect(database, admin=admin, connect_timeout=2) as c:
                c.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def ready(self) -> bool:
        """The role of ``url`` can log in to ``optuna`` now."""
        return self._accepting(self.database, admin=False)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until ``ready()``; raises :class:`PostgresStartError` when it died or timed out."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.alive():
                raise PostgresStartError(f"PostgreSQL (pid {self.pid}) is not running.\n"
                                         f"{_tail(self.log_path)}")
            if time.monotonic() > deadline:
                raise PostgresStartError(f"PostgreSQL on port {self.port} not ready after "
                                         f"{timeout:.0f}s.\n{_tail(self.log_path)}")
            time.sleep(0.1)

    # -- lifecycle
    def stop(self, timeout: float = 30.0) -> bool:
        """Fast shutdown (SIGINT: open transactions abort, clients are disconnected), then
        SIGQUIT, then SIGKILL. Only signals the recorded postmaster; True if one was running."""
        if not self.alive():
            return False
        for sig, wait_s in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0),
                            (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not self._reap_or_alive():
                    return True
                time.sleep(0.05)
        return True

    def _reap_or_alive(self) -> bool:
        proc = _procs.get(self.pid)
        if proc is not None:
            return proc.poll() is None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)
        return self.alive()

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        """Stop and start again on the same port (so ``url`` stays valid); data is kept.
        Clients see their connections drop; a shared test server restarts for everyone."""
        self.stop()
        user = os_user()
        ensure_reachable(self.data_dir, user, lambda _m: None)
        deadline = time.monotonic() + timeout
        while True:  # the port is ours; retry briefly in case something grabbed it meanwhile
            try:
                _launch(self, user, self.port, timeout)
                break
            except _PortTaken:
                if time.monotonic() > deadline:
                    raise PostgresStartError(
                        f"port {self.port} was taken while PostgreSQL restarted; "
                        f"{_tail(self.log_path, lines=5)}") from None
                time.sleep(0.5)
        _save(self)
        self.wait_ready(timeout)

    # -- databases
    def new_database(self, name: str) -> str:
        """Create a fresh, empty database ``name`` (dropping one of that name) owned by the
        ``url`` role; returns its URL."""
        from psycopg import sql

        if not _NAME_RE.match(name):
            raise ValueError(f"database name {name!r}: use [a-z0-9_], at most 63 characters, "
                             "not starting with a digit")
        with self.connect("postgres", admin=True, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
            c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(self.user)))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self.connect("postgres", admin=True, autocommit=True) as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


def _save(server: PostgresServer) -> None:
    doc = {"port": server.port, "pid": server.pid, "user": server.user,
           "password": server.password, "admin_user": server.admin_user,
           "admin_password": server.admin_password, "os_user": server.os_user,
           "bindir": str(server.bindir), "max_connections": server.max_connections,
           "database": server.database}
    _write_private(server.base / RECORD, json.dumps(doc, indent=2))


def load(base: Path | str) -> PostgresServer | None:
    """The server recorded under ``base``, running or not (``None`` without a record)."""
    base = Path(base).absolute()
    try:
        doc = json.loads((base / RECORD).read_text())
        return PostgresServer(
            base=base, port=int(doc["port"]), pid=int(doc["pid"]), user=doc["user"],
            password=doc["password"], admin_password=doc["admin_password"],
            admin_user=doc.get("admin_user", ADMIN_USER), os_user=doc["os_user"],
            bindir=Path(doc["bindir"]),
            max_connections=int(doc.get("max_connections", DEFAULT_MAX_CONNECTIONS)),
            database=doc.get("database", DATABASE))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def attach(base: Path | str) -> PostgresServer | None:
    """The server recorded under ``base`` when it runs and its role can log in."""
    server = load(base)
    return server if server is not None and server.alive() and server.ready() else None


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    fd = os.open(base / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class _PortTaken(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


PG_HBA = """\
# Written by devcluster.postgres: password (SCRAM) authentication only, loopback only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
"""


def _server_argv(server: PostgresServer, port: int) -> list[str]:
    settings = {
        "listen_addresses": HOST,
        "port": port,
        # Relative to the data directory (the server's working directory): short socket paths.
        "unix_socket_directories": "../run",
        "unix_socket_permissions": "0700",
        "max_connections": server.max_connections,
        "password_encryption": "scram-sha-256",
        "logging_collector": "off",
        "log_destination": "stderr",
    }
    argv = [str(server.bindir / "postgres"), "-D", str(server.data_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def _launch(server: PostgresServer, user: pwd.struct_passwd, port: int, timeout: float) -> None:
    """Start the postmaster on ``port`` and wait until it accepts the admin; sets ``pid``.
    Raises :class:`_PortTaken` when the port was taken, else PostgresStartError on failure."""
    log_path = server.log_path
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            _server_argv(server, port), cwd=server.data_dir, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=_child_env(user), umask=0o077, **_as_user(user))
    _procs[proc.pid] = proc
    server.port, server.pid = port, proc.pid
    deadline = time.monotonic() + timeout
    while not server._accepting():
        code = proc.poll()
        if code is not None:
            text = _tail(log_path, offset)
            if "Address already in use" in text or "could not create any TCP/IP" in text:
                raise _PortTaken
            raise PostgresStartError(
                f"postgres exited with {code} during start; last lines of {log_path}:\n{text}")
        if time.monotonic() > deadline:
            server.stop()
            raise PostgresStartError(f"PostgreSQL not accepting connections on port {port} "
                                     f"after {timeout:.0f}s:\n{_tail(log_path, offset)}")
        time.sleep(0.05)


def _initdb(server: PostgresServer, user: pwd.struct_passwd) -> None:
    data = server.data_dir
    pwfile = server.base / ".initdb-pw"
    _write_private(pwfile, server.admin_password + "\n")
    try:
        if user.pw_uid != os.geteuid():
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        argv = [str(server.bindir / "initdb"), "-D", str(data), "-U", server.admin_user,
                f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--no-locale", "--no-instructions"]
        with (server.base / "initdb.log").open("wb") as log:
            res = subprocess.run(argv, cwd=data, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, env=_child_env(user), check=False,
                                 timeout=300, **_as_user(user))
    finally:
        pwfile.unlink(missing_ok=True)
    if res.returncode != 0:
        raise PostgresStartError(f"initdb failed (exit {res.returncode}); "
                                 f"{server.base / 'initdb.log'}:\n"
                                 f"{_tail(server.base / 'initdb.log')}")


def _write_hba(server: PostgresServer, user: pwd.struct_passwd) -> None:
    hba = server.data_dir / "pg_hba.conf"
    _write_private(hba, PG_HBA)
    if user.pw_uid != os.geteuid():
        os.chown(hba, user.pw_uid, user.pw_gid)


def _bootstrap(server: PostgresServer) -> None:
    """The login role and database ``optuna`` (idempotent; the role's password follows the
    record)."""
    from psycopg import sql

    with server.connect("postgres", admin=True, autocommit=True) as c:
        role = sql.Identifier(server.user)
        pw = sql.Literal(server.password)
        if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (server.user,)).fetchone():
            c.execute(sql.SQL("ALTER ROLE {} LOGIN CREATEDB PASSWORD {}").format(role, pw))
        else:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(role, pw))
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                         (server.database,)).fetchone():
            c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(server.database), role))


WATCHER = r"""
while kill -0 "$1" 2>/dev/null; do sleep 1; done
pid=$(head -n 1 "$2/postmaster.pid" 2>/dev/null) || exit 0
[ "$(readlink "/proc/$pid/exe")" = "$3" ] && kill -INT "$pid"
exit 0
"""


def _watch(server: PostgresServer, watch_pid: int) -> None:
    """Fast-shut the server down once ``watch_pid`` is gone (a test run that was killed)."""
    subprocess.Popen(
        ["/bin/sh", "-c", WATCHER, "postgres-watch", str(watch_pid), str(server.data_dir),
         os.path.realpath(server.bindir / "postgres")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)


def _prepare_dir(path: Path, mode: int, user: pwd.struct_passwd) -> None:
    path.mkdir(mode=mode, exist_ok=True)
    path.chmod(mode)
    if user.pw_uid != os.geteuid():
        os.chown(path, user.pw_uid, user.pw_gid)


def start(base: Path | str, *, max_connections: int | None = None, port: int | None = None,
          timeout: float = START_TIMEOUT_S, watch_pid: int | None = None, attempts: int = 5,
          progress: Progress | None = None) -> PostgresServer:
    """Start (initialising on first use) the server under ``base``; re-attach when it runs.

    ``max_connections`` defaults to the recorded value, else 100 (a running server with another
    value is restarted). ``port`` is tried first (then the recorded one), and a free one when it
    is taken. With ``watch_pid`` the server shuts down once that process is gone.
    """
    say = progress or (lambda _msg: None)
    base = Path(base).absolute()
    find_binaries()  # before anything is created: no server, no user, no directories
    user = os_user()
    dropping = user.pw_uid != os.geteuid()
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o711 if dropping else 0o700)
    with _locked(base):
        server = load(base)
        if server is not None and server.alive():
            if max_connections in (None, server.max_connections) and server.ready():
                return server
            server.stop()
        data = base / "data"
        initialised = (data / "PG_VERSION").is_file()
        if initialised and server is None:
            raise PostgresStartError(
                f"{data} holds a database but its record {base / RECORD} (the passwords) is "
                f"gone; remove {base} to start afresh.")
        if initialised and data.stat().st_uid != user.pw_uid:
            raise PostgresStartError(
                f"{data} belongs to uid {data.stat().st_uid}, not {user.pw_name}; remove {base} "
                "to start afresh.")
        major = (data / "PG_VERSION").read_text().strip() if initialised else None
        bindir = find_binaries(major)
        if server is None:
            server = PostgresServer(
                base=base, port=0, pid=0, user=f"fleet_{secrets.token_hex(4)}",
                password=secrets.token_hex(16), admin_password=secrets.token_hex(16),
                os_user=user.pw_name, bindir=bindir)
        server.bindir, server.os_user, server.pid = bindir, user.pw_name, 0
        if max_connections is not None:
            if max_connections < 5:
                raise PostgresStartError("max_connections must be at least 5")
            server.max_connections = max_connections
        if not initialised:
            shutil.rmtree(data, ignore_errors=True)  # a half-done initdb
        _prepare_dir(data, 0o700, user)
        _prepare_dir(base / "run", 0o700, user)
        ensure_reachable(data, user, say)
        _save(server)  # the passwords are recorded before initdb uses them
        if not initialised:
            say(f"  postgres: initdb as {user.pw_name} ({bindir})")
            _initdb(server, user)
        _write_hba(server, user)
        tried: set[int] = set()
        recorded = server.port
        for attempt in range(attempts):
            wanted = [p for p in (port, recorded) if p and p not in tried]
            chosen = wanted[0] if wanted else _free_port()
            tried.add(chosen)
            try:
                _launch(server, user, chosen, timeout)
            except _PortTaken:
                say(f"  postgres: port {chosen} is taken; trying another")
                if attempt == attempts - 1:
                    raise PostgresStartError(
                        f"ports kept colliding ({sorted(tried)}); "
                        f"{_tail(server.log_path, lines=5)}") from None
                continue
            break
        try:
            _bootstrap(server)
            _save(server)
            server.wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        if watch_pid:
            _watch(server, watch_pid)
        return server
