#!/usr/bin/env bash
# Builds k9s v0.50.16 from the Go module proxy into a cache dir outside the repo (idempotent).
set -euo pipefail
VERSION="${K9S_VERSION:-v0.50.16}"
CACHE="${FLEET_BENCH_CACHE:-$HOME/.cache/modelfleet/bench}"
BIN="$CACHE/k9s-$VERSION/k9s"
if [[ -x "$BIN" ]]; then echo "$BIN"; exit 0; fi
command -v go >/dev/null || { echo "go toolchain not found; install Go >= 1.24" >&2; exit 1; }
mkdir -p "$CACHE/k9s-$VERSION"
GOBIN="$CACHE/k9s-$VERSION" GOFLAGS=-buildvcs=false nice -n 10 \
  go install "github.com/derailed/k9s@$VERSION" >&2
echo "$BIN"
