#!/usr/bin/env bash
# Compares sandbox-proxy with tinyproxy, Squid and the direct path: the same load
# generator against each, in one run, on this machine; prints one table.
#
#   sudo benches/compare.sh            (root: installs peers, uses namespaces)
#
# Environment: SYSTEMS (default "sandbox-proxy tinyproxy squid direct"),
# WINDOW (per test, default 3s), FILTER_SIZES (default "1 1000 10000 100000"),
# TESTS (loadgen's --tests for the main run, default all but filter),
# OUT (default target/bench-compare), SANDBOX_PROXY (binary to measure, default the
# static musl release build that the sidecar image ships; BUILD=glibc for the host
# build), PERF=1 (record `perf record -g` of each proxy's main run into
# $OUT/perf-SYSTEM.data, flags in PERF_ARGS; build with symbols for it, see the README),
# STRACE=1 (count each proxy's system calls during its main run, `strace -c -f`, into
# $OUT/strace-SYSTEM.txt; it slows the proxy, so the run's other numbers do not count),
# LOGGING ("off", the default: every proxy logs errors only, its cheapest configuration;
# "on": each logs every request, sandbox-proxy at its default level as users run it,
# tinyproxy at LogLevel Connect, Squid with its access log).
#
# Everything runs inside a private mount and network namespace: the test names resolve
# to loopback through a generated hosts file bind-mounted over /etc/hosts there only,
# and the fixed ports below cannot collide with anything on the machine.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SYSTEMS=${SYSTEMS:-"sandbox-proxy tinyproxy squid direct"}
WINDOW=${WINDOW:-3s}
LOGGING=${LOGGING:-off}
FILTER_SIZES=${FILTER_SIZES-"1 1000 10000 100000"}
OUT=${OUT:-$root/target/bench-compare}
TESTS=${TESTS:-memory,tunnel,setup,http-keepalive,http-close,deny}
ECHO_PORT=9001
HTTP_PORT=9002
declare -A PROXY_PORT=([sandbox-proxy]=8899 [tinyproxy]=8888 [squid]=3128)

BUILD=${BUILD:-musl}
loadgen=$root/target/release/loadgen
case $BUILD in
  musl) musl_target="$(uname -m)-unknown-linux-musl"
    sandbox_proxy=${SANDBOX_PROXY:-$root/target/$musl_target/release/sandbox-proxy} ;;
  glibc) sandbox_proxy=${SANDBOX_PROXY:-$root/target/release/sandbox-proxy} ;;
  *) echo "compare: BUILD must be musl or glibc" >&2; exit 2 ;;
esac

log() { echo "compare: $*" >&2; }
die() { log "error: $*"; exit 1; }

outside() {
  [[ $EUID == 0 ]] || die "run as root (installs packages, creates namespaces)"
  local missing=()
  for p in tinyproxy squid iproute2; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  log "building loadgen and sandbox-proxy (release)"
  (cd "$root" && cargo build --release -q -p sandbox-benches --bin loadgen)
  if [[ -z ${SANDBOX_PROXY:-} ]]; then
    # The musl build as the sidecar image has it (scripts/build-proxy-image.sh), which
    # needs the target's standard library.
    if [[ -n ${musl_target:-} ]] && ! rustup target list --installed | grep -qx "$musl_target"; then
      log "adding the Rust target $musl_target"
      rustup target add "$musl_target" >&2
    fi
    (cd "$root" && cargo build --release -q -p sandbox-proxy --bin sandbox-proxy \
      ${musl_target:+--target "$musl_target" --no-default-features})
  fi
  mkdir -p "$OUT"
  exec unshare --mount --net --propagation private -- "$0" --inside
}

# --- inside the private namespaces -------------------------------------------------

started=()
work=

cleanup() {
  local pid
  for pid in "${started[@]}"; do stop_pid "$pid"; done
  [[ -n $work ]] && rm -rf "$work"
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Waits until something accepts on 127.0.0.1:$1 while process $2 lives.
wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1200); do
    kill -0 "$pid" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

tinyproxy_conf() { # dir
  cat >"$1/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port ${PROXY_PORT[tinyproxy]}
Listen 127.0.0.1
Timeout 600
MaxClients 20000
LogFile "$1/logs/tinyproxy.log"
LogLevel $([[ $LOGGING == on ]] && echo Connect || echo Error)
DisableViaHeader Yes
Filter "$1/tinyproxy.filter"
FilterType ere
FilterURLs Off
FilterDefaultDeny Yes
ConnectPort $ECHO_PORT
ConnectPort $HTTP_PORT
EOF
}

squid_conf() { # dir
  cat >"$1/squid.conf" <<EOF
http_port 127.0.0.1:${PROXY_PORT[squid]}
workers 1
max_filedescriptors $(ulimit -Hn)
acl allowed dstdomain "$1/squid.domains"
acl bench_ports port $ECHO_PORT $HTTP_PORT
acl CONNECT method CONNECT
http_access deny !bench_ports
http_access allow allowed
http_access deny all
cache deny all
access_log $([[ $LOGGING == on ]] && echo "stdio:$1/logs/squid-access.log" || echo none)
cache_log $1/logs/squid-cache.log
pid_filename none
coredump_dir $1/logs
visible_hostname bench
via off
forwarded_for delete
pinger_enable off
shutdown_lifetime 0 seconds
EOF
}

# Starts $1 with the allowlist in directory $2; sets $pid.
start_system() {
  local system=$1 dir=$2
  mkdir -p "$dir/logs" && chmod 777 "$dir/logs"
  case $system in
    sandbox-proxy)
      RUST_LOG=$([[ $LOGGING == on ]] && echo info || echo warn) \
        "$sandbox_proxy" --allowlist "$dir/allowlist.txt" \
        --listen "127.0.0.1:${PROXY_PORT[$system]}" --ports "$ECHO_PORT,$HTTP_PORT" \
        --allow-private --max-connections 20000 >"$dir/logs/sandbox-proxy.log" 2>&1 &
      ;;
    tinyproxy)
      tinyproxy_conf "$dir"
      tinyproxy -d -c "$dir/tinyproxy.conf" 2>"$dir/logs/tinyproxy.stderr" &
      ;;
    squid)
      squid_conf "$dir"
      squid -N -f "$dir/squid.conf" 2>"$dir/logs/squid.stderr" &
      ;;
  esac
  pid=$!
  started+=("$pid")
  if ! wait_port "${PROXY_PORT[$system]}" "$pid"; then
    log "$system did not start; its logs:"
    tail -n 20 "$dir"/logs/* >&2 || true
    return 1
  fi
}

# Runs loadgen against $1 with allowlist directory $2 and extra loadgen flags.
measure() {
  local system=$1 dir=$2 pid
  shift 2
  if [[ $system == direct ]]; then
    "$loadgen" run --system direct --window "$WINDOW" "$@" >>"$OUT/results.jsonl"
    return
  fi
  start_system "$system" "$dir" || return 1
  local tracer=
  if [[ -n ${PERF:-} && $* != *filter* ]]; then
    # shellcheck disable=SC2086 # PERF_ARGS is a list of flags.
    perf record -q ${PERF_ARGS:--F 999 -g} -p "$pid" -o "$OUT/perf-$system.data" 2>/dev/null &
    tracer=$!
  elif [[ -n ${STRACE:-} && $* != *filter* ]]; then
    strace -c -f -p "$pid" -o "$OUT/strace-$system.txt" 2>/dev/null &
    tracer=$!
    sleep 0.5 # attached to every thread before the first operation
  fi
  [[ -n $tracer ]] && started+=("$tracer")
  "$loadgen" run --system "$system" --proxy "127.0.0.1:${PROXY_PORT[$system]}" --pid "$pid" \
    --window "$WINDOW" --idle-tunnels "$idle_tunnels" "$@" >>"$OUT/results.jsonl"
  if [[ -n $tracer ]]; then
    kill -INT "$tracer"
    wait "$tracer" || true
  fi
  kill -0 "$pid" 2>/dev/null || log "warning: $system exited during the run ($*)"
  stop_pid "$pid"
}

allowlist() { # dir entries hits...
  local dir=$1 entries=$2
  shift 2
  mkdir -p "$dir"
  "$loadgen" allowlist --out-dir "$dir" --entries "$entries" "${@/#/--hit=}"
}

inside() {
  trap cleanup EXIT
  ip link set lo up
  # Private network namespace: widening the ephemeral range touches only it. It stays
  # above the fixed ports, which an outgoing connection could otherwise hold.
  sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
  work=$(mktemp -d /tmp/bench-compare.XXXXXX)
  chmod 755 "$work"
  printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 echo.bench.test http.bench.test\n' \
    >"$work/hosts"
  chmod 644 "$work/hosts"
  mount --bind "$work/hosts" /etc/hosts
  ulimit -n "$(ulimit -Hn)"
  # Each idle tunnel costs the proxy two descriptors; stay under the limit.
  local most=$(( ($(ulimit -n) - 200) / 2 / 1000 * 1000 ))
  ((most > 10000)) && most=10000
  idle_tunnels="1000,$most"

  : >"$OUT/results.jsonl"
  # Rates and latencies suffer when other work shares the cores; the table says so.
  load_before=$(cut -d" " -f1-3 /proc/loadavg)
  "$loadgen" serve --echo "127.0.0.1:$ECHO_PORT" --http "127.0.0.1:$HTTP_PORT" \
    2>"$work/upstreams.log" &
  local upstreams=$!
  started+=("$upstreams")
  if ! wait_port "$ECHO_PORT" "$upstreams" || ! wait_port "$HTTP_PORT" "$upstreams"; then
    die "upstreams did not start"
  fi

  local system n
  for system in $SYSTEMS; do
    log "== $system"
    allowlist "$work/$system-base" 2 echo.bench.test http.bench.test
    measure "$system" "$work/$system-base" --tests "$TESTS" || { log "skipping $system"; continue; }
    [[ $system == direct ]] && continue
    for n in $FILTER_SIZES; do
      allowlist "$work/$system-$n" "$n" echo.bench.test
      measure "$system" "$work/$system-$n" --tests filter --entries "$n" \
        || log "$system: filter test with $n entries failed"
    done
  done

  {
    echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores," \
      "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r);" \
      "$(tinyproxy -v 2>&1 | head -1), $(squid -v | head -1 | sed 's/ for .*//');" \
      "sandbox-proxy ${SANDBOX_PROXY:-$BUILD release build};" \
      "logging $LOGGING; window $WINDOW per test; idle tunnels $idle_tunnels (descriptor limit $(ulimit -n));" \
      "load average before the run: $load_before."
    echo
    "$loadgen" report "$OUT/results.jsonl"
  } | tee "$OUT/table.md"
}

if [[ "${1:-}" == --inside ]]; then
  inside
else
  outside
fi
