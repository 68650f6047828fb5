"""`fleet predict` without a cluster: example inputs round-trip through the model server's own
decoders, pod choice and its errors, port resolution, and port-forward error mapping."""

from __future__ import annotations

import orjson
import pytest
from websocket import WebSocketBadStatusException

from fleet import errors
from fleet.model import SERVER_PORT
from fleet.ops import predict as ops
from fleet.portforward import _api_error
from serving.protocols import tfserving, v2
from serving.runtime import Signature, TensorSpec

SIG = Signature(
    "serving_default",
    inputs={"image": TensorSpec("image", "float32", (-1, 8, 8, 1)),
            "ids": TensorSpec("ids", "int64", (-1, 3)),
            "mask": TensorSpec("mask", "bool", (-1,)),
            "text": TensorSpec("text", "string", (-1, 2))},
    outputs={"p": TensorSpec("p", "float32", (-1, 10))},
)
# serving's V2 decoder currently rejects every BYTES tensor ("expected string ..., got
# ndarray": it hands an object array to a list walker), so the V2 round trip leaves strings out.
SIG_V2 = Signature(SIG.name, {k: v for k, v in SIG.inputs.items() if v.dtype != "string"},
                   SIG.outputs)
ONE = Signature("serving_default", inputs={"x": TensorSpec("x", "float32", (-1, 4))},
                outputs={"y": TensorSpec("y", "float32", (-1, 1))})


@pytest.mark.parametrize("sig", [SIG, ONE], ids=["four-inputs", "one-input"])
def test_v1_example_is_accepted_by_the_tf_serving_decoder(sig: Signature) -> None:
    meta = orjson.loads(orjson.dumps(tfserving.metadata_body("m", 1, {sig.name: sig})))
    body = ops.example_v1(meta)
    req, fmt = tfserving.decode_predict(orjson.dumps(body), {sig.name: sig}, "serving_default",
                                        max_batch=8, allow_nonfinite=False)
    assert req.batch == 1
    assert fmt == ("row" if len(sig.inputs) == 1 else "columnar")
    assert set(req.inputs) == set(sig.inputs)
    for name, spec in sig.inputs.items():
        assert req.inputs[name].shape == (1, *spec.shape[1:])


@pytest.mark.parametrize("sig", [SIG_V2, ONE], ids=["three-inputs", "one-input"])
def test_v2_example_is_accepted_by_the_open_inference_decoder(sig: Signature) -> None:
    meta = orjson.loads(orjson.dumps(v2.metadata_body("m", 1, "tensorflow_savedmodel", sig)))
    body = ops.example_v2(meta)
    req = v2.decode_infer(orjson.dumps(body), sig, max_batch=8, allow_nonfinite=False,
                          n_labels=0)
    assert req.batch == 1
    for name, spec in sig.inputs.items():
        assert req.inputs[name].shape == (1, *spec.shape[1:])
    assert [t["name"] for t in body["inputs"]] == list(sig.inputs)


def test_examples_fill_variable_dims_and_pick_the_signature() -> None:
    meta = {"metadata": {"signature_def": {"signature_def": {
        "other": {"inputs": {"a": {"dtype": "DT_INT32", "tensor_shape": {"dim": [{"size": "2"}]}}}},
        "serving_default": {"inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": {
            "dim": [{"size": "-1"}, {"size": "-1"}, {"size": "2"}]}}}},
    }}}}
    assert ops.example_v1(meta) == {"signature_name": "serving_default",
                                    "instances": [[[0.0, 0.0]]]}
    assert ops.example_v2({"inputs": [{"name": "t", "datatype": "INT8", "shape": [-1, 3]}]}) == {
        "inputs": [{"name": "t", "shape": [1, 3], "datatype": "INT8", "data": [0, 0, 0]}]}


def test_examples_refuse_metadata_they_cannot_fill() -> None:
    with pytest.raises(errors.FleetError, match="no signature_def"):
        ops.example_v1({"model_spec": {}})
    with pytest.raises(errors.FleetError, match="no inputs"):
        ops.example_v2({"name": "m", "inputs": []})
    with pytest.raises(errors.FleetError, match="DT_RESOURCE"):
        ops.example_v1({"metadata": {"signature_def": {"signature_def": {"s": {"inputs": {
            "r": {"dtype": "DT_RESOURCE", "tensor_shape": {"dim": []}}}}}}}})


def _pod(name: str, *, ready: bool, phase: str = "Running", waiting: str = "",
         created: str = "2026-01-01T00:00:00Z", sched: bool = True) -> dict:
    conds = [{"type": "PodScheduled", "status": "True" if sched else "False",
              **({} if sched else {"reason": "Unschedulable"})},
             {"type": "Ready", "status": "True" if ready else "False",
              **({} if ready else {"reason": "ContainersNotReady"})}]
    cs = [{"name": "server", "state": {"waiting": {"reason": waiting}} if waiting
           else {"running": {}}}]
    return {"metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "server"}]},
            "status": {"phase": phase, "conditions": conds, "containerStatuses": cs}}


class FakeClient:
    def __init__(self, pods: list[dict], replicas: int = 2) -> None:
        self.pods = pods
        self.dep = {"metadata": {"name": "m", "namespace": "ns"},
                    "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "m"}}}}
        self.queries: list = []

    def get(self, path: str, query=None) -> dict:
        assert path == "/apis/apps/v1/namespaces/ns/deployments/m"
        return self.dep

    def list_all(self, path: str, query=None) -> dict:
        self.queries.append((path, query))
        return {"items": self.pods}


def test_choose_pod_takes_the_oldest_ready_pod_by_the_deployment_selector() -> None:
    c = FakeClient([_pod("b", ready=True, created="2026-01-02T00:00:00Z"),
                    _pod("a", ready=False), _pod("c", ready=True)])
    _dep, p = ops.choose_pod(c, "ns", "m")
    assert p["metadata"]["name"] == "c"
    assert c.queries == [("/api/v1/namespaces/ns/pods", {"labelSelector": "app=m"})]
    assert ops.choose_pod(c, "ns", "m", "a")[1]["metadata"]["name"] == "a"  # --pod wins
    with pytest.raises(errors.NotFound, match='pod "zz" is not a pod of deployment "m"'):
        ops.choose_pod(c, "ns", "m", "zz")


def test_no_ready_pod_says_how_many_and_why() -> None:
    c = FakeClient([_pod("a", ready=False, phase="Pending", waiting="ImagePullBackOff"),
                    _pod("b", ready=False),
                    _pod("c", ready=False, phase="Pending", sched=False)])
    with pytest.raises(errors.FleetError) as exc:
        ops.choose_pod(c, "ns", "m")
    assert exc.value.message == (
        'no Ready pod for deployment "m" in namespace "ns": 3 pods, none Ready: '
        "a (Pending: container server ImagePullBackOff); b (Running, not ready: "
        "ContainersNotReady); c (Pending: Unschedulable)")
    with pytest.raises(errors.FleetError, match=r"it has no pods \(spec.replicas=0\)"):
        ops.choose_pod(FakeClient([], replicas=0), "ns", "m")


def test_serving_port_follows_the_readiness_probe_then_names() -> None:
    c = {"name": "s", "ports": [{"name": "metrics", "containerPort": 9090},
                                {"name": "http", "containerPort": 8501}],
         "readinessProbe": {"httpGet": {"path": "/", "port": "metrics"}}}
    assert ops.serving_port(c) == 9090
    assert ops.serving_port({**c, "readinessProbe": None}) == 8501
    assert ops.serving_port({"name": "s"}) == SERVER_PORT
    with pytest.raises(errors.FleetError, match='no port named "grpc"'):
        ops.resolve_port(c, "grpc")


def _handshake(status: int, body: bytes) -> Exception:
    """What kubernetes.stream.portforward raises: ApiException(status=0) from the ws error."""
    from kubernetes.client.exceptions import ApiException

    try:
        try:
            raise WebSocketBadStatusException("Handshake status %d %s -+-+- %s -+-+- %s",
                                              status, "Forbidden", {}, body)
        except WebSocketBadStatusException as inner:
            raise ApiException(status=0, reason=str(inner))  # noqa: B904 (as the package does)
    except ApiException as exc:
        return exc


def test_port_forward_403_names_the_rbac_resource() -> None:
    status = {"kind": "Status", "reason": "Forbidden", "message":
              'pods "p" is forbidden: User "u" cannot create resource "pods/portforward" in API '
              'group "" in the namespace "ns"'}
    err = _api_error(_handshake(403, orjson.dumps(status)), "ns", "p")
    assert isinstance(err, errors.Forbidden)
    assert err.message.startswith('Error from server (Forbidden): pods "p" is forbidden')
    assert "pods/portforward in namespace ns" in err.message
    err = _api_error(_handshake(404, b'{"kind":"Status","reason":"NotFound","message":'
                                     b'"pods \\"p\\" not found"}'), "ns", "p")
    assert isinstance(err, errors.NotFound) and 'pods "p" not found' in err.message
    err = _api_error(RuntimeError("connection refused"), "ns", "p")
    assert isinstance(err, errors.Unreachable) and "connection refused" in err.message
