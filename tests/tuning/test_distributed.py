"""TF_CONFIG from an Indexed Job's environment and the wait for peer names (pure, no TF)."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tuning.contract import TrainerError
from tuning.distributed import from_env, hosts_of, tf_config, wait_for_peers, worker_hosts

MULTI = {"NUM_WORKERS": "2", "JOB_COMPLETION_INDEX": "1", "JOB_NAME": "trial-42",
         "SUBDOMAIN": "trial-42-w", "TF_PORT": "2222"}


def test_tf_config_shape() -> None:
    assert tf_config("trial-42", "trial-42-w", 0, 2, 2222) == {
        "cluster": {"worker": ["trial-42-0.trial-42-w:2222", "trial-42-1.trial-42-w:2222"]},
        "task": {"type": "worker", "index": 0},
    }
    three = tf_config("j", "svc", 2, 3, 12345)
    assert three["cluster"]["worker"][2] == "j-2.svc:12345"
    assert three["task"] == {"type": "worker", "index": 2}
    assert worker_hosts("j", "svc", 2) == ["j-0.svc", "j-1.svc"]
    assert hosts_of(three) == ["j-0.svc", "j-1.svc", "j-2.svc"]


@pytest.mark.parametrize(("args", "match"), [
    (("j", "svc", 2, 2, 2222), r"worker index 2 is outside 0\.\.1"),
    (("j", "svc", -1, 2, 2222), r"worker index -1 is outside 0\.\.1"),
    (("j", "svc", 0, 0, 2222), "workers must be at least 1, got 0"),
    (("j", "svc", 0, 2, 0), r"port 0 is outside 1\.\.65535"),
    (("j", "svc", 0, 2, 70000), r"port 70000 is outside 1\.\.65535"),
    (("", "svc", 0, 2, 2222), "JOB_NAME is empty"),
    (("Trial_1", "svc", 0, 2, 2222), "JOB_NAME 'Trial_1' does not give valid pod hostnames"),
    (("a" * 62, "svc", 0, 2, 2222), "at most 63 characters"),
    (("j", "", 0, 2, 2222), "SUBDOMAIN is empty"),
    (("j", "my.svc", 0, 2, 2222), "SUBDOMAIN 'my.svc' is not a valid Service name"),
])
def test_tf_config_rejects(args: tuple, match: str) -> None:
    with pytest.raises(TrainerError, match=match):
        tf_config(*args)


def test_from_env_single_worker() -> None:
    assert from_env({}) == (0, 1, None)
    assert from_env({"NUM_WORKERS": "1", "JOB_COMPLETION_INDEX": "0"}) == (0, 1, None)
    # a single-worker trial needs none of the cluster variables, even when some are set
    assert from_env({"NUM_WORKERS": " 1 ", "JOB_NAME": "x"}) == (0, 1, None)


def test_from_env_multi_worker() -> None:
    index, workers, config = from_env(MULTI)
    assert (index, workers) == (1, 2)
    assert config == tf_config("trial-42", "trial-42-w", 1, 2, 2222)


@pytest.mark.parametrize(("change", "match"), [
    ({"NUM_WORKERS": "two"}, "NUM_WORKERS='two' is not an integer"),
    ({"NUM_WORKERS": "0"}, "NUM_WORKERS=0 must be at least 1"),
    ({"JOB_COMPLETION_INDEX": None}, "JOB_COMPLETION_INDEX is not set"),
    ({"JOB_COMPLETION_INDEX": ""}, "JOB_COMPLETION_INDEX is not set"),
    ({"JOB_COMPLETION_INDEX": "2"}, r"JOB_COMPLETION_INDEX=2 is outside 0\.\.1 "
                                    r"\(NUM_WORKERS=2\)"),
    ({"JOB_COMPLETION_INDEX": "-1"}, "JOB_COMPLETION_INDEX=-1 must be at least 0"),
    ({"JOB_COMPLETION_INDEX": "1.0"}, "JOB_COMPLETION_INDEX='1.0' is not an integer"),
    ({"JOB_NAME": None}, r"JOB_NAME is not set \(needed with NUM_WORKERS=2\)"),
    ({"JOB_NAME": None, "SUBDOMAIN": " "}, "JOB_NAME and SUBDOMAIN are not set"),
    ({"SUBDOMAIN": None}, "SUBDOMAIN is not set"),
    ({"TF_PORT": None}, "TF_PORT is not set"),
    ({"TF_PORT": "http"}, "TF_PORT='http' is not an integer"),
    ({"TF_PORT": "0"}, "TF_PORT=0 must be at least 1"),
    ({"TF_PORT": "65536"}, "TF_PORT=65536 must be at most 65535"),
    ({"JOB_NAME": "UPPER"}, "JOB_NAME 'UPPER' does not give valid pod hostnames"),
])
def test_from_env_errors(change: dict[str, str | None], match: str) -> None:
    env = {**MULTI}
    for key, value in change.items():
        if value is None:
            env.pop(key)
        else:
            env[key] = value
    with pytest.raises(TrainerError, match=match):
        from_env(env)


def test_from_env_index_out_of_range_with_one_worker() -> None:
    with pytest.raises(TrainerError, match=r"JOB_COMPLETION_INDEX=1 is outside 0\.\.0"):
        from_env({"JOB_COMPLETION_INDEX": "1"})


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def addrinfo(ip: str) -> list[tuple]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0))]


def test_wait_for_peers_resolves_once_hosts_appear() -> None:
    clock = FakeTime()
    calls: list[str] = []
    appear_at = {"j-0.svc": 0.0, "j-1.svc": 0.6}  # j-1 gets its IP after 0.6 s

    def resolve(host: str, port: object) -> list[tuple]:
        assert port is None
        calls.append(host)
        if clock.now < appear_at[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return addrinfo("127.1.128.2" if host == "j-1.svc" else "127.1.128.1")

    got = wait_for_peers(["j-0.svc:2222", "j-1.svc:2222", "j-0.svc"], 10, resolve,
                         sleep=clock.sleep, clock=clock.clock)
    assert got == {"j-0.svc": "127.1.128.1", "j-1.svc": "127.1.128.2"}
    assert clock.sleeps == [0.1, 0.2, 0.4]  # exponential backoff until 0.7 >= 0.6
    assert calls.count("j-0.svc") == 1  # resolved peers are not asked again


def test_wait_for_peers_timeout_names_unresolved() -> None:
    clock = FakeTime()

    def resolve(host: str, port: object) -> list[tuple]:
        if host == "j-0.svc":
            return addrinfo("127.1.128.1")
        if host == "j-2.svc":
            return []
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(TimeoutError) as err:
        wait_for_peers(["j-0.svc", "j-1.svc", "j-2.svc"], 5, resolve, sleep=clock.sleep,
                       clock=clock.clock)
    text = str(err.value)
    assert "2 of 3 peers did not resolve within 5s" in text
    assert "j-1.svc (gaierror: [Errno -2] Name or service not known)" in text
    assert "j-2.svc (no addresses)" in text
    assert "j-0.svc" not in text
    assert clock.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 1.9]  # capped by the deadline
    assert max(clock.sleeps) <= 2.0


def test_wait_for_peers_backoff_is_capped() -> None:
    clock = FakeTime()

    def never(host: str, port: object) -> list[tuple]:
        raise OSError("nope")

    with pytest.raises(TimeoutError, match=r"1 of 1 peers did not resolve within 20s: "
                                           r"a\.b \(OSError: nope\)"):
        wait_for_peers(["a.b"], 20, never, sleep=clock.sleep, clock=clock.clock,
                       max_delay_s=2.0)
    assert max(clock.sleeps) == 2.0
    assert clock.now == pytest.approx(20.0)


def test_wait_for_peers_real_resolver_localhost() -> None:
    got = wait_for_peers(["localhost:2222"], 5)
    assert set(got) == {"localhost"}


def test_importable_without_tensorflow() -> None:
    code = ("import sys, tuning.distributed, tuning.contract; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
