"""podenv: $(VAR) expansion, quantities, references and the kubelet's env resolution."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from devcluster.runner.podenv import (
    EnvError,
    PodContext,
    Refs,
    container_env,
    expand,
    format_map,
    parse_quantity,
    pod_hostname,
    references,
)

ENV = {"A": "alpha", "B": "beta", "EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("$(A)", "alpha"),
        ("x$(A)y$(B)z", "xalphaybetaz"),
        ("$(A)$(A)", "alphaalpha"),
        ("$(UNDEFINED)", "$(UNDEFINED)"),
        ("pre-$(UNDEFINED)-post", "pre-$(UNDEFINED)-post"),
        ("$(EMPTY)", ""),
        ("$$", "$"),
        ("$$$$", "$$"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$alpha"),
        ("$$$$(A)", "$$(A)"),
        ("$", "$"),
        ("abc$", "abc$"),
        ("$A", "$A"),
        ("$ (A)", "$ (A)"),
        ("$(A", "$(A"),
        ("$(", "$("),
        ("x$(A$(B)", "x$(A$(B)"),  # the name is "A$(B" up to the first ")"
        ("$()", "$()"),
        ("$(A)$", "alpha$"),
        ("$(A))", "alpha)"),
        ("(A)", "(A)"),
        ("€$(A)€", "€alpha€"),
        ("$€", "$€"),
        ("", ""),
    ],
)
def test_expand(value: str, want: str) -> None:
    assert expand(value, ENV) == want


def test_expand_does_not_recurse() -> None:
    assert expand("$(A)", {"A": "$(B)", "B": "no"}) == "$(B)"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("1Gi", Decimal(1024**3)),
        ("512Mi", Decimal(512 * 1024**2)),
        ("1Ki", Decimal(1024)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1.5", Decimal("1.5")),
        ("1.5Gi", Decimal(3 * 512 * 1024**2)),
        ("100k", Decimal(100_000)),
        ("1M", Decimal(1_000_000)),
        ("2G", Decimal(2 * 10**9)),
        ("1E", Decimal(10**18)),
        ("1Ei", Decimal(2**60)),
        ("250u", Decimal("0.00025")),
        ("5n", Decimal("0.000000005")),
        ("-1", Decimal(-1)),
        ("+3", Decimal(3)),
        (".5", Decimal("0.5")),
        ("1e-3", Decimal("0.001")),
        ("0", Decimal(0)),
    ],
)
def test_parse_quantity(text: str, want: Decimal) -> None:
    assert parse_quantity(text) == want


def test_parse_quantity_numbers() -> None:
    assert parse_quantity(3) == 3
    assert parse_quantity(0.25) == Decimal("0.25")


@pytest.mark.parametrize(
    "text", ["", "abc", "1x", "1 Gi", "Gi", "1Gib", "1.2.3", " 1", "1\n", "e3"]
)
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


def test_format_map_sorted_and_go_quoted() -> None:
    got = format_map({"b": 'say "hi"', "a": "x\ny", "c": "back\\slash", "d": "tab\t\x01é"})
    assert got == 'a="x\\ny"\nb="say \\"hi\\""\nc="back\\\\slash"\nd="tab\\t\\x01é"'
    assert format_map({}) == ""


def _pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-0",
            "namespace": "team",
            "uid": "1234-abcd",
            "labels": {"app": "web", "batch.kubernetes.io/job-completion-index": "3"},
            "annotations": {"note": "hello", "a": "1"},
        },
        "spec": {
            "nodeName": "node-a",
            "serviceAccountName": "runner-sa",
            "containers": [{"name": "main", "image": "python:3.11"}],
            **spec,
        },
    }


def _ctx(pod: dict[str, Any] | None = None, **kw: Any) -> PodContext:
    kw.setdefault("configmaps", {})
    kw.setdefault("secrets", {})
    kw.setdefault("allocatable", {"cpu": "8", "memory": "16Gi", "ephemeral-storage": "100Gi"})
    return PodContext(
        pod=pod if pod is not None else _pod(),
        pod_ip="127.1.128.7",
        host_ip="127.0.0.1",
        node_name="node-from-ctx",
        **kw,
    )


def test_pod_hostname() -> None:
    assert pod_hostname(_pod()) == "web-0"
    assert pod_hostname(_pod(hostname="h1")) == "h1"
    long = {"metadata": {"name": "a" * 62 + "-b"}, "spec": {}}
    assert pod_hostname(long) == "a" * 62
    fqdn = _pod(hostname="h1", subdomain="sub", setHostnameAsFQDN=True)
    assert pod_hostname(fqdn) == "h1.sub.team.svc.cluster.local"


def test_references_all_sources() -> None:
    pod = _pod(
        initContainers=[
            {"name": "init", "envFrom": [{"configMapRef": {"name": "cm-init"}}]},
        ],
        containers=[
            {
                "name": "main",
                "envFrom": [{"secretRef": {"name": "sec-from", "optional": True}}],
                "env": [
                    {"name": "X", "value": "1"},
                    {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}},
                    {"name": "Z", "valueFrom": {"secretKeyRef": {"name": "sec-key", "key": "k"}}},
                    {"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
            }
        ],
        volumes=[
            {"name": "v1", "configMap": {"name": "cm-vol"}},
            {"name": "v2", "secret": {"secretName": "sec-vol"}},
            {"name": "v3", "emptyDir": {}},
            {
                "name": "v4",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"configMap": {"name": "kube-root-ca.crt"}},
                        {"secret": {"name": "sec-proj"}},
                        {"downwardAPI": {"items": []}},
                    ]
                },
            },
        ],
    )
    assert references(pod) == Refs(
        configmaps=frozenset({"cm-init", "cm-key", "cm-vol", "kube-root-ca.crt"}),
        secrets=frozenset({"sec-from", "sec-key", "sec-vol", "sec-proj"}),
    )
    assert references({"metadata": {}, "spec": {}}) == Refs(frozenset(), frozenset())


def test_env_order_and_precedence() -> None:
    ctx = _ctx(
        configmaps={"cfg": {"A": "from-cm", "B": "cm-b", "bad=key": "x"}},
        secrets={"sec": {"PASSWORD": "s3cret", "B": "sec-b"}},
        extra={
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": "6443",
            "GPU": "0",
        },
    )
    container = {
        "name": "main",
        "envFrom": [
            {"configMapRef": {"name": "cfg"}},
            {"secretRef": {"name": "sec"}, "prefix": "DB_"},
            {"secretRef": {"name": "sec"}},
        ],
        "env": [
            {"name": "A", "value": "from-env"},
            {
                "name": "URL",
                "value": "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)",
            },
            {"name": "C", "value": "$(A)-$(DB_PASSWORD)-$(LATER)-$(HOSTNAME)"},
            {"name": "LATER", "value": "late"},
            {"name": "GPU", "value": "1"},
            {"name": "EMPTY"},
            {"name": "ESC", "value": "$$(A)"},
        ],
    }
    env = container_env(ctx, container)
    assert env == {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": "6443",
        "HOSTNAME": "web-0",
        "B": "sec-b",
        "DB_B": "sec-b",
        "DB_PASSWORD": "s3cret",
        "PASSWORD": "s3cret",
        "A": "from-env",
        "URL": "https://127.0.0.1:6443",
        "C": "from-env-s3cret-$(LATER)-$(HOSTNAME)",
        "LATER": "late",
        "GPU": "1",
        "EMPTY": "",
        "ESC": "$(A)",
    }
    # Insertion order shows the source: extra, HOSTNAME, envFrom, then env.
    assert list(env)[:3] == ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "HOSTNAME"]
    assert list(env)[-7:] == ["A", "URL", "C", "LATER", "GPU", "EMPTY", "ESC"]


def test_env_later_entry_wins() -> None:
    env = container_env(
        _ctx(),
        {
            "env": [
                {"name": "X", "value": "1"},
                {"name": "X", "value": "2"},
                {"name": "Y", "value": "$(X)"},
            ]
        },
    )
    assert env["X"] == "2"
    assert env["Y"] == "2"


def test_env_hostname_from_spec_and_overridable() -> None:
    assert container_env(_ctx(_pod(hostname="trainer-1")), {})["HOSTNAME"] == "trainer-1"
    env = container_env(_ctx(), {"env": [{"name": "HOSTNAME", "value": "mine"}]})
    assert env["HOSTNAME"] == "mine"


def test_optional_missing_refs_are_skipped() -> None:
    ctx = _ctx(configmaps={"cfg": {"K": "v"}})
    container = {
        "envFrom": [
            {"configMapRef": {"name": "absent", "optional": True}},
            {"secretRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {
                "name": "A",
                "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "K", "optional": True}},
            },
            {
                "name": "B",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "NOPE", "optional": True}},
            },
            {
                "name": "C",
                "valueFrom": {"secretKeyRef": {"name": "absent", "key": "K", "optional": True}},
            },
            {"name": "D", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "K"}}},
        ],
    }
    assert container_env(ctx, container) == {"HOSTNAME": "web-0", "D": "v"}


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"envFrom": [{"configMapRef": {"name": "app-config"}}]},
            'configmap "app-config" not found',
        ),
        ({"envFrom": [{"secretRef": {"name": "db"}}]}, 'secret "db" not found'),
        (
            {
                "env": [
                    {
                        "name": "X",
                        "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "K"}},
                    }
                ]
            },
            'configmap "app-config" not found',
        ),
        (
            {
                "env": [
                    {
                        "name": "X",
                        "valueFrom": {"configMapKeyRef": {"name": "present", "key": "FOO"}},
                    }
                ]
            },
            "couldn't find key FOO in ConfigMap team/present",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "K"}}}]},
            'secret "db" not found',
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "PW"}}}]},
            "couldn't find key PW in Secret team/s",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]},
            "unsupported fieldPath: spec.bogus",
        ),
        (
            {"env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.gpu"}}}]},
            "unsupported container resource : limits.gpu",
        ),
    ],
)
def test_missing_required_refs(container: dict[str, Any], message: str) -> None:
    ctx = _ctx(configmaps={"present": {"K": "v"}}, secrets={"s": {"K": "v"}})
    with pytest.raises(EnvError) as info:
        container_env(ctx, container)
    assert str(info.value) == message
    assert info.value.reason == "CreateContainerConfigError"


def test_secret_bytes_are_decoded() -> None:
    ctx = _ctx(secrets={"s": {"K": b"raw\xff"}})
    env = container_env(
        ctx, {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "K"}}}]}
    )
    assert env["X"].encode("utf-8", "surrogateescape") == b"raw\xff"


def _field(path: str) -> dict[str, Any]:
    return {"valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def test_field_refs() -> None:
    paths = {
        "NAME": "metadata.name",
        "NS": "metadata.namespace",
        "UID": "metadata.uid",
        "APP": "metadata.labels['app']",
        "NOLABEL": "metadata.labels['missing']",
        "NOTE": "metadata.annotations['note']",
        "LABELS": "metadata.labels",
        "ANNOTATIONS": "metadata.annotations",
        "NODE": "spec.nodeName",
        "SA": "spec.serviceAccountName",
        "HOST_IP": "status.hostIP",
        "HOST_IPS": "status.hostIPs",
        "POD_IP": "status.podIP",
        "POD_IPS": "status.podIPs",
        "JOB_COMPLETION_INDEX": "metadata.labels['batch.kubernetes.io/job-completion-index']",
    }
    container = {"env": [{"name": k, **_field(v)} for k, v in paths.items()]}
    env = container_env(_ctx(), container)
    assert {k: env[k] for k in paths} == {
        "NAME": "web-0",
        "NS": "team",
        "UID": "1234-abcd",
        "APP": "web",
        "NOLABEL": "",
        "NOTE": "hello",
        "LABELS": 'app="web"\nbatch.kubernetes.io/job-completion-index="3"',
        "ANNOTATIONS": 'a="1"\nnote="hello"',
        "NODE": "node-a",
        "SA": "runner-sa",
        "HOST_IP": "127.0.0.1",
        "HOST_IPS": "127.0.0.1",
        "POD_IP": "127.1.128.7",
        "POD_IPS": "127.1.128.7",
        "JOB_COMPLETION_INDEX": "3",
    }


def test_field_ref_node_name_falls_back_to_context() -> None:
    pod = _pod()
    del pod["spec"]["nodeName"]
    env = container_env(_ctx(pod), {"env": [{"name": "N", **_field("spec.nodeName")}]})
    assert env["N"] == "node-from-ctx"


def test_value_from_is_not_expanded() -> None:
    ctx = _ctx(configmaps={"c": {"K": "$(A)"}})
    container = {
        "env": [
            {"name": "A", "value": "a"},
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "K"}}},
        ]
    }
    assert container_env(ctx, container)["X"] == "$(A)"


def _res(resource: str, divisor: str | None = None, container: str | None = None) -> dict:
    ref: dict[str, Any] = {"resource": resource}
    if divisor is not None:
        ref["divisor"] = divisor
    if container is not None:
        ref["containerName"] = container
    return {"valueFrom": {"resourceFieldRef": ref}}


def test_resource_field_refs() -> None:
    container = {
        "name": "main",
        "resources": {
            "limits": {"cpu": "1500m", "memory": "1Gi", "ephemeral-storage": "2G"},
            "requests": {"cpu": "250m", "memory": "512Mi"},
        },
        "env": [
            {"name": "LIM_CPU", **_res("limits.cpu")},
            {"name": "LIM_CPU_M", **_res("limits.cpu", "1m")},
            {"name": "LIM_CPU_100M", **_res("limits.cpu", "100m")},
            {"name": "REQ_CPU", **_res("requests.cpu")},
            {"name": "REQ_CPU_M", **_res("requests.cpu", "1m")},
            {"name": "LIM_MEM", **_res("limits.memory")},
            {"name": "LIM_MEM_MI", **_res("limits.memory", "1Mi")},
            {"name": "LIM_MEM_G", **_res("limits.memory", "1G")},
            {"name": "REQ_MEM", **_res("requests.memory", "1Mi")},
            {"name": "LIM_EPH", **_res("limits.ephemeral-storage", "1Mi")},
            {"name": "REQ_EPH", **_res("requests.ephemeral-storage")},
        ],
    }
    pod = _pod(containers=[container])
    env = container_env(_ctx(pod), container)
    assert {k: env[k] for k in [e["name"] for e in container["env"]]} == {
        "LIM_CPU": "2",  # 1.5 cores rounds up
        "LIM_CPU_M": "1500",
        "LIM_CPU_100M": "15",
        "REQ_CPU": "1",
        "REQ_CPU_M": "250",
        "LIM_MEM": str(1024**3),
        "LIM_MEM_MI": "1024",
        "LIM_MEM_G": "2",  # 1.073741824 G rounds up
        "REQ_MEM": "512",
        "LIM_EPH": "1908",  # 2e9 / 1048576 = 1907.35 -> 1908
        "REQ_EPH": "2000000000",  # request defaults to the limit
    }


def test_resource_field_refs_fall_back_to_allocatable() -> None:
    container = {
        "name": "main",
        "env": [
            {"name": "CPU", **_res("limits.cpu")},
            {"name": "CPU_M", **_res("limits.cpu", "1m")},
            {"name": "MEM", **_res("limits.memory", "1Gi")},
            {"name": "EPH", **_res("limits.ephemeral-storage", "1Gi")},
            {"name": "REQ", **_res("requests.cpu")},
            {"name": "REQ_MEM", **_res("requests.memory")},
        ],
    }
    env = container_env(_ctx(_pod(containers=[container])), container)
    assert [env[e["name"]] for e in container["env"]] == ["8", "8000", "16", "100", "0", "0"]


def test_resource_field_ref_pod_level_limits_and_container_name() -> None:
    sidecar = {"name": "side", "resources": {"limits": {"memory": "256Mi"}}}
    main = {
        "name": "main",
        "env": [
            {"name": "CPU", **_res("limits.cpu", "1m")},
            {"name": "SIDE_MEM", **_res("limits.memory", "1Mi", container="side")},
        ],
    }
    pod = _pod(containers=[main, sidecar], resources={"limits": {"cpu": "3"}})
    env = container_env(_ctx(pod), main)
    assert (env["CPU"], env["SIDE_MEM"]) == ("3000", "256")


def test_default_allocatable_is_the_host() -> None:
    import os

    ctx = PodContext(pod=_pod(), pod_ip="", host_ip="", node_name="", configmaps={}, secrets={})
    assert ctx.allocatable["cpu"] == str(os.cpu_count())
    assert int(ctx.allocatable["memory"]) > 0
    env = container_env(ctx, {"env": [{"name": "C", **_res("limits.cpu")}]})
    assert env["C"] == str(os.cpu_count())
