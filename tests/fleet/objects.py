"""Real-shaped API JSON (as kube-apiserver 1.37 serializes it) for unit tests."""

from __future__ import annotations

import copy
from typing import Any

DEP_UID = "5f1c2d3e-0000-4000-8000-000000000001"


def template(image: str = "registry.local/serve:1", uri: str = "hdfs:///models/m/1",
             extra_labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "m", "app.kubernetes.io/component": "model-server",
                                "app.kubernetes.io/name": "resnet", **(extra_labels or {})}},
        "spec": {
            "containers": [{
                "name": "server",
                "image": image,
                "env": [{"name": "MODEL_URI", "value": uri}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "readinessProbe": {
                    "httpGet": {"path": "/v2/health/ready", "port": 8080, "scheme": "HTTP"},
                    "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


def deployment(name: str = "resnet", *, revision: int | None = 3, tmpl: dict | None = None,
               paused: bool = False, replicas: int = 2, status: dict | None = None,
               annotations: dict[str, str] | None = None, generation: int = 3) -> dict[str, Any]:
    ann = dict(annotations or {})
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "m"}},
        "template": copy.deepcopy(tmpl or template()),
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    if paused:
        spec["paused"] = True
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name, "namespace": "ns1", "uid": DEP_UID, "resourceVersion": "1234",
            "generation": generation, "creationTimestamp": "2026-11-27T01:00:00Z",
            "labels": {"app.kubernetes.io/component": "model-server",
                       "app.kubernetes.io/name": "resnet", "app.kubernetes.io/version": "1"},
            "annotations": ann,
        },
        "spec": spec,
        "status": status if status is not None else {
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


def replicaset(name: str, revision: int | str | None, tmpl: dict, *, created: str,
               owner_uid: str = DEP_UID, annotations: dict[str, str] | None = None,
               replicas: int = 0) -> dict[str, Any]:
    t = copy.deepcopy(tmpl)
    t["metadata"]["labels"]["pod-template-hash"] = name.rsplit("-", 1)[-1]
    ann = dict(annotations or {})
    if revision is not None:
        ann["deployment.kubernetes.io/revision"] = str(revision)
    ann.setdefault("deployment.kubernetes.io/desired-replicas", "2")
    ann.setdefault("deployment.kubernetes.io/max-replicas", "3")
    return {
        "metadata": {
            "name": name, "namespace": "ns1", "uid": f"rs-{name}", "creationTimestamp": created,
            "labels": dict(t["metadata"]["labels"]), "annotations": ann,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "resnet",
                                 "uid": owner_uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "m"}}, "template": t},
        "status": {"replicas": replicas},
    }


def pod(name: str, rs: str, *, ready: bool = True, phase: str = "Running",
        waiting: str | None = None, restarts: int = 0, last_terminated: dict | None = None,
        uid: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "2026-11-27T01:01:00Z"}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "back-off 10s restarting failed"}}
    cs: dict[str, Any] = {"name": "server", "ready": ready, "started": waiting is None,
                          "restartCount": restarts, "state": state, "image": "x", "imageID": ""}
    if last_terminated:
        cs["lastState"] = {"terminated": last_terminated}
    cond = "True" if ready else "False"
    return {
        "metadata": {
            "name": name, "namespace": "ns1", "uid": uid or f"uid-{name}",
            "creationTimestamp": "2026-11-27T01:00:30Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": f"rs-{rs}", "controller": True}],
        },
        "spec": {"nodeName": "node-0"},
        "status": {
            "phase": phase, "podIP": "127.1.0.5",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": cond,
                 **({} if ready else {"reason": "ContainersNotReady"})},
                {"type": "ContainersReady", "status": cond},
                {"type": "PodScheduled", "status": "True"},
            ],
            "containerStatuses": [cs],
        },
    }


def event(name: str, pod_name: str, reason: str, message: str, *, last: str,
          etype: str = "Warning", count: int = 1, uid: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns1", "creationTimestamp": last},
        "involvedObject": {"kind": "Pod", "namespace": "ns1", "name": pod_name,
                           "uid": uid or f"uid-{pod_name}", "apiVersion": "v1",
                           "fieldPath": "spec.containers{server}"},
        "reason": reason, "message": message, "type": etype, "count": count,
        "firstTimestamp": last, "lastTimestamp": last,
        "source": {"component": "kubelet", "host": "node-0"},
    }


def history_set() -> tuple[dict, list[dict]]:
    """A Deployment at revision 3 (template v3) with RSes for revisions 1, 2, 3."""
    t1, t2, t3 = (template(image=f"registry.local/serve:{i}") for i in (1, 2, 3))
    rss = [
        replicaset("resnet-aaa1", 1, t1, created="2026-11-27T01:00:00Z",
                   annotations={"kubernetes.io/change-cause": "initial"}),
        replicaset("resnet-bbb2", 2, t2, created="2026-11-27T01:05:00Z"),
        replicaset("resnet-ccc3", 3, t3, created="2026-11-27T01:10:00Z", replicas=2,
                   annotations={"kubernetes.io/change-cause": "bump to 3", "team": "ml"}),
    ]
    dep = deployment(tmpl=t3, annotations={"kubernetes.io/change-cause": "bump to 3",
                                           "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                           "dep-only": "x"})
    return dep, rss
