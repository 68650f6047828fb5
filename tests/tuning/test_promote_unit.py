"""Promotion's decision rule and live-model lookup (the cluster tests do the rest)."""

from __future__ import annotations

import pytest

from tuning import promote, remote


@pytest.mark.parametrize("cand, live, direction, delta, expected", [
    (0.97, 0.95, "maximize", 0.0, True),
    (0.95, 0.95, "maximize", 0.0, False),  # equal is not better
    (0.96, 0.95, "maximize", 0.02, False),  # better, but not by min_delta
    (0.97, 0.95, "maximize", 0.02, True),
    (0.90, 0.95, "maximize", 0.0, False),
    (0.10, 0.20, "minimize", 0.05, True),  # a loss going down
    (0.20, 0.10, "minimize", 0.0, False),
])
def test_better_respects_direction_and_min_delta(cand, live, direction, delta, expected) -> None:
    assert promote.better(cand, live, direction, delta) is expected


def _dep(env: list[dict], first: str = "server") -> dict:
    containers = [{"name": "istio-proxy", "image": "istio/proxyv2"},
                  {"name": first, "image": "modelfleet/model-server", "env": env,
                   "ports": [{"containerPort": 8080}]}]
    return {"spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": containers}}}}


def test_live_model_reads_the_serving_container_not_a_sidecar() -> None:
    dep = _dep([{"name": "MODEL_URI", "value": "hdfs://nn/models/d"},
                {"name": "MODEL_VERSION", "value": "3"}])
    assert promote.live_model(dep) == ("hdfs://nn/models/d", 3)
    assert promote.live_model(_dep([{"name": "MODEL_URI", "value": "/m"}])) == ("/m", 0)


def test_split_version() -> None:
    assert remote.split_version("hdfs://nn:8020/models/d/12/") == ("hdfs://nn:8020/models/d", 12)
    for bad in ("hdfs://nn/models/d", "/m/0", "3"):
        with pytest.raises(ValueError, match="version number"):
            remote.split_version(bad)


def test_a_candidate_uri_without_version_is_refused_before_any_api_call() -> None:
    class NoCalls:
        def __getattr__(self, name):
            raise AssertionError(f"unexpected API call {name}")

    with pytest.raises(promote.PromotionError, match="does not end in a version number"):
        promote.promote(NoCalls(), "ml", "d", "hdfs://nn/models/d")
