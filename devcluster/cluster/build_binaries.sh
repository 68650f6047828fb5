#!/usr/bin/env bash
# Build the local control plane's binaries from the Go module proxy.
# Usage: build_binaries.sh OUT_DIR K8S_VERSION ETCD_VERSION KWOK_VERSION METRICS_SERVER_VERSION
# Prints one "STEP <name>" line before each stage so callers can show progress.
set -euo pipefail
out=$1 k8s=$2 etcd=$3 kwok=$4 ms=${5:-v0.8.0}
staging=v0.${k8s#v1.}
work=$(mktemp -d "${TMPDIR:-/tmp}/modelfleet-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
gov=$(go env GOVERSION); gov=${gov#go}; gomm=$(echo "$gov" | cut -d. -f1,2).0

have() { [ -x "$out/$1" ]; }

if ! have etcd; then
echo "STEP etcd"
mkdir "$work/etcd" && cd "$work/etcd"
go mod init example.invalid/etcdbin >/dev/null 2>&1
go mod edit -go="$gomm"
go get "go.etcd.io/etcd/server/v3@$etcd"
go mod edit -tool=go.etcd.io/etcd/server/v3
go build -trimpath -ldflags="-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
fi

if ! have kwok; then
echo "STEP kwok"
mkdir "$work/kwok" && cd "$work/kwok"
go mod init example.invalid/kwokbin >/dev/null 2>&1
go mod edit -go="$gomm"
go get "sigs.k8s.io/kwok@$kwok"
go mod edit -tool=sigs.k8s.io/kwok/cmd/kwok
go mod tidy
go build -trimpath -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$kwok" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok
fi

if ! have metrics-server; then
echo "STEP metrics-server"
mkdir "$work/ms" && cd "$work/ms"
go mod init example.invalid/msbin >/dev/null 2>&1
go mod edit -go="$gomm"
go get "sigs.k8s.io/metrics-server@$ms"
go mod edit -tool=sigs.k8s.io/metrics-server/cmd/metrics-server
go mod tidy
msld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  msld="$msld -X $p.gitVersion=$ms -X $p.gitTreeState=clean"
done
go build -trimpath -ldflags="$msld" -o "$out/metrics-server" sigs.k8s.io/metrics-server/cmd/metrics-server
fi

if have kube-apiserver && have kube-controller-manager && have kube-scheduler && have kubectl; then
  echo "STEP done"; exit 0
fi
echo "STEP kubernetes-modules"
mkdir "$work/k8s" && cd "$work/k8s"
go mod init example.invalid/k8sbin >/dev/null 2>&1
go mod edit -go="$gomm"
gomod=$(go mod download -json "k8s.io/kubernetes@$k8s" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
n=0
# Staging modules are required at the placeholder v0.0.0 (not pseudo-versions like k8s.io/utils).
for m in $(grep -E '^\s*k8s\.io/[a-z0-9-]+ v0\.0\.0(\s|$)' "$gomod" | awk '{print $1}' | sort -u); do
  go mod edit -replace="$m=$m@$staging"; n=$((n+1))
done
echo "replaced $n staging modules"
[ "$n" -ge 25 ] || { echo "expected ~31 staging modules in k8s.io/kubernetes@$k8s go.mod, found $n" >&2; exit 1; }
go mod edit -require="k8s.io/kubernetes@$k8s"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go mod edit -tool="k8s.io/kubernetes/cmd/$c"
done
go mod tidy
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
minor=${k8s#v1.}; minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=$date"
done
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  have "$c" && continue
  echo "STEP $c"
  go build -trimpath -tags=selinux,notest -ldflags="$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c"
done
echo "STEP done"
