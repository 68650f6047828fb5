"""Real-shaped LIST bodies (as kube-apiserver 1.37 returns them, managedFields included) for
N model Deployments with their ReplicaSets and pods, M training Jobs with pods, and events."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import orjson

TS = "2026-11-27T01:00:00Z"


def _mf(manager: str, op: str, sub: str | None = None) -> dict[str, Any]:
    entry = {"manager": manager, "operation": op, "apiVersion": "apps/v1", "time": TS,
             "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:x": {}}, "f:labels": {
                 ".": {}, "f:app": {}, "f:app.kubernetes.io/component": {}}},
                 "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                     'k:{"name":"server"}': {".": {}, "f:image": {}, "f:env": {}}}}}}}}
    if sub:
        entry["subresource"] = sub
    return entry


def _template(name: str, v: int) -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": None, "labels": {
            "app": name, "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/name": name}},
        "spec": {"containers": [{
            "name": "server", "image": f"registry.invalid/serve:{v}",
            "env": [{"name": "MODEL_URI", "value": f"hdfs:///models/{name}/{v}"},
                    {"name": "OMP_NUM_THREADS", "value": "4"}],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            "resources": {"limits": {"cpu": "2", "memory": "4Gi"},
                          "requests": {"cpu": "1", "memory": "2Gi"}},
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080,
                                           "scheme": "HTTP"}, "timeoutSeconds": 1,
                               "periodSeconds": 5, "successThreshold": 1,
                               "failureThreshold": 3},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3,
                              "timeoutSeconds": 1, "periodSeconds": 10,
                              "successThreshold": 1, "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "securityContext": {},
            "schedulerName": "default-scheduler"},
    }


def build(deployments: int = 1000, jobs: int = 500, pods_per_deployment: int = 2,
          ns_count: int = 10) -> dict[str, bytes]:
    """{plural: LIST body bytes} for deployments, replicasets, pods, jobs, events."""
    deps, rss, pods, jbs, evs = [], [], [], [], []
    rv = 1000
    for i in range(deployments):
        ns, name = f"team-{i % ns_count}", f"model-{i:04d}"
        duid = str(uuid.UUID(int=i + 1))
        rv += 1
        t = _template(name, 2)
        deps.append({
            "metadata": {"name": name, "namespace": ns, "uid": duid, "resourceVersion": str(rv),
                         "generation": 2, "creationTimestamp": TS,
                         "labels": {"app.kubernetes.io/component": "model-server",
                                    "app.kubernetes.io/name": name,
                                    "app.kubernetes.io/version": "2"},
                         "annotations": {"deployment.kubernetes.io/revision": "2",
                                         "kubernetes.io/change-cause": "release 2"},
                         "managedFields": [_mf("kubectl-client-side-apply", "Update"),
                                           _mf("kube-controller-manager", "Update"),
                                           _mf("kube-controller-manager", "Update", "status")]},
            "spec": {"replicas": pods_per_deployment, "selector": {"matchLabels": {"app": name}},
                     "template": t, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
                         "maxUnavailable": "25%", "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": 2, "replicas": pods_per_deployment,
                       "updatedReplicas": pods_per_deployment,
                       "readyReplicas": pods_per_deployment,
                       "availableReplicas": pods_per_deployment, "conditions": [
                           {"type": "Available", "status": "True", "lastUpdateTime": TS,
                            "lastTransitionTime": TS, "reason": "MinimumReplicasAvailable",
                            "message": "Deployment has minimum availability."},
                           {"type": "Progressing", "status": "True", "lastUpdateTime": TS,
                            "lastTransitionTime": TS, "reason": "NewReplicaSetAvailable",
                            "message": f'ReplicaSet "{name}-b" has successfully progressed.'}]},
        })
        for rev, suffix in ((1, "a"), (2, "b")):
            rt = copy.deepcopy(_template(name, rev))
            rt["metadata"]["labels"]["pod-template-hash"] = suffix
            rs_name = f"{name}-{suffix}"
            replicas = pods_per_deployment if rev == 2 else 0
            rss.append({
                "metadata": {"name": rs_name, "namespace": ns, "uid": f"{duid}-{suffix}",
                             "resourceVersion": str(rv), "generation": 1,
                             "creationTimestamp": TS, "labels": rt["metadata"]["labels"],
                             "annotations": {"deployment.kubernetes.io/revision": str(rev),
                                             "deployment.kubernetes.io/desired-replicas": "2",
                                             "deployment.kubernetes.io/max-replicas": "3"},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                  "name": name, "uid": duid, "controller": True,
                                                  "blockOwnerDeletion": True}],
                             "managedFields": [_mf("kube-controller-manager", "Update")]},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "template": rt},
                "status": {"replicas": replicas, "fullyLabeledReplicas": replicas,
                           "readyReplicas": replicas, "availableReplicas": replicas,
                           "observedGeneration": 1},
            })
        for p in range(pods_per_deployment):
            pods.append(_pod(ns, f"{name}-b-{p:05d}", f"{name}-b", "ReplicaSet",
                             _template(name, 2)["spec"], p))
    for j in range(jobs):
        ns, name = f"team-{j % ns_count}", f"train-{j:04d}"
        spec = {"containers": [{"name": "trainer", "image": "registry.invalid/train:1",
                                "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                "restartPolicy": "Never"}
        jbs.append({
            "metadata": {"name": name, "namespace": ns, "uid": f"job-{j}",
                         "resourceVersion": str(rv), "creationTimestamp": TS, "generation": 1,
                         "labels": {"app.kubernetes.io/component": "sweep-worker"}},
            "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6,
                     "template": {"metadata": {}, "spec": spec}},
            "status": {"active": 1, "startTime": TS, "ready": 1, "terminating": 0},
        })
        pods.append(_pod(ns, f"{name}-x", name, "Job", spec, j))
    for e in range(2000):
        p = pods[e % len(pods)]
        evs.append({
            "metadata": {"name": f"{p['metadata']['name']}.{e:x}", "namespace":
                         p["metadata"]["namespace"], "resourceVersion": str(rv),
                         "creationTimestamp": TS},
            "involvedObject": {"kind": "Pod", "namespace": p["metadata"]["namespace"],
                               "name": p["metadata"]["name"], "uid": p["metadata"]["uid"],
                               "apiVersion": "v1", "fieldPath": "spec.containers{server}"},
            "reason": "Unhealthy", "message": "Readiness probe failed: HTTP probe failed with "
            "statuscode: 503", "type": "Warning", "count": 3, "firstTimestamp": TS,
            "lastTimestamp": TS, "source": {"component": "kubelet", "host": "node-0"},
            "reportingComponent": "kubelet", "reportingInstance": "node-0",
        })

    def body(kind: str, items: list) -> bytes:
        return orjson.dumps({"kind": kind, "apiVersion": "v1",
                             "metadata": {"resourceVersion": str(rv)}, "items": items})

    return {"deployments": body("DeploymentList", deps), "replicasets": body("ReplicaSetList", rss),
            "pods": body("PodList", pods), "jobs": body("JobList", jbs),
            "events": body("EventList", evs)}


def _pod(ns: str, name: str, owner: str, kind: str, spec: dict, i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns, "uid": f"pod-{ns}-{name}",
                     "resourceVersion": "1", "creationTimestamp": TS,
                     "labels": {"app": owner}, "ownerReferences": [{
                         "apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "x",
                         "controller": True, "blockOwnerDeletion": True}],
                     "managedFields": [_mf("kube-controller-manager", "Update"),
                                       _mf("kwok", "Update", "status")]},
        "spec": {**spec, "nodeName": f"node-{i % 3}", "serviceAccountName": "default",
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Running", "hostIP": "127.0.0.1", "podIP": f"127.1.{i % 250}.{i % 200}",
                   "startTime": TS, "qosClass": "Burstable", "conditions": [
                       {"type": t, "status": "True", "lastTransitionTime": TS}
                       for t in ("PodReadyToStartContainers", "Initialized", "Ready",
                                 "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": c["name"], "ready": True, "started": True,
                                          "restartCount": 0, "image": c["image"], "imageID": "",
                                          "state": {"running": {"startedAt": TS}}}
                                         for c in spec["containers"]]},
    }
