"""`fleet deploy` without a cluster: the Kustomize renderer (parity with the pinned
`kubectl kustomize`), the objects it builds, validation, preflight against a fake API (no
Gateway API, existing objects), apply failures and the one-line diagnosis."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet import errors, kustomize
from fleet.ops import deploy as d

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
VARIANTS = ("base", "overlays/latency", "overlays/throughput")


def key(o: dict) -> tuple[str, str]:
    return o["kind"], o["metadata"]["name"]


@pytest.fixture(scope="module")
def kubectl(request: pytest.FixtureRequest) -> str:
    from devcluster.cluster import binaries

    found = binaries.find_binary("kubectl")
    return str(found) if found else request.getfixturevalue("cluster").kubectl


@pytest.mark.parametrize("variant", VARIANTS)
def test_renderer_matches_kubectl_kustomize(kubectl: str, variant: str) -> None:
    res = subprocess.run([kubectl, "kustomize", str(MANIFESTS / variant)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    want = sorted(yaml.safe_load_all(res.stdout), key=key)
    got = sorted(kustomize.render(MANIFESTS / variant), key=key)
    assert [key(o) for o in got] == [key(o) for o in want]
    for g, w in zip(got, want, strict=True):
        assert g == w, key(g)  # list order included (env order matters for $(VAR))


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(kustomize.UnsupportedKustomization, match="namePrefix"):
        kustomize.render(tmp_path)


def test_strategic_merge_keys_and_replacement() -> None:
    orig = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"},
                                                 {"name": "Y", "value": "2"}]}],
            "metrics": [{"type": "Resource"}, {"type": "Pods"}], "drop": 1}
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}],
             "metrics": [{"type": "External"}], "drop": None}
    out = kustomize.strategic_merge(orig, patch)
    assert out["containers"][0]["env"] == [{"name": "Y", "value": "3"},
                                           {"name": "X", "value": "1"}]
    assert out["metrics"] == [{"type": "External"}]
    assert "drop" not in out


# ---- the objects ---------------------------------------------------------------------------

def spec(**kw: Any) -> d.DeploySpec:
    base: dict[str, Any] = {"name": "digits", "namespace": "team-a",
                            "model_uri": "hdfs://nn:8020/models/digits"}
    return d.DeploySpec(**(base | kw))


def by_kind(objs: list[dict]) -> dict[str, dict]:
    return {o["kind"]: o for o in objs}


def env_of(dep: dict) -> dict[str, Any]:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_objects_are_the_overlay_renamed_and_pointed_at_the_model() -> None:
    objs = d.build_objects(spec(version="7", mode="throughput", runtime="tflite-fp32",
                                env=(("WEBHDFS_URL", "http://nn:9870"),)))
    assert [o["kind"] for o in objs] == list(d.KIND_ORDER)
    k = by_kind(objs)
    for o in objs:
        assert o["metadata"]["name"] == "digits" and o["metadata"]["namespace"] == "team-a"
        assert o["metadata"]["labels"]["app.kubernetes.io/name"] == "digits"
        assert o["metadata"]["labels"]["app.kubernetes.io/component"] == "model-server"
    dep = k["Deployment"]
    assert dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "digits"
    tl = dep["spec"]["template"]["metadata"]["labels"]
    assert tl["app.kubernetes.io/name"] == "digits" and tl["app.kubernetes.io/version"] == "7"
    env = env_of(dep)
    assert env["MODEL_NAME"] == "digits" and env["MODEL_URI"] == "hdfs://nn:8020/models/digits"
    assert env["SERVING_MODE"] == "throughput" and env["MAX_BATCH_SIZE"] == "64"
    assert env["SERVING_RUNTIME"] == "tflite-fp32" and env["WEBHDFS_URL"] == "http://nn:9870"
    assert "fleet deploy digits" in dep["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert k["Service"]["spec"]["selector"]["app.kubernetes.io/name"] == "digits"
    assert k["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/name"] == "digits"
    hpa = k["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "digits"
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 20)  # the throughput overlay's
    assert dep["spec"]["replicas"] == 2
    route = k["HTTPRoute"]["spec"]
    assert route["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "namespace": "fleet-system", "name": "fleet-gateway"}]
    [rule] = route["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/models/digits"}}]
    assert rule["backendRefs"] == [{"name": "digits", "port": 8080}]
    assert rule["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"] == "/"


def test_resource_gpu_runtime_class_and_gateway_overrides(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("FLEET_GATEWAY", "edge/public")
    objs = d.build_objects(spec(cpu="100m", memory="256Mi", ephemeral_storage="0", gpus=2,
                                runtime_class="fleet-local", image="reg/x:1",
                                hostname="digits.example.com"))
    k = by_kind(objs)
    pod = k["Deployment"]["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["requests"]["cpu"] == res["limits"]["cpu"] == "100m"
    assert res["requests"]["memory"] == res["limits"]["memory"] == "256Mi"
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "2"
    assert res["requests"]["ephemeral-storage"] == "0"
    assert res["limits"]["ephemeral-storage"] == "3Gi"
    assert pod["runtimeClassName"] == "fleet-local"
    assert pod["containers"][0]["image"] == "reg/x:1"
    route = k["HTTPRoute"]["spec"]
    assert route["parentRefs"][0]["namespace"] == "edge"
    assert route["parentRefs"][0]["name"] == "public"
    assert route["hostnames"] == ["digits.example.com"]
    assert route["rules"][0]["matches"][0]["path"]["value"] == "/"
    assert "filters" not in route["rules"][0]


@pytest.mark.parametrize(("kw", "want"), [
    ({}, (3, 3, 12)),                                    # latency overlay: min 3, max 12
    ({"replicas": 1}, (1, 1, 12)),                       # HPA would otherwise scale to 3
    ({"replicas": 5}, (5, 3, 12)),
    ({"min_replicas": 2, "max_replicas": 4}, (2, 2, 4)),
    ({"replicas": 0}, (0, 3, 12)),                       # scaled to zero: HPA inactive
])
def test_replica_plan(kw: dict, want: tuple[int, int, int]) -> None:
    k = by_kind(d.build_objects(spec(**kw)))
    hpa = k["HorizontalPodAutoscaler"]["spec"]
    assert (k["Deployment"]["spec"]["replicas"], hpa["minReplicas"], hpa["maxReplicas"]) == want


@pytest.mark.parametrize(("kw", "fragment"), [
    ({"name": "Digits_1"}, "NAME 'Digits_1' must be a DNS-1035 label"),
    ({"model_uri": "s3://bucket/x"}, "--model-uri 's3://bucket/x': use hdfs://"),
    ({"model_uri": "hdfs://nn:8020"}, "needs a host and a path"),
    ({"version": "v 1"}, "--version 'v 1' must be a label value"),
    ({"cpu": "two"}, "--cpu 'two' is not a Kubernetes quantity"),
    ({"memory": "0"}, "--memory must be more than 0"),
    ({"gpus": -1}, "--gpus must be 0 or more"),
    ({"cpu_target": 150}, "--cpu-target is a CPU utilization percentage"),
    ({"min_replicas": 5, "max_replicas": 2}, "--min-replicas 5 is above --max-replicas 2"),
    ({"replicas": 9, "max_replicas": 4}, "--replicas 9 is above --max-replicas 4"),
    ({"gateway": "justaname"}, "--gateway 'justaname' must be NAMESPACE/NAME"),
    ({"hostname": "not a host"}, "--hostname 'not a host' must be a DNS name"),
    ({"env": (("MODEL_URI", "x"),)}, "--env MODEL_URI is set by fleet deploy itself"),
    ({"runtime": "onnx"}, "--runtime 'onnx' must be one of"),
])
def test_validation_names_the_flag_and_changes_nothing(kw: dict, fragment: str) -> None:
    with pytest.raises(errors.FleetError) as exc:
        d.validate(spec(**kw))
    assert fragment in exc.value.message
    assert exc.value.message.endswith("Nothing was changed.")


def test_replicas_above_the_overlay_maximum_need_max_replicas() -> None:
    objs = d.build_objects(spec(replicas=20))  # no --max-replicas: the maximum follows
    assert by_kind(objs)["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 20


# ---- against a fake API ------------------------------------------------------------------------

class FakeApi:
    """Paths that exist answer; everything else is 404. Records writes; applies are stored."""

    def __init__(self, *, gateway_api: bool = True, fail_kind: str = "") -> None:
        self.namespace = "team-a"
        self.objects: dict[str, dict] = {"/api/v1/namespaces/team-a": {"kind": "Namespace"}}
        if gateway_api:
            self.objects["/apis/gateway.networking.k8s.io/v1"] = {
                "resources": [{"name": "httproutes"}, {"name": "gateways"}]}
            self.objects["/apis/gateway.networking.k8s.io/v1/namespaces/fleet-system/"
                         "gateways/fleet-gateway"] = {"kind": "Gateway"}
        self.fail_kind = fail_kind
        self.writes: list[tuple[str, str, dict]] = []  # (method, path, query)
        self.uid = 0

    def get(self, path: str, query: Any = None) -> dict:
        if path not in self.objects:
            raise errors.NotFound(f"Error from server (NotFound): {path} not found", status=404,
                                  reason="NotFound")
        return copy.deepcopy(self.objects[path])

    def patch(self, path: str, body: Any, content_type: str, query: Any = None) -> dict:
        assert content_type == "application/apply-patch+yaml"
        assert query["fieldManager"] == "modelfleet"
        self.writes.append(("PATCH", path, dict(query)))
        if query.get("dryRun") != "All":
            if body["kind"] == self.fail_kind:
                raise errors.Invalid(f"Error from server (Invalid): {body['kind']} is invalid",
                                     status=422, reason="Invalid", detail="spec: Invalid value")
            self.uid += 1
            self.objects[path] = body | {"metadata": body["metadata"] | {"uid": str(self.uid)}}
        return self.objects.get(path, body)

    def request(self, method: str, path: str, *, body: Any = None, **_kw: Any) -> dict:
        assert method == "DELETE"
        self.writes.append(("DELETE", path, {}))
        assert body["preconditions"]["uid"] == self.objects[path]["metadata"]["uid"]
        del self.objects[path]
        return {}

    def persisted_writes(self) -> list[tuple[str, str, dict]]:
        return [w for w in self.writes if w[2].get("dryRun") != "All"]


def test_without_gateway_api_the_route_is_left_out_with_a_warning() -> None:
    api = FakeApi(gateway_api=False)
    said: list[str] = []
    result, objs = d.deploy(api, spec(), wait=False, on_message=said.append)
    assert "HTTPRoute" not in [o["kind"] for o in objs]
    assert [o.kind for o in result.objects] == ["Service", "Deployment", "PodDisruptionBudget",
                                                "HorizontalPodAutoscaler"]
    assert not any("httproutes" in p for _m, p, _q in api.writes)
    assert any("does not serve the Gateway API" in s and "without the HTTPRoute" in s
               for s in said)
    assert result.warnings and result.route == ""


def test_require_route_without_gateway_api_fails_before_any_write() -> None:
    api = FakeApi(gateway_api=False)
    with pytest.raises(errors.FleetError, match="--require-route was given, so nothing"):
        d.deploy(api, spec(), wait=False, require_route=True)
    assert api.writes == []


def test_require_route_with_a_missing_gateway_fails_before_any_write() -> None:
    api = FakeApi()
    with pytest.raises(errors.FleetError, match='Gateway "edge/nope" not found'):
        d.deploy(api, spec(gateway="edge/nope"), wait=False, require_route=True)
    assert api.writes == []


def test_with_gateway_api_every_object_is_dry_run_then_applied() -> None:
    api = FakeApi()
    result, _ = d.deploy(api, spec(), wait=False)
    dry = [p for m, p, q in api.writes if q.get("dryRun") == "All"]
    real = [p for m, p, q in api.persisted_writes()]
    assert len(dry) == len(real) == 5 and dry == real
    assert real[-1].endswith("/httproutes/digits")
    assert result.route == "/models/digits on Gateway fleet-system/fleet-gateway"


def test_an_existing_deployment_is_refused_with_the_rollout_hint() -> None:
    api = FakeApi()
    api.objects[d.object_path("Deployment", "team-a", "digits")] = {"kind": "Deployment"}
    with pytest.raises(errors.FleetError, match=r"use `fleet rollout digits --model-uri URI`"):
        d.deploy(api, spec(), wait=False)
    assert api.writes == []


def test_a_leftover_service_is_refused() -> None:
    api = FakeApi()
    api.objects[d.object_path("Service", "team-a", "digits")] = {"kind": "Service"}
    with pytest.raises(errors.FleetError, match="service/digits already exist"):
        d.deploy(api, spec(), wait=False)
    assert api.writes == []


def test_missing_namespace_and_runtime_class_are_refused_before_writing() -> None:
    api = FakeApi()
    with pytest.raises(errors.FleetError, match='namespace "other" not found'):
        d.deploy(api, spec(namespace="other"), wait=False)
    with pytest.raises(errors.FleetError, match='RuntimeClass "gvisor" not found'):
        d.deploy(api, spec(runtime_class="gvisor"), wait=False)
    assert api.writes == []


def test_dry_run_writes_nothing() -> None:
    api = FakeApi()
    result, objs = d.deploy(api, spec(), dry_run=True)
    assert len(objs) == 5 and result.dry_run
    assert api.persisted_writes() == []


def test_a_failed_apply_removes_what_it_created() -> None:
    api = FakeApi(fail_kind="HorizontalPodAutoscaler")
    before = set(api.objects)
    with pytest.raises(errors.FleetError) as exc:
        d.deploy(api, spec(), wait=False)
    assert "applying horizontalpodautoscaler.autoscaling/digits failed" in exc.value.message
    assert "removed again: service/digits, deployment.apps/digits" in exc.value.message
    assert set(api.objects) == before
    deletes = [p for m, p, _ in api.writes if m == "DELETE"]
    assert [p.rsplit("/", 2)[1] for p in deletes] == ["poddisruptionbudgets", "deployments",
                                                      "services"]


# ---- diagnosis -----------------------------------------------------------------------------

OBS = d.Observation(replicas=1, created=1, ready=0, available=False, last_event="")


def pod(status: dict) -> dict:
    return {"metadata": {"name": "digits-abc"}, "status": status}


def test_diagnose_pending_for_lack_of_gpus() -> None:
    msg = ("0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient "
           "nvidia.com/gpu. preemption: 0/4 nodes are available.")
    p = pod({"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": msg}]})
    text = d.diagnose([p], [], OBS)
    assert text.startswith("pod digits-abc is Pending for lack of nvidia.com/gpu (scheduler: 0/4")


def test_diagnose_image_pull_and_crash_loop() -> None:
    p = pod({"containerStatuses": [{"name": "server", "state": {"waiting": {
        "reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}}]})
    assert d.diagnose([p], [], OBS) == \
        'pod digits-abc container server is ImagePullBackOff: Back-off pulling image "x"'
    p = pod({"containerStatuses": [{"name": "server", "restartCount": 4,
                                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                    "lastState": {"terminated": {"exitCode": 1,
                                                                 "reason": "Error"}}}]})
    assert "CrashLoopBackOff: exited with code 1 (Error), restarted 4 times" in \
        d.diagnose([p], [], OBS)


def test_diagnose_names_the_failing_probe_and_its_message() -> None:
    ev = {"reason": "Unhealthy", "involvedObject": {"kind": "Pod", "name": "digits-abc"},
          "message": "Startup probe failed: HTTP probe failed with statuscode: 503"}
    assert d.diagnose([pod({"phase": "Running"})], [ev], OBS) == \
        "pod digits-abc: Startup probe failed: HTTP probe failed with statuscode: 503"


def test_diagnose_failed_create() -> None:
    ev = {"reason": "FailedCreate", "message": 'pods "x" is forbidden: exceeded quota'}
    obs = d.Observation(replicas=1, created=0, ready=0, available=False, last_event="")
    assert d.diagnose([], [ev], obs) == 'pods cannot be created: pods "x" is forbidden: ' \
        "exceeded quota"
