"""`python -m devcluster.runner`: the process kubelet, one recorded component of the cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from devcluster.runner.bindguard import BindGuardUnavailable
from devcluster.runner.runner import Runner, RunnerConfig


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m devcluster.runner")
    p.add_argument("--server", required=True)
    p.add_argument("--ca", required=True, type=Path)
    p.add_argument("--cert", required=True, type=Path)
    p.add_argument("--key", required=True, type=Path)
    p.add_argument("--state-dir", required=True, type=Path)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus", type=int, default=0, help="simulated nvidia.com/gpu per node")
    p.add_argument("--kwok-port", type=int, required=True)
    p.add_argument("--health-port", type=int, required=True)
    p.add_argument("--cpu", help="node CPU capacity (default: the host's)")
    p.add_argument("--memory", help="node memory capacity (default: the host's)")
    p.add_argument("--images", type=Path, help="image table (default: the packaged one)")
    p.add_argument("--enable-exec", action="store_true",
                   help="create kwok Exec objects so `kubectl exec` works (unauthenticated)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    runner = Runner(RunnerConfig(
        server=args.server, ca=args.ca, cert=args.cert, key=args.key, state_dir=args.state_dir,
        nodes=args.nodes, gpus=args.gpus, kwok_port=args.kwok_port,
        health_port=args.health_port, cpu=args.cpu, memory=args.memory, images=args.images,
        enable_exec=args.enable_exec))

    async def amain() -> None:
        loop = asyncio.get_running_loop()
        # Like the kubelet, stopping the runner leaves containers running; `fleet cluster down`
        # stops them afterwards (devcluster.runner.cleanup), a restarted runner adopts them.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        await runner.run()

    try:
        asyncio.run(amain())
    except BindGuardUnavailable as exc:
        sys.exit(f"runner: cannot start: {exc}")


if __name__ == "__main__":
    main()
