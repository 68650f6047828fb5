"""devcluster.postgres: a real PostgreSQL on loopback, as a non-root user, with SCRAM logins."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg
import pytest

from devcluster import postgres as pg
from devcluster.cluster import ClusterError, LocalCluster, processes
from tests.fixtures.postgres import TestPostgres

pytestmark = pytest.mark.postgres


def _tcp_listeners(port: int) -> list[tuple[str, str]]:
    """(table, address) of every LISTEN socket on ``port`` in /proc/net/tcp and tcp6."""
    found = []
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = row.split()
            addr_hex, port_hex = cols[1].split(":")
            if cols[3] == "0A" and int(port_hex, 16) == port:
                found.append((table, processes._decode_addr(addr_hex)))
    return found


@pytest.fixture
def own_base() -> Iterator[Path]:
    """A directory for a server of the test's own (closed, 0700, as mkdtemp makes it)."""
    root = Path(tempfile.mkdtemp(prefix="modelfleet-pgtest-"))
    try:
        yield root / "postgres"
    finally:
        server = pg.load(root / "postgres")
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_listens_only_on_loopback_as_a_non_root_user(postgres: TestPostgres) -> None:
    server = postgres.server
    assert _tcp_listeners(server.port) == [("tcp", "127.0.0.1")]
    assert processes.listening_addresses(server.pid) == [("tcp", "127.0.0.1", server.port)]
    uids = next(line for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                if line.startswith("Uid:")).split()[1:]
    user = pwd.getpwnam(server.os_user)
    assert user.pw_uid != 0 and set(map(int, uids)) == {user.pw_uid}
    assert server.data_dir.stat().st_uid == user.pw_uid
    assert server.data_dir.stat().st_mode & 0o777 == 0o700
    assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
    assert server.url.startswith(f"postgresql+psycopg://{server.user}:")
    assert server.url.endswith(f"@127.0.0.1:{server.port}/optuna")


def test_every_login_needs_the_password(postgres: TestPostgres) -> None:
    server = postgres.server
    info = server.conninfo()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**(info | {"password": "wrong"})).close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(**(info | {"host": str(server.socket_dir), "password": "x"})).close()
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(**(info | {"password": None}), passfile=os.devnull).close()
    with server.connect() as c:
        row = c.execute("SELECT current_user, current_database(), "
                        "current_setting('max_connections')").fetchone()
    assert row == (server.user, "optuna", "100")


def test_optuna_study_survives_a_restart(postgres: TestPostgres, postgres_url: str) -> None:
    def objective(trial: optuna.Trial) -> float:
        return (trial.suggest_float("x", -10, 10) - 2) ** 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Pooled connections die with the server; pre-ping replaces them (RDBStorage turns it on
    # only for MySQL).
    storage = optuna.storages.RDBStorage(postgres_url, engine_kwargs={"pool_pre_ping": True})
    study = optuna.create_study(study_name="restart", storage=storage,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=3)
    port, pid = postgres.port, postgres.server.pid
    postgres.restart()
    assert postgres.port == port and postgres.server.pid != pid
    study.optimize(objective, n_trials=3)
    fresh = optuna.load_study(study_name="restart",
                              storage=optuna.storages.RDBStorage(postgres_url))
    assert len(fresh.trials) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in fresh.trials)
    other = postgres.new_database("other")
    assert optuna.get_all_study_names(optuna.storages.RDBStorage(other)) == []
    postgres.drop_database(other)


def test_reattach_stop_start_keeps_data_port_and_settings(own_base: Path) -> None:
    server = pg.start(own_base, max_connections=20)
    with server.connect(autocommit=True) as c:
        c.execute("CREATE TABLE kept (v int)")
        c.execute("INSERT INTO kept VALUES (7)")
        assert c.execute("SHOW max_connections").fetchone() == ("20",)
    again = pg.start(own_base)
    assert again.pid == server.pid  # re-attached, not restarted
    assert pg.attach(own_base) == server
    assert server.stop() and not server.alive() and pg.attach(own_base) is None
    assert not server.stop()  # nothing to stop any more
    back = pg.start(own_base)
    assert back.port == server.port and back.url == server.url and back.pid != server.pid
    with back.connect() as c:
        assert c.execute("SELECT v FROM kept").fetchone() == (7,)
        assert c.execute("SHOW max_connections").fetchone() == ("20",)
    assert oct((own_base / pg.RECORD).stat().st_mode & 0o777) == "0o600"


def test_a_taken_port_makes_it_pick_another(own_base: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        said: list[str] = []
        server = pg.start(own_base, port=taken, progress=said.append)
        assert server.port != taken and server.ready()
        assert any(f"port {taken} is taken" in m for m in said)
        assert "Address already in use" in server.log_path.read_text()


def test_missing_binaries_name_the_install_command(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setenv("MODELFLEET_POSTGRES_BIN", str(tmp_path))
    with pytest.raises(pg.PostgresNotFound, match="apt-get install -y postgresql"):
        pg.find_binaries()
    monkeypatch.delenv("MODELFLEET_POSTGRES_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg, "BIN_GLOB", str(tmp_path / "*" / "bin"))
    with pytest.raises(pg.PostgresNotFound) as err:
        pg.find_binaries()
    assert pg.install_command() in str(err.value)
    assert "devcluster/system_deps.sh" in str(err.value)
    # `fleet cluster up --postgres` fails before it starts anything.
    state = tmp_path / "state"
    with pytest.raises(ClusterError, match="apt-get install -y postgresql"):
        LocalCluster(state).up(nodes=1, gpu_nodes=0, local_nodes=0, postgres=True)
    assert not state.exists()


def test_grant_search_adds_a_named_entry_and_mask(tmp_path: Path) -> None:
    d = tmp_path / "closed"
    d.mkdir(mode=0o700)
    try:
        pg.grant_search(d, 54321)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")
    pg.grant_search(d, 54321)  # idempotent
    pg.grant_search(d, 54322)
    blob = os.getxattr(d, "system.posix_acl_access")
    entries = {(tag, eid): perm for tag, perm, eid in
               (struct.unpack_from("<HHI", blob, 4 + 8 * i) for i in range((len(blob) - 4) // 8))}
    assert entries[(0x02, 54321)] == 1 and entries[(0x02, 54322)] == 1
    assert entries[(0x01, 0xFFFFFFFF)] == 7  # owner keeps rwx
    assert entries[(0x04, 0xFFFFFFFF)] == 0 and entries[(0x20, 0xFFFFFFFF)] == 0
    assert entries[(0x10, 0xFFFFFFFF)] == 1  # mask: x only
    assert d.stat().st_mode & 0o777 == 0o710  # the group bits show the mask
