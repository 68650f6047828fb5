"""Prometheus metrics (KServe-compatible names where they exist), one view for all workers.

With several Sanic workers every process writes its samples to mmap files in a shared
directory (prometheus_client's multiprocess mode, `PROMETHEUS_MULTIPROC_DIR`, set up by
`serving.server.run` before the workers start) and `/metrics` on any worker renders the
aggregate: counters and histograms summed over workers, `queue_depth` summed,
`model_ready` the minimum (1 only when every worker is ready), load and warm-up times the
maximum. With one worker the metrics live in the process, as before.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model_name: str, multiprocess_dir: str = "") -> None:
        self.registry = r = CollectorRegistry()
        self.model_name = model_name
        self.multiprocess_dir = multiprocess_dir
        self.requests = Counter("request_total", "Requests by protocol and HTTP status",
                                ["model_name", "protocol", "code"], registry=r)
        self.latency = Histogram("request_latency_seconds",
                                 "Request handling time by protocol and HTTP status",
                                 ["model_name", "protocol", "code"], buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.predict = Histogram("request_predict_seconds", "Model time per request "
                                 "(queue wait included)", ["model_name"],
                                 buckets=LATENCY_BUCKETS, registry=r).labels(model_name)
        self.batch_size = Histogram("batch_size", "Rows per model call", ["model_name"],
                                    buckets=BATCH_BUCKETS, registry=r).labels(model_name)
        self.queue_delay = Histogram("batch_queue_delay_seconds", "Time queued before dispatch",
                                     ["model_name"], buckets=LATENCY_BUCKETS,
                                     registry=r).labels(model_name)
        self.queue_depth = Gauge("queue_depth", "Queued rows", ["model_name"],
                                 registry=r, multiprocess_mode="livesum").labels(model_name)
        self.load_seconds = Gauge("model_load_seconds", "Fetch and load time of the served "
                                  "version", ["model_name"], registry=r,
                                  multiprocess_mode="livemax").labels(model_name)
        self.warmup_seconds = Gauge("model_warmup_seconds", "Warmup time of the served version",
                                    ["model_name"], registry=r,
                                    multiprocess_mode="livemax").labels(model_name)
        self.ready = Gauge("model_ready", "1 when the model is loaded, warm and not draining",
                           ["model_name"], registry=r,
                           multiprocess_mode="livemin").labels(model_name)
        self.cache_hits = Counter("response_cache_hits_total", "Responses served from the cache",
                                  ["model_name"], registry=r).labels(model_name)
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, protocol: str, code: int, seconds: float) -> None:
        key = (protocol, code)
        pair = self._children.get(key)
        if pair is None:
            labels = (self.model_name, protocol, str(code))
            pair = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def render(self) -> bytes:
        if not self.multiprocess_dir:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)
