#!/usr/bin/env bash
# A single-process HDFS (NameNode + DataNode, WebHDFS on) for tests, bound to 127.0.0.1 only.
#
#   minicluster.sh fetch
#       Resolve the Hadoop minicluster jars (devcluster/hdfs/pom.xml) with Maven into a Maven
#       repository inside the cache and print the path of the classpath file. The first run
#       downloads about 100 MB; later runs only check that the jars are still there.
#       Cache: $MODELFLEET_HDFS_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/modelfleet/hdfs.
#
#   minicluster.sh run [--base DIR] [--nnport N] [--httpport H] [--heap SIZE] [--watch-pid PID]
#       fetch, then start the cluster in the foreground. Free ports are picked when not given.
#       With --watch-pid the cluster stops when that process is gone (a killed test run).
#       When the DataNode is registered it writes DIR/ports.json
#       ({"rpc_port", "http_port", "pid", "url", "webhdfs_url"}) and prints a READY line.
#       SIGTERM/SIGINT stop the JVM. Logs: DIR/minicluster.log.
#
#   minicluster.sh stop --base DIR
#       Stop the cluster that `run --base DIR` started (from another shell).
#
# Exit codes: 2 usage, 3 a port is in use, 4 java or mvn missing, 5 fetch failed,
#             6 the cluster failed to start (the log's tail is printed).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"
CACHE="${MODELFLEET_HDFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelfleet/hdfs}"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
START_TIMEOUT="${MODELFLEET_HDFS_START_TIMEOUT:-240}"

say() { printf '[hdfs] %s\n' "$*" >&2; }
die() { local code="$1"; shift; printf '[hdfs] error: %s\n' "$*" >&2; exit "$code"; }

need_java() {
    command -v java >/dev/null 2>&1 ||
        die 4 "java not found: install a Java 17+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless)"
    local ver major
    ver="$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)"
    major="${ver%%.*}"
    [[ "$major" =~ ^[0-9]+$ ]] && (( major >= 17 )) ||
        die 4 "java $ver is too old: Hadoop 3.5 needs Java 17+ (apt-get install openjdk-17-jre-headless)"
}

need_mvn() {
    command -v mvn >/dev/null 2>&1 ||
        die 4 "mvn not found: install Maven 3.8+ (Debian/Ubuntu: apt-get install maven) to fetch the Hadoop minicluster jars"
}

# The classpath file is keyed on the pom's content, so editing the pom re-resolves.
classpath_file() {
    local key
    key="$(sha256sum "$POM" | cut -c1-12)"
    printf '%s/classpath-%s.txt' "$CACHE" "$key"
}

# True when the classpath file exists and every jar it names is still there.
classpath_ok() {
    local cp="$1" jar
    [[ -s "$cp" ]] || return 1
    while IFS= read -r -d ':' jar; do
        [[ -f "$jar" ]] || return 1
    done < <(printf '%s:' "$(cat "$cp")")
}

fetch() {
    local cp tmp log
    cp="$(classpath_file)"
    if classpath_ok "$cp"; then
        printf '%s\n' "$cp"
        return 0
    fi
    need_mvn
    mkdir -p "$CACHE"
    tmp="$(mktemp "$CACHE/.classpath.XXXXXX")"
    log="$CACHE/fetch.log"
    say "fetching the Hadoop minicluster jars with Maven (first run: about 100 MB) into $CACHE/m2"
    local -a args=(-B -f "$POM" "$DEP_PLUGIN:build-classpath" -Dmdep.outputFile="$tmp"
                   -Dmdep.includeScope=runtime -Dmaven.repo.local="$CACHE/m2")
    [[ -n "${HADOOP_VERSION:-}" ]] && args+=(-Dhadoop.version="$HADOOP_VERSION")
    # One progress line per downloaded jar of 1 MB or more; the full output goes to the log.
    if ! mvn "${args[@]}" 2>&1 | tee "$log" | awk '
        /Downloaded from .*\.jar / {
            n = split($5, parts, "/"); size = $0; sub(/.*\(/, "", size); sub(/ at .*/, "", size)
            if (size ~ /MB$/) { printf "[hdfs]   %s (%s)\n", parts[n], size; fflush() } }' >&2 ||
        ! grep -q 'BUILD SUCCESS' "$log" || ! classpath_ok "$tmp"; then
        rm -f "$tmp"
        tail -n 30 "$log" >&2 || true
        die 5 "Maven could not resolve the minicluster jars (full log: $log)"
    fi
    mv -f "$tmp" "$cp"
    say "jars cached under $CACHE/m2 ($(du -sh "$CACHE/m2" | cut -f1))"
    printf '%s\n' "$cp"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --add-opens from Hadoop's launcher (hadoop_finalize_jpms_opts) plus Spark's extras; a plain
# `java -cp` does not add them.
jpms_opts() {
    local p
    printf '%s\n' -XX:+IgnoreUnrecognizedVMOptions
    for p in java.io java.lang java.lang.invoke java.lang.reflect java.math java.net java.nio \
             java.text java.util java.util.concurrent java.util.concurrent.atomic java.util.zip \
             jdk.internal.ref sun.nio.ch sun.security.util sun.security.x509; do
        printf '%s\n' "--add-opens=java.base/$p=ALL-UNNAMED"
    done
}

run() {
    local base="" nnport="" httpport="" heap="512m" watch=""
    while (( $# )); do
        case "$1" in
            --base) base="$2"; shift 2 ;;
            --nnport) nnport="$2"; shift 2 ;;
            --httpport) httpport="$2"; shift 2 ;;
            --heap) heap="$2"; shift 2 ;;
            --watch-pid) watch="$2"; shift 2 ;;
            *) die 2 "unknown option: $1" ;;
        esac
    done
    need_java
    [[ -n "$nnport" ]] || nnport="$(free_port)"
    [[ -n "$httpport" ]] || httpport="$(free_port)"
    local p
    for p in "$nnport" "$httpport"; do
        port_in_use "$p" && die 3 "port 127.0.0.1:$p is already in use"
    done
    local cp
    cp="$(fetch)" || exit $?
    [[ -n "$base" ]] || base="$(mktemp -d "${TMPDIR:-/tmp}/modelfleet-hdfs.XXXXXX")"
    mkdir -p "$base"
    base="$(cd "$base" && pwd)"
    rm -f "$base/details.json" "$base/ports.json"
    cat > "$base/log4j.properties" <<'EOF'
log4j.rootLogger=${modelfleet.loglevel}, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%d{HH:mm:ss,SSS} %-5p %c{1}: %m%n
EOF
    local log="$base/minicluster.log"
    local -a opens
    mapfile -t opens < <(jpms_opts)
    say "starting NameNode + DataNode (rpc 127.0.0.1:$nnport, http 127.0.0.1:$httpport, base $base)"
    # MiniDFSCluster binds the NameNode and DataNode addresses to 127.0.0.1 itself; the -D
    # lines pin every other address Hadoop would otherwise put on the wildcard.
    java "-Xmx$heap" -Djava.net.preferIPv4Stack=true "${opens[@]}" \
        -Dlog4j.configuration="file:$base/log4j.properties" \
        -Dmodelfleet.loglevel="${MODELFLEET_HDFS_LOGLEVEL:-WARN}" \
        -cp "$(cat "$cp")" org.apache.hadoop.test.MiniDFSClusterManager \
        -format -datanodes 1 -nnport "$nnport" -httpport "$httpport" \
        -writeConfig "$base/hdfs-site.xml" -writeDetails "$base/details.json" \
        -D "hdfs.minidfs.basedir=$base/dfs" \
        -D dfs.permissions.enabled=false \
        -D dfs.replication=1 \
        -D dfs.namenode.https-address=127.0.0.1:0 \
        -D dfs.namenode.secondary.http-address=127.0.0.1:0 \
        -D dfs.namenode.secondary.https-address=127.0.0.1:0 \
        -D dfs.namenode.backup.address=127.0.0.1:0 \
        -D dfs.namenode.backup.http-address=127.0.0.1:0 \
        -D dfs.datanode.https.address=127.0.0.1:0 \
        -D dfs.journalnode.rpc-address=127.0.0.1:0 \
        -D dfs.journalnode.http-address=127.0.0.1:0 \
        -D dfs.journalnode.https-address=127.0.0.1:0 \
        -D dfs.provided.aliasmap.inmemory.dnrpc-address=127.0.0.1:0 \
        -D dfs.mover.address=127.0.0.1:0 \
        -D dfs.balancer.address=127.0.0.1:0 \
        >"$log" 2>&1 &
    local pid=$!
    trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; exit 143' TERM INT HUP

    local waited=0
    until [[ -s "$base/details.json" ]]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" || true
            tail -n 40 "$log" >&2 || true
            die 6 "the minicluster exited during startup (log: $log)"
        fi
        if (( waited >= START_TIMEOUT * 2 )); then
            kill -TERM "$pid" 2>/dev/null || true
            tail -n 40 "$log" >&2 || true
            die 6 "the minicluster was not up after ${START_TIMEOUT}s (log: $log)"
        fi
        sleep 0.5
        waited=$(( waited + 1 ))
    done
    local url="hdfs://127.0.0.1:$nnport" web="http://127.0.0.1:$httpport"
    printf '{"rpc_port": %s, "http_port": %s, "pid": %s, "launcher_pid": %s, "url": "%s", "webhdfs_url": "%s"}\n' \
        "$nnport" "$httpport" "$pid" "$$" "$url" "$web" > "$base/ports.json.tmp"
    mv "$base/ports.json.tmp" "$base/ports.json"
    say "ready after ~$(( waited / 2 ))s: $url (NameNode RPC), $web (WebHDFS); pid $pid"
    printf 'READY %s %s\n' "$url" "$web"
    while kill -0 "$pid" 2>/dev/null; do
        if [[ -n "$watch" ]] && ! kill -0 "$watch" 2>/dev/null; then
            say "process $watch is gone; stopping the minicluster"
            kill -TERM "$pid" 2>/dev/null || true
            break
        fi
        sleep 1 & wait $! || true   # a background sleep lets the traps run at once
    done
    wait "$pid"
}

# PID from ports.json, only while that process still runs the expected command.
pid_of() {
    local file="$1" key="$2" expect="$3" pid
    pid="$(sed -n "s/.*\"$key\": \([0-9]*\).*/\1/p" "$file")"
    [[ -n "$pid" ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expect" &&
        printf '%s\n' "$pid"
}

stop() {
    local base=""
    [[ "${1:-}" == "--base" && -n "${2:-}" ]] || die 2 "usage: stop --base DIR"
    base="$2"
    [[ -f "$base/ports.json" ]] || die 2 "no cluster recorded under $base (no ports.json)"
    local launcher jvm i
    launcher="$(pid_of "$base/ports.json" launcher_pid minicluster.sh || true)"
    jvm="$(pid_of "$base/ports.json" pid MiniDFSClusterManager || true)"
    [[ -n "$launcher" ]] && kill -TERM "$launcher" 2>/dev/null
    [[ -n "$jvm" ]] && kill -TERM "$jvm" 2>/dev/null
    for (( i = 0; i < 60; i++ )); do
        [[ -n "$jvm" ]] && kill -0 "$jvm" 2>/dev/null || break
        sleep 0.5
    done
    [[ -n "$jvm" ]] && kill -0 "$jvm" 2>/dev/null && kill -KILL "$jvm"
    rm -f "$base/ports.json"
    say "stopped the minicluster under $base"
}

case "${1:-}" in
    fetch) shift; fetch "$@" ;;
    run) shift; run "$@" ;;
    stop) shift; stop "$@" ;;
    *) printf 'usage: %s fetch | run [--base DIR] [--nnport N] [--httpport H] [--heap SIZE] [--watch-pid PID] | stop --base DIR\n' "$0" >&2
       exit 2 ;;
esac
