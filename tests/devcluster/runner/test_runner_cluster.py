"""The process kubelet against the real control plane: pods that really run.

Each test creates pods of RuntimeClass `fleet-local` in its own namespace; the scheduler
places them on the runner node and the runner starts them as host processes.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devcluster.cluster import processes
from tests.devcluster.runner.runnerkit import (
    condition,
    container_status,
    create,
    descendants,
    events,
    get_pod,
    pod,
    python_container,
    ready,
    wait_event,
    wait_gone,
    wait_pod,
)
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster

# A tiny HTTP server on the pod IP: /healthz answers 200 until /fail was requested once.
PROBED_SERVER = """
import http.server, os
broken = False
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global broken
        if self.path == "/fail":
            broken = True
        code = 500 if broken and self.path == "/healthz" else 200
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
print("serving on", os.environ["POD_IP"], flush=True)
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""
POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


def probe(path: str, period: int = 1, failure: int = 2, **extra: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,
            "failureThreshold": failure, **extra}


def test_probes_conditions_events_and_liveness_restart(cluster: TestCluster,
                                                       namespace: str) -> None:
    c = python_container("web", PROBED_SERVER, env=POD_IP_ENV,
                         ports=[{"name": "http", "containerPort": 8080}],
                         startupProbe=probe("/healthz", failure=30),
                         readinessProbe=probe("/healthz"),
                         livenessProbe=probe("/healthz", failure=2))
    create(cluster, namespace, pod("web", [c]))
    p = wait_pod(cluster, namespace, "web", ready, what="Ready")
    st = container_status(p)
    assert st["started"] is True and st["ready"] is True and st["restartCount"] == 0
    node = cluster.get_json("node", "local-0")
    assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(
        node["spec"]["podCIDR"])
    assert ipaddress.ip_network(node["spec"]["podCIDR"]).subnet_of(
        ipaddress.ip_network("127.1.128.0/17"))
    assert p["status"]["phase"] == "Running"
    for type_ in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready",
                  "PodScheduled"):
        assert condition(p, type_)["status"] == "True", type_
    reasons = [e["reason"] for e in events(cluster, namespace, "web")]
    for r in ("Scheduled", "Created", "Started"):
        assert r in reasons
    started = next(e for e in events(cluster, namespace, "web") if e["reason"] == "Started")
    assert started["source"] == {"component": "kubelet", "host": "local-0"}
    assert started["involvedObject"]["fieldPath"] == "spec.containers{web}"

    # Break liveness: the kubelet's wording, then a restart with lastState from the kill.
    ip = p["status"]["podIP"]
    assert httpx.get(f"http://{ip}:8080/fail", timeout=10, trust_env=False).text == "ok"
    ev = wait_event(cluster, namespace, "web", "Unhealthy", "Liveness probe failed")
    assert ev["message"] == "Liveness probe failed: HTTP probe failed with statuscode: 500"
    assert ev["type"] == "Warning"
    assert ev["source"] == {"component": "kubelet", "host": "local-0"}
    kill = wait_event(cluster, namespace, "web", "Killing")
    assert kill["message"] == "Container web failed liveness probe, will be restarted"
    p = wait_pod(cluster, namespace, "web",
                 lambda p: container_status(p).get("restartCount") == 1 and ready(p),
                 what="restarted and Ready again")
    last = container_status(p)["lastState"]["terminated"]
    assert last["reason"] == "Error" and last["exitCode"] == 143  # SIGTERM, as a runtime reports
    # The unready window while broken is visible as a readiness failure event too.
    assert any(e["message"].startswith("Readiness probe failed: HTTP probe failed with "
                                       "statuscode: 500") for e in events(cluster, namespace,
                                                                           "web"))


def test_crash_loop_back_off_like_the_kubelet(cluster: TestCluster, namespace: str) -> None:
    c = python_container("crash", "import sys; print('boom', flush=True); sys.exit(2)")
    create(cluster, namespace, pod("crash", [c]))
    p = wait_pod(cluster, namespace, "crash",
                 lambda p: (container_status(p).get("state", {}).get("waiting", {})
                            .get("reason") == "CrashLoopBackOff"), what="CrashLoopBackOff")
    st = container_status(p)
    assert st["lastState"]["terminated"]["exitCode"] == 2
    assert st["lastState"]["terminated"]["reason"] == "Error"
    uid = p["metadata"]["uid"]
    assert re.fullmatch(rf"back-off (10|20)s restarting failed container=crash "
                        rf"pod=crash_{namespace}\({uid}\)", st["state"]["waiting"]["message"])
    ev = wait_event(cluster, namespace, "crash", "BackOff")
    assert ev["message"] == (f"Back-off restarting failed container crash in pod "
                             f"crash_{namespace}({uid})")
    first = st["restartCount"]
    t0 = time.monotonic()
    wait_pod(cluster, namespace, "crash",
             lambda p: container_status(p).get("restartCount", 0) > first, timeout=45,
             what="the next restart")
    waited = time.monotonic() - t0
    assert waited <= 21.5 + 2, f"restart after {waited:.1f}s, beyond the back-off"
    out = cluster.kubectl_run("logs", "crash", "-n", namespace, "--previous")
    assert out.stdout == "boom\n"


def test_memory_limit_is_enforced_as_oom_killed(cluster: TestCluster, namespace: str) -> None:
    caps = cluster.local.runner_capabilities()
    if "memory" not in caps.get("limits", "") or "not enforced" in caps.get("limits", ""):
        pytest.skip(f"memory limits not enforced here: {caps}")
    c = python_container("hog", "x = bytearray(400 * 1024 * 1024); print(len(x))",
                         resources={"limits": {"memory": "64Mi"}})
    create(cluster, namespace, pod("hog", [c], restartPolicy="Never"))
    p = wait_pod(cluster, namespace, "hog", lambda p: p["status"].get("phase") == "Failed",
                 what="Failed")
    term = container_status(p)["state"]["terminated"]
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137


def test_unknown_image_is_image_pull_back_off(cluster: TestCluster, namespace: str) -> None:
    create(cluster, namespace, pod("nginx", [{"name": "web", "image": "nginx:1.27"}]))
    p = wait_pod(cluster, namespace, "nginx",
                 lambda p: container_status(p).get("state", {}).get("waiting", {})
                 .get("reason") == "ImagePullBackOff", what="ImagePullBackOff")
    assert p["status"]["phase"] == "Pending"
    ev = wait_event(cluster, namespace, "nginx", "Failed", "Failed to pull image")
    assert 'Failed to pull image "nginx:1.27"' in ev["message"]
    assert "images.yaml" in ev["message"]
    assert "modelfleet/model-server" in ev["message"]


def test_a_volume_over_the_project_does_not_hide_the_interpreter(cluster: TestCluster,
                                                                namespace: str) -> None:
    # An emptyDir above the checkout and its venv (as /tmp is when CI clones under /tmp): the
    # runner binds them back, so the program still starts and imports the project.
    repo = Path(__file__).resolve().parents[3]
    cover = str(repo.parent) if str(repo.parent) != "/" else str(repo)
    code = ("import os, serving; print(os.listdir(" + repr(cover) + ") != [], flush=True); "
            "open(" + repr(cover + "/scratch") + ", 'w').write('x')")
    c = python_container("main", code, volumeMounts=[{"name": "cover", "mountPath": cover}])
    create(cluster, namespace, pod("cover", [c], restartPolicy="Never",
                                   volumes=[{"name": "cover", "emptyDir": {}}]))
    p = wait_pod(cluster, namespace, "cover", lambda p: p["status"].get("phase") in
                 ("Succeeded", "Failed"), what="finished")
    assert p["status"]["phase"] == "Succeeded", container_status(p)
    assert cluster.kubectl_run("logs", "cover", "-n", namespace).stdout == "True\n"
    assert not Path(cover, "scratch").exists()  # written into the emptyDir, not the host


def test_unsupported_volume_and_missing_configmap_are_reported(cluster: TestCluster,
                                                              namespace: str) -> None:
    c = python_container("main", "print('never')",
                         volumeMounts=[{"name": "share", "mountPath": "/share"}])
    create(cluster, namespace, pod("nfs", [c], volumes=[
        {"name": "share", "nfs": {"server": "127.0.0.1", "path": "/x"}}]))
    ev = wait_event(cluster, namespace, "nfs", "FailedMount")
    assert 'volume "share"' in ev["message"] and "nfs" in ev["message"]
    assert "not supported" in ev["message"]
    p = get_pod(cluster, namespace, "nfs")
    assert container_status(p)["state"]["waiting"]["reason"] == "ContainerCreating"
    assert p["status"]["phase"] == "Pending"

    c = python_container("main", "print('never')", env=[
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}])
    create(cluster, namespace, pod("nocm", [c]))
    p = wait_pod(cluster, namespace, "nocm",
                 lambda p: container_status(p).get("state", {}).get("waiting", {})
                 .get("reason") == "CreateContainerConfigError", what="config error")
    assert container_status(p)["state"]["waiting"]["message"] == 'configmap "absent" not found'
    ev = wait_event(cluster, namespace, "nocm", "Failed")
    assert ev["message"] == 'Error: configmap "absent" not found'


def test_env_downward_api_configmap_volume_and_secret_env(cluster: TestCluster,
                                                          namespace: str) -> None:
    cluster.kubectl_run("create", "configmap", "app", "-n", namespace,
                        "--from-literal=greeting=hello from a configmap")
    cluster.kubectl_run("create", "secret", "generic", "db", "-n", namespace,
                        "--from-literal=password=s3cret")
    code = ("import os,json; print(json.dumps({k: os.environ.get(k) for k in "
            "['MY_NAME','MY_NS','MY_IP','MY_NODE','MY_LABEL','PASSWORD','HOSTNAME',"
            "'CUDA_VISIBLE_DEVICES','MEM']}), flush=True); "
            "print(open('/etc/app/greeting').read(), flush=True); "
            "print(open('/etc/podinfo/labels').read(), flush=True)")
    c = python_container("show", code, env=[
        {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "MY_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "MY_LABEL", "valueFrom": {"fieldRef": {"fieldPath":
                                                          "metadata.labels['tier']"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                            "divisor": "1Mi"}}},
    ], resources={"limits": {"memory": "256Mi", "cpu": "1"}},
        volumeMounts=[{"name": "cfg", "mountPath": "/etc/app"},
                      {"name": "info", "mountPath": "/etc/podinfo"}])
    obj = pod("show", [c], restartPolicy="Never", labels={"app": "show", "tier": "gold"},
              volumes=[{"name": "cfg", "configMap": {"name": "app"}},
                       {"name": "info", "downwardAPI": {"items": [
                           {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}])
    create(cluster, namespace, obj)
    p = wait_pod(cluster, namespace, "show", lambda p: p["status"].get("phase") == "Succeeded",
                 what="Succeeded")
    assert container_status(p)["state"]["terminated"]["reason"] == "Completed"
    lines = cluster.kubectl_run("logs", "show", "-n", namespace).stdout.splitlines()
    env = json.loads(lines[0])
    assert env == {"MY_NAME": "show", "MY_NS": namespace, "MY_IP": p["status"]["podIP"],
                   "MY_NODE": "local-0", "MY_LABEL": "gold", "PASSWORD": "s3cret",
                   "HOSTNAME": "show", "CUDA_VISIBLE_DEVICES": "", "MEM": "256"}
    assert lines[1] == "hello from a configmap"
    assert 'app="show"' in lines and 'tier="gold"' in lines
    # The mounts lived in the pod's own mount namespace only.
    assert not Path("/etc/app/greeting").exists()


def test_job_pod_failure_policy_fail_job_on_exit_code(cluster: TestCluster,
                                                      namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "exit3"},
        "spec": {
            "backoffLimit": 6,
            "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
                "containerName": "main", "operator": "In", "values": [3]}}]},
            "template": {"spec": {
                "runtimeClassName": "fleet-local", "restartPolicy": "Never",
                "containers": [python_container("main", "import sys; sys.exit(3)")]}},
        },
    }
    create(cluster, namespace, job)

    def failed() -> dict | None:
        j = cluster.get_json("job", "exit3", "-n", namespace)
        conds = {c["type"]: c for c in j.get("status", {}).get("conditions", [])}
        return conds.get("Failed") if conds.get("Failed", {}).get("status") == "True" else None

    cond = wait_for(failed, timeout=60, what="Job Failed")
    assert cond["reason"] == "PodFailurePolicy"
    assert "exit code 3" in cond["message"]
    pods = cluster.get_json("pods", "-n", namespace, "-l", "job-name=exit3")["items"]
    assert len(pods) == 1, "FailJob at once: no retry"


def test_indexed_job_peers_resolve_by_hostname_and_subdomain(cluster: TestCluster,
                                                             namespace: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "peers", "namespace": namespace},
                   "spec": {"clusterIP": "None", "selector": {"job-name": "pair"},
                            "ports": [{"port": 7000}]}})
    code = """
import os, socket, time
idx = int(os.environ["JOB_COMPLETION_INDEX"])
if idx == 0:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((os.environ["POD_IP"], 7000)); s.listen(1)
    conn, _ = s.accept(); print("got", conn.recv(100).decode(), flush=True); conn.close()
else:
    deadline = time.time() + 60
    while True:
        try:
            c = socket.create_connection(("pair-0.peers", 7000), timeout=2); break
        except OSError:
            if time.time() > deadline: raise
            time.sleep(0.2)
    c.sendall(b"hello from " + socket.gethostname().encode()); c.close(); print("sent", flush=True)
"""
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pair"},
        "spec": {"completions": 2, "parallelism": 2, "completionMode": "Indexed",
                 "template": {"spec": {
                     "runtimeClassName": "fleet-local", "restartPolicy": "Never",
                     "subdomain": "peers",
                     "containers": [python_container("main", code, env=POD_IP_ENV)]}}},
    }
    create(cluster, namespace, job)

    def complete() -> bool:
        j = cluster.get_json("job", "pair", "-n", namespace)
        return j.get("status", {}).get("succeeded") == 2

    wait_for(complete, timeout=90, what="both indexes succeeded")
    pods = cluster.get_json("pods", "-n", namespace, "-l", "job-name=pair")["items"]
    by_index = {p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p
                for p in pods}
    log0 = cluster.kubectl_run("logs", by_index["0"]["metadata"]["name"], "-n",
                               namespace).stdout
    assert log0 == "got hello from pair-1\n"


def test_graceful_deletion_runs_pre_stop_then_deletes(cluster: TestCluster,
                                                      namespace: str) -> None:
    c = python_container("main", "import time\nwhile True: time.sleep(1)",
                         lifecycle={"preStop": {"exec": {"command": ["sleep", "2"]}}})
    create(cluster, namespace, pod("slow", [c], terminationGracePeriodSeconds=20))
    p = wait_pod(cluster, namespace, "slow", ready, what="Ready")
    pid = int(container_status(p)["containerID"].split("//")[1].split("-")[0])
    assert processes.alive(pid)
    t0 = time.monotonic()
    cluster.kubectl_run("delete", "pod", "slow", "-n", namespace, "--wait=false")
    wait_gone(cluster, namespace, "slow")
    elapsed = time.monotonic() - t0
    # preStop (2 s) then SIGTERM: a sleeping Python dies on SIGTERM at once.
    assert 2.0 <= elapsed < 15, f"deletion took {elapsed:.1f}s"
    assert not processes.alive(pid)
    reasons = [e["reason"] for e in events(cluster, namespace, "slow")]
    assert "Killing" in reasons


def test_gpu_pods_get_distinct_devices_and_over_capacity_stays_pending(
        cluster: TestCluster, namespace: str) -> None:
    code = ("import os,time; print(os.environ['CUDA_VISIBLE_DEVICES'], "
            "os.environ['NVIDIA_VISIBLE_DEVICES'], flush=True); time.sleep(3600)")
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    for name in ("g1", "g2", "g3"):
        create(cluster, namespace, pod(name, [python_container("main", code, resources=gpu)]))
    for name in ("g1", "g2"):
        wait_pod(cluster, namespace, name, ready, what="Ready")
    seen = set()
    for name in ("g1", "g2"):
        out = wait_for(lambda n=name: cluster.kubectl_run("logs", n, "-n", namespace).stdout,
                       timeout=20, what=f"{name} output")
        cuda, nvidia = out.split()
        assert cuda == nvidia and cuda in ("0", "1")
        seen.add(cuda)
    assert seen == {"0", "1"}
    p = get_pod(cluster, namespace, "g3")
    assert p["status"]["phase"] == "Pending"
    assert condition(p, "PodScheduled")["reason"] == "Unschedulable"
    assert "nvidia.com/gpu" in condition(p, "PodScheduled")["message"]
    # Freeing one device lets the scheduler place the pending pod on it.
    cluster.kubectl_run("delete", "pod", "g1", "-n", namespace)
    wait_pod(cluster, namespace, "g3", ready, what="Ready once a GPU was freed", timeout=90)


def test_kwok_simulated_pod_logs_answer_clearly(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "sim", "namespace": namespace},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    wait_pod(cluster, namespace, "sim", ready, what="simulated Ready")
    proc = cluster.kubectl_run("logs", "sim", "-n", namespace, check=False)
    assert "Debug endpoints are disabled" not in proc.stderr
    assert "MethodNotAllowed" not in proc.stderr and "(405)" not in proc.stderr
    assert proc.returncode == 0 or 'no logs found for container "c"' in proc.stderr, proc.stderr


def test_port_forward_and_listeners_only_on_the_pod_ip(cluster: TestCluster,
                                                       namespace: str) -> None:
    c = python_container("web", PROBED_SERVER, env=POD_IP_ENV,
                         ports=[{"name": "http", "containerPort": 8080}],
                         readinessProbe=probe("/healthz"))
    create(cluster, namespace, pod("pf", [c]))
    p = wait_pod(cluster, namespace, "pf", ready, what="Ready")
    pid = int(container_status(p)["containerID"].split("//")[1].split("-")[0])
    tree = descendants(pid)
    listeners = [a for t in tree for a in processes.listening_addresses(t)]
    assert listeners and all(addr == p["status"]["podIP"] for _, addr, _ in listeners), listeners
    cluster.apply({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "pf-svc", "namespace": namespace},
                   "spec": {"selector": {"app": "pf"},
                            "ports": [{"port": 80, "targetPort": "http"}]}})
    for target in ("pod/pf", "svc/pf-svc"):
        remote = "8080" if target.startswith("pod") else "80"
        pf = subprocess.Popen([cluster.kubectl, "port-forward", "-n", namespace, target,
                               f":{remote}"], env=cluster.env, stdout=subprocess.PIPE,
                              text=True)
        try:
            line = wait_for(lambda pf=pf: pf.stdout.readline(), timeout=20,
                            what=f"port-forward {target}")
            port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
            out = httpx.get(f"http://127.0.0.1:{port}/x", timeout=10, trust_env=False)
            assert out.text == "ok", target
        finally:
            pf.terminate()
            pf.wait(10)
    # `kubectl logs -f` streams what the container prints (the server's start line first).
    follow = subprocess.Popen([cluster.kubectl, "logs", "-f", "-n", namespace, "pf"],
                              env=cluster.env, stdout=subprocess.PIPE, text=True)
    try:
        first = wait_for(lambda: follow.stdout.readline(), timeout=20, what="logs -f")
        assert first == f"serving on {p['status']['podIP']}\n"
    finally:
        follow.terminate()
        follow.wait(10)


def test_runner_restart_adopts_running_pods(cluster: TestCluster, namespace: str) -> None:
    c = python_container("main", "import time\nprint('up', flush=True)\n"
                         "while True: time.sleep(1)")
    create(cluster, namespace, pod("keep", [c]))
    p = wait_pod(cluster, namespace, "keep", ready, what="Ready")
    cid = container_status(p)["containerID"]
    cluster.local.restart_component("runner")
    p2 = wait_pod(cluster, namespace, "keep", lambda q: ready(q) and container_status(q)
                  .get("containerID") == cid, what="still Ready with the same container")
    assert container_status(p2)["restartCount"] == 0
    pid = int(cid.split("//")[1].split("-")[0])
    assert processes.alive(pid)
    assert os.getpgid(pid) == pid
