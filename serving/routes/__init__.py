"""The HTTP routes as Sanic blueprints, one per protocol, each built for one `RouteContext`:
`tfserving_v1` (TF Serving REST v1), `open_inference_v2` (Open Inference / KServe V2),
`probes` (liveness, readiness), `metrics` (Prometheus); `context` holds the request steps
they share, `errors` the `{"error": ...}` bodies of everything that fails."""
