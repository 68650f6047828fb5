"""`fleet rollout` against the in-memory API: the JSON patch for each shape of Deployment
(env, labels, annotations present or absent), the model-version pin, the serving container
among sidecars, the resourceVersion test and the retry on a status-only change."""

from __future__ import annotations

import pytest

from fleet.errors import Conflict, FleetError
from fleet.kube import JSON_PATCH, deployment_path
from fleet.ops.rollout import default_change_cause, rollout, rollout_patch
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment

DEP = deployment_path("ns1", "resnet")
CAUSE = "kubernetes.io/change-cause"
VERSION = "app.kubernetes.io/version"


def _api(dep: dict | None = None) -> FakeApi:
    api = FakeApi()
    api.objects[DEP] = dep or deployment()
    return api


def _container(api: FakeApi, i: int = 0) -> dict:
    return api.objects[DEP]["spec"]["template"]["spec"]["containers"][i]


def test_the_patch_is_led_by_a_resource_version_test_and_records_the_cause():
    api = _api()
    res = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/2")
    path, content_type, ops, _ = api.patches[0]
    assert (path, content_type) == (DEP, JSON_PATCH)
    assert ops == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1234"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/env/0",
         "value": {"name": "MODEL_URI", "value": "hdfs:///models/m/2"}},
        {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause",
         "value": "fleet rollout resnet --model-uri=hdfs:///models/m/2"}]
    assert res.changed and res.resource_version == api.objects[DEP]["metadata"]["resourceVersion"]
    assert api.objects[DEP]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_a_deployment_without_annotations_gets_the_map():
    dep = deployment()
    del dep["metadata"]["annotations"]
    api = _api(dep)
    rollout(api, "ns1", "resnet", image="registry.local/serve:2", reason="v2")
    assert api.patches[0][2][-1] == {"op": "add", "path": "/metadata/annotations",
                                     "value": {CAUSE: "v2"}}
    assert api.objects[DEP]["metadata"]["annotations"] == {CAUSE: "v2"}


def test_a_container_without_env_gets_the_whole_list():
    dep = deployment()
    del dep["spec"]["template"]["spec"]["containers"][0]["env"]
    api = _api(dep)
    rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/2", model_version="7")
    assert api.patches[0][2][1] == {
        "op": "add", "path": "/spec/template/spec/containers/0/env",
        "value": [{"name": "MODEL_URI", "value": "hdfs:///models/m/2"},
                  {"name": "MODEL_VERSION", "value": "7"}]}
    assert _container(api)["env"] == [{"name": "MODEL_URI", "value": "hdfs:///models/m/2"},
                                      {"name": "MODEL_VERSION", "value": "7"}]


def test_model_version_is_appended_then_replaced_and_an_equal_value_is_no_change():
    api = _api()
    rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/1", model_version="4")
    assert api.patches[0][2][1:2] == [{"op": "add",
                                       "path": "/spec/template/spec/containers/0/env/-",
                                       "value": {"name": "MODEL_VERSION", "value": "4"}}]
    rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/1", model_version="5")
    assert api.patches[1][2][1:2] == [{"op": "replace",
                                       "path": "/spec/template/spec/containers/0/env/1",
                                       "value": {"name": "MODEL_VERSION", "value": "5"}}]
    assert _container(api)["env"] == [{"name": "MODEL_URI", "value": "hdfs:///models/m/1"},
                                      {"name": "MODEL_VERSION", "value": "5"}]
    same = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/1", model_version="5")
    assert not same.changed and same.message == "deployment.apps/resnet unchanged"
    assert same.revision == 3 and len(api.patches) == 2


def test_version_label_is_added_to_the_pod_template_labels():
    api = _api()
    res = rollout(api, "ns1", "resnet", image="registry.local/serve:2", version="2")
    assert {"op": "add", "path": "/spec/template/metadata/labels/app.kubernetes.io~1version",
            "value": "2"} in api.patches[0][2]
    assert api.objects[DEP]["spec"]["template"]["metadata"]["labels"][VERSION] == "2"
    assert res.message == "deployment.apps/resnet image updated"
    # the same version again and the same image: nothing to do
    again = rollout(api, "ns1", "resnet", image="registry.local/serve:2", version="2")
    assert not again.changed and len(api.patches) == 1


def test_version_alone_changes_only_the_label():
    dep = deployment()
    del dep["spec"]["template"]["metadata"]["labels"]
    ops, changed = rollout_patch(dep, model_uri="hdfs:///models/m/1", image=None, version="2",
                                 change_cause="c")
    assert changed == ["version"]
    assert ops == [{"op": "add", "path": "/spec/template/metadata/labels",
                    "value": {VERSION: "2"}},
                   {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause",
                    "value": "c"}]
    api = _api()
    res = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/1", version="2")
    assert res.changed and res.message == "deployment.apps/resnet version updated"
    ops, changed = rollout_patch(deployment(), model_uri=None, image=None, version=None,
                                 change_cause="c")
    assert (ops, changed) == ([], [])


def test_image_and_env_together():
    api = _api()
    res = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/2",
                  image="registry.local/serve:2")
    assert res.message == "deployment.apps/resnet image and env updated"
    assert _container(api)["image"] == "registry.local/serve:2"
    assert api.objects[DEP]["metadata"]["annotations"][CAUSE] == (
        "fleet rollout resnet --model-uri=hdfs:///models/m/2 --image=registry.local/serve:2")


def test_the_serving_container_is_patched_not_the_sidecar():
    dep = deployment()
    containers = dep["spec"]["template"]["spec"]["containers"]
    containers.insert(0, {"name": "proxy", "image": "envoy:1"})
    api = _api(dep)
    rollout(api, "ns1", "resnet", image="registry.local/serve:2")
    assert _container(api, 0)["image"] == "envoy:1"
    assert _container(api, 1)["image"] == "registry.local/serve:2"


def test_refusals_before_any_write():
    with pytest.raises(FleetError, match="one of --model-uri or --image is required"):
        rollout(_api(), "ns1", "resnet")
    dep = deployment()
    dep["spec"]["template"]["spec"]["containers"] = []
    api = _api(dep)
    with pytest.raises(FleetError, match=r"^deployment.apps/resnet has no containers$"):
        rollout(api, "ns1", "resnet", image="x:2")
    assert not api.patches


def test_a_status_only_change_is_retried_a_spec_change_is_not():
    api = _api()

    def status_writer(path: str) -> None:
        api.objects[path]["metadata"]["resourceVersion"] = api.next_rv()
        api.before_patch = None

    api.before_patch = status_writer
    res = rollout(api, "ns1", "resnet", image="registry.local/serve:2")
    assert res.changed and len(api.patches) == 2
    assert _container(api)["image"] == "registry.local/serve:2"

    api = _api()

    def spec_writer(path: str) -> None:
        obj = api.objects[path]
        obj["metadata"]["resourceVersion"] = api.next_rv()
        obj["metadata"]["generation"] += 1

    api.before_patch = spec_writer
    with pytest.raises(Conflict, match=r"\(generation 3 -> 4, resourceVersion 1234 -> 2001\); "
                       "nothing was rolled out"):
        rollout(api, "ns1", "resnet", image="registry.local/serve:2")
    assert _container(api)["image"] == "registry.local/serve:1"


def test_every_retry_racing_gives_up_after_max_attempts():
    api = _api()

    def status_writer(path: str) -> None:
        api.objects[path]["metadata"]["resourceVersion"] = api.next_rv()

    api.before_patch = status_writer
    with pytest.raises(Conflict):
        rollout(api, "ns1", "resnet", image="registry.local/serve:2")
    assert len(api.patches) == 3


def test_default_change_cause_quotes_like_a_shell():
    assert default_change_cause("m", "hdfs:///a b", None) == (
        "fleet rollout m '--model-uri=hdfs:///a b'")
    assert default_change_cause("m", None, "x:1") == "fleet rollout m --image=x:1"
