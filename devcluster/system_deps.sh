#!/usr/bin/env bash
# System packages the local stand-ins need beyond Python and Go: Java + Maven (the HDFS
# minicluster), tmux (the TUI benchmark), util-linux (unshare/nsenter for the process kubelet),
# gcc + libc6-dev (the process kubelet compiles its bind guard, devcluster/runner/bindguard.c),
# postgresql (initdb + postgres for Optuna's RDB storage: `fleet cluster up --postgres`, tests;
# Debian keeps them in /usr/lib/postgresql/<major>/bin, off PATH).
# Installs what is missing when run as root; otherwise prints the exact command and fails.
set -euo pipefail
missing=()
command -v java >/dev/null || missing+=(default-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v tmux >/dev/null || missing+=(tmux)
command -v unshare >/dev/null && command -v nsenter >/dev/null || missing+=(util-linux)
command -v cc >/dev/null || missing+=(gcc)
[ -e /usr/include/dlfcn.h ] && [ -e /usr/include/stdlib.h ] || missing+=(libc6-dev)
{ command -v initdb && command -v postgres; } >/dev/null ||
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "missing system packages: ${missing[*]}; install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
