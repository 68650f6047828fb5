"""Events in the kubelet's shape (source kubelet/<node>), with repeats aggregated into `count`."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from devcluster.runner.api import ApiError, AsyncApi
from devcluster.runner.podstatus import rfc3339, utcnow

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, api: AsyncApi, node: str) -> None:
        self.api = api
        self.node = node
        # (pod uid, fieldPath, reason, message) -> (event name, count)
        self._seen: dict[tuple[str, str, str, str], tuple[str, int]] = {}

    async def emit(self, pod: dict[str, Any], type_: str, reason: str, message: str,
                   container: str | None = None) -> None:
        meta = pod["metadata"]
        ns = meta["namespace"]
        field_path = f"spec.containers{{{container}}}" if container else ""
        key = (meta["uid"], field_path, reason, message)
        now = rfc3339(utcnow())
        seen = self._seen.get(key)
        try:
            if seen:
                name, count = seen
                await self.api.merge_patch(f"/api/v1/namespaces/{ns}/events/{name}",
                                           {"count": count + 1, "lastTimestamp": now})
                self._seen[key] = (name, count + 1)
                return
            name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
            involved = {"kind": "Pod", "apiVersion": "v1", "namespace": ns,
                        "name": meta["name"], "uid": meta["uid"]}
            if field_path:
                involved["fieldPath"] = field_path
            await self.api.post(f"/api/v1/namespaces/{ns}/events", {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": involved,
                "reason": reason, "message": message, "type": type_,
                "source": {"component": "kubelet", "host": self.node},
                "reportingComponent": "kubelet", "reportingInstance": self.node,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            })
            self._seen[key] = (name, 1)
        except (ApiError, OSError) as exc:  # events are best effort, like the kubelet's
            log.warning("event %s for %s/%s not recorded: %s", reason, ns, meta["name"], exc)
        except Exception as exc:  # noqa: BLE001 - httpx transport errors
            log.warning("event %s not recorded: %s", reason, exc)

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._seen if k[0] == pod_uid]:
            del self._seen[key]
