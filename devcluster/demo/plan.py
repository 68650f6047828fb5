"""The demo fleet, decided up front and deterministically (pure, no API calls).

Each `DeploymentPlan` lists the revisions to create in order; the last revision of a few
deployments carries a `fleet.test/sim` label so that kwok makes its pods unready or crash
looping, which (with a short progress deadline) also yields stalled rollouts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

TEAMS = ("team-nlp", "team-vision", "team-recsys", "team-search", "team-speech", "team-ads")
MODELS = (
    "bert-ranker", "t5-summarizer", "resnet-classifier", "clip-embedder", "two-tower-retrieval",
    "wide-deep-ctr", "whisper-asr", "llama-chat", "sentence-encoder", "yolo-detector",
    "xgb-fraud", "dlrm-ads", "gpt-tagger", "vit-moderation", "tacotron-tts",
)
VARIANTS = ("prod", "canary", "shadow", "eu", "us", "batch", "edge", "staging")
IMAGE_TAGS = ("1.4.0", "1.4.2", "1.5.0", "1.5.1")
SEED_LABEL = "devcluster.demo/seed"
SEEDED_ANNOTATION = "devcluster.demo/seeded-revisions"


@dataclass(frozen=True)
class RevisionPlan:
    version: str
    model_uri: str
    image: str
    change_cause: str
    sim: str = ""  # "", "unready" or "crashloop"


@dataclass(frozen=True)
class DeploymentPlan:
    namespace: str
    name: str
    model: str
    replicas: int
    revisions: tuple[RevisionPlan, ...]
    progress_deadline: int = 600
    trouble: str = ""  # "", "stalled", "unready", "crashloop"


@dataclass(frozen=True)
class JobPlan:
    namespace: str
    name: str
    kind: str  # training | sweep-worker
    gpus: int  # per pod
    parallelism: int = 1
    complete_after: str = ""  # "" = runs until deleted
    fail: bool = False


@dataclass
class FleetPlan:
    deployments: list[DeploymentPlan] = field(default_factory=list)
    jobs: list[JobPlan] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        return sorted({d.namespace for d in self.deployments} | {j.namespace for j in self.jobs})

    @property
    def revision_count(self) -> int:
        return sum(len(d.revisions) for d in self.deployments)


def _revisions(
    rng: random.Random, model: str, count: int, trouble: str
) -> tuple[RevisionPlan, ...]:
    major = rng.randint(1, 4)
    revs = []
    for r in range(count):
        version = f"v{major}.{r}.{rng.randint(0, 9)}"
        revs.append(RevisionPlan(
            version=version,
            model_uri=f"hdfs://hdfs.fleet.local:8020/models/{model}/{version}",
            image=f"registry.fleet.local/modelfleet/serving:{IMAGE_TAGS[min(r, 3)]}",
            change_cause=f"roll out {model} {version}" if r else f"initial release {version}",
        ))
    if trouble:
        sim = {"stalled": "unready", "unready": "unready", "crashloop": "crashloop"}[trouble]
        last = revs[-1]
        revs[-1] = RevisionPlan(last.version, last.model_uri, last.image,
                                last.change_cause + " (bad build)", sim)
    return tuple(revs)


def demo_plan(deployments: int = 300, *, stalled: int = 4, unready: int = 4, crashloop: int = 3,
              revisions: tuple[int, int] = (2, 4), jobs: bool = True, seed: int = 7,
              namespaces: tuple[str, ...] = TEAMS) -> FleetPlan:
    """About `deployments` model servers over the team namespaces, plus training jobs.

    `namespaces` replaces the team namespaces (tests use their own)."""
    rng = random.Random(seed)
    plan = FleetPlan()
    names: set[tuple[str, str]] = set()
    troubles = ["stalled"] * stalled + ["unready"] * unready + ["crashloop"] * crashloop
    trouble_at = dict(zip(rng.sample(range(deployments), min(len(troubles), deployments)),
                          troubles, strict=False))
    i = 0
    while len(plan.deployments) < deployments:
        ns = namespaces[i % len(namespaces)]
        model = MODELS[(i // len(namespaces)) % len(MODELS)]
        variant = VARIANTS[(i // (len(namespaces) * len(MODELS))) % len(VARIANTS)]
        cycle = i // (len(namespaces) * len(MODELS) * len(VARIANTS))
        name = f"{model}-{variant}" + (f"-{cycle}" if cycle else "")
        i += 1
        if (ns, name) in names:
            continue
        names.add((ns, name))
        idx = len(plan.deployments)
        trouble = trouble_at.get(idx, "")
        count = rng.randint(*revisions)
        plan.deployments.append(DeploymentPlan(
            namespace=ns, name=name, model=model, replicas=rng.randint(1, 3),
            revisions=_revisions(rng, model, count, trouble),
            progress_deadline=20 if trouble == "stalled" else 600, trouble=trouble,
        ))
    if jobs:
        plan.jobs = _job_plans(namespaces)
    return plan


def _job_plans(namespaces: tuple[str, ...]) -> list[JobPlan]:
    """Training jobs: 4+4 GPUs held (the demo cluster has 8), 2+4+8 more that stay Pending."""

    def ns(team: str) -> str:
        return team if namespaces == TEAMS else namespaces[TEAMS.index(team) % len(namespaces)]

    return [
        JobPlan(ns("team-nlp"), "llama-finetune-a", "training", gpus=4),
        JobPlan(ns("team-vision"), "clip-pretrain", "training", gpus=4),
        JobPlan(ns("team-recsys"), "dlrm-retrain", "training", gpus=4),
        JobPlan(ns("team-speech"), "whisper-distill", "training", gpus=2),
        JobPlan(ns("team-nlp"), "llama-sweep-big", "sweep-worker", gpus=8),
        *[JobPlan(ns("team-search"), f"ranker-sweep-{k}", "sweep-worker", gpus=0,
                  complete_after=f"{30 + 20 * k}s") for k in range(6)],
        *[JobPlan(ns("team-ads"), f"ctr-nightly-{k}", "training", gpus=0, complete_after="5s")
          for k in range(3)],
        JobPlan(ns("team-ads"), "ctr-backfill", "training", gpus=0, complete_after="10s",
                fail=True),
    ]
