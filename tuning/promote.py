"""Guarded promotion: a candidate model replaces the live one only if it is measurably better.

1. Read the candidate's metadata (metric, direction, dataset version) and the Deployment's live
   model (serving container's MODEL_URI, pinned MODEL_VERSION or the largest version).
2. Score both on the candidate's dataset holdout with serving's runtime (`tuning.artifact.
   evaluate`): same data, same code path, so the comparison is fair.
3. Promote only if the candidate beats the live model by `min_delta` in the metric's direction
   (`force` skips the comparison; `bootstrap` is the explicit rule for "no live model yet").
4. Roll out MODEL_URI + MODEL_VERSION with a change-cause naming the source, guarded by the
   resourceVersion read in step 1: a concurrent promotion (or any change) makes this one lose
   cleanly, reporting what won. Nothing is half-changed: the rollout is one JSON patch.
5. Wait for the new pods; if they are not Ready in time, roll back to the previous revision
   and say so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fleet.derive import serving_container
from fleet.errors import Conflict, FleetError, Timeout
from fleet.model import CHANGE_CAUSE, MODEL_URI_ENV
from fleet.ops._common import get_deployment
from fleet.ops.rollback import rollback
from fleet.ops.rollout import MODEL_VERSION_ENV, rollout
from fleet.ops.status import rollout_status
from serving.store import Store, StoreError
from tuning.contract import HOLDOUT_FILE
from tuning.remote import Remote, split_version

Say = Callable[[str], None]


class PromotionError(FleetError):
    """The promotion cannot be judged or carried out; nothing was changed."""


@dataclass(frozen=True)
class Promotion:
    result: str  # promoted | kept | rolled-back | lost | bootstrapped
    detail: str
    deployment: str
    candidate_uri: str
    live_uri: str = ""
    metric: str = ""
    direction: str = "maximize"
    candidate_score: float | None = None
    live_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_model(dep: dict[str, Any]) -> tuple[str, int]:
    """(MODEL_URI, pinned MODEL_VERSION or 0 for "the largest") of the serving container."""
    container = serving_container((dep.get("spec") or {}).get("template") or {}) or {}
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    uri = env.get(MODEL_URI_ENV) or ""
    raw = env.get(MODEL_VERSION_ENV) or "0"
    return uri, int(raw) if str(raw).isdigit() else 0


def better(candidate: float, live: float, direction: str, min_delta: float) -> bool:
    gain = candidate - live if direction == "maximize" else live - candidate
    return gain > 0 and gain >= min_delta


def _score(base: str, version: int, holdout: Path, webhdfs_url: str, cache: Path
           ) -> tuple[int, float, dict[str, Any]]:
    from tuning import artifact

    got, local, meta = Store(base, webhdfs_url=webhdfs_url, cache_dir=str(cache)).fetch(version)
    return got, artifact.evaluate(local, holdout), meta


def _holdout(meta: dict[str, Any], uri: str, dest: Path, webhdfs_url: str) -> Path:
    dataset = ((meta.get("provenance") or {}).get("dataset") or {})
    data_uri = dataset.get("uri") if isinstance(dataset, dict) else None
    if not data_uri:
        raise PromotionError(f"{uri}: metadata names no dataset version, so it cannot be "
                             "judged on the same holdout as the live model (use --force to "
                             "skip the comparison)")
    try:
        Remote.open(data_uri, webhdfs_url).download(HOLDOUT_FILE, dest / HOLDOUT_FILE)
    except StoreError as exc:
        raise PromotionError(f"holdout of {data_uri} unreadable: {exc}") from exc
    return dest / HOLDOUT_FILE


def _cause(deployment: str, candidate_uri: str, source: str, verdict: str) -> str:
    text = f"fleet promote {deployment} --model-uri={candidate_uri}"
    if source:
        text += f" (source: {source})"
    return f"{text}: {verdict}"


def promote(client: Any, namespace: str, deployment: str, candidate_uri: str, *,
            min_delta: float = 0.0, bootstrap: bool = False, force: bool = False,
            source: str = "", timeout: float = 300.0, webhdfs_url: str = "",
            say: Say = lambda _t: None) -> Promotion:
    try:
        base, version = split_version(candidate_uri)
    except ValueError as exc:
        raise PromotionError(f"--model-uri {exc}") from None
    try:
        cand_meta = Store(base, webhdfs_url=webhdfs_url).read_metadata(version)
    except StoreError as exc:
        raise PromotionError(f"candidate artifact missing or unreadable: {exc}") from exc
    holdout_meta = cand_meta.get("holdout") or {}
    metric = str(holdout_meta.get("metric") or "accuracy")
    direction = str(holdout_meta.get("direction") or "maximize")
    if direction not in ("maximize", "minimize"):
        raise PromotionError(f"{candidate_uri}: metadata direction {direction!r} is neither "
                             "maximize nor minimize")
    dep = get_deployment(client, namespace, deployment)
    seen_rv = (dep.get("metadata") or {}).get("resourceVersion", "")
    live_base, live_version = live_model(dep)
    live_uri = f"{live_base}/{live_version}" if live_version else live_base
    if live_base.rstrip("/") == base.rstrip("/") and live_version == version:
        return Promotion("kept", f"{deployment} already serves {candidate_uri}", deployment,
                         candidate_uri, live_uri, metric, direction)
    cand_score = live_score = None
    with tempfile.TemporaryDirectory(prefix="promote-") as tmp:
        tmpd = Path(tmp)
        if force:
            verdict = "forced (champion comparison skipped)"
        else:
            holdout = _holdout(cand_meta, candidate_uri, tmpd, webhdfs_url)
            _, cand_score, _ = _score(base, version, holdout, webhdfs_url, tmpd / "cache")
            say(f"candidate {candidate_uri}: holdout {metric} {cand_score:.4f}")
            try:
                live_version, live_score, live_meta = _score(
                    live_base, live_version, holdout, webhdfs_url, tmpd / "cache")
                live_uri = f"{live_base}/{live_version}"
            except StoreError as exc:
                if not bootstrap:
                    raise PromotionError(
                        f"no live model to compare with ({exc}); promote the first model "
                        "explicitly with --bootstrap") from exc
                verdict = f"bootstrap (no live model: {exc.cause}); candidate {metric} " \
                          f"{cand_score:.4f}"
            else:
                live_metric = (live_meta.get("holdout") or {}).get("metric")
                if live_metric and live_metric != metric:
                    raise PromotionError(f"metric mismatch: the candidate is judged on "
                                         f"{metric!r}, the live model on {live_metric!r}")
                say(f"live {live_uri}: holdout {metric} {live_score:.4f}")
                gain = cand_score - live_score
                if not better(cand_score, live_score, direction, min_delta):
                    return Promotion(
                        "kept", f"candidate {metric} {cand_score:.4f} vs live "
                        f"{live_score:.4f} ({gain:+.4f}) is not better by min_delta "
                        f"{min_delta:g} ({direction}); {deployment} keeps {live_uri}",
                        deployment, candidate_uri, live_uri, metric, direction, cand_score,
                        live_score)
                verdict = f"holdout {metric} {cand_score:.4f} vs {live_score:.4f} " \
                          f"({gain:+.4f}, min_delta {min_delta:g})"
    cause = _cause(deployment, candidate_uri, source, verdict)
    try:
        rollout(client, namespace, deployment, model_uri=base, version=str(version),
                model_version=str(version), reason=cause, expected_resource_version=seen_rv)
    except Conflict as exc:
        now = get_deployment(client, namespace, deployment)
        now_uri, now_version = live_model(now)
        now_cause = ((now.get("metadata") or {}).get("annotations") or {}).get(CHANGE_CAUSE, "")
        return Promotion("lost", f"lost the race: {deployment} changed after it was judged "
                         f"({exc.message}); it now serves {now_uri}"
                         + (f"/{now_version}" if now_version else "")
                         + (f" ({now_cause})" if now_cause else ""),
                         deployment, candidate_uri, live_uri, metric, direction, cand_score,
                         live_score)
    say(f"rolling out {deployment} to {candidate_uri}: {verdict}")
    try:
        rollout_status(client, namespace, deployment, watch=True, timeout=timeout,
                       on_message=say)
    except Timeout:
        after = get_deployment(client, namespace, deployment)
        gen = (after.get("metadata") or {}).get("generation")
        rollback(client, namespace, deployment, expected_generation=gen)
        return Promotion("rolled-back", f"the new pods were not Ready within {timeout:.0f} s; "
                         f"rolled {deployment} back to {live_uri}", deployment, candidate_uri,
                         live_uri, metric, direction, cand_score, live_score)
    result = "bootstrapped" if verdict.startswith("bootstrap") else "promoted"
    return Promotion(result, f"{deployment} now serves {candidate_uri}: {verdict}", deployment,
                     candidate_uri, live_uri, metric, direction, cand_score, live_score)
