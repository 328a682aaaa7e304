#!/usr/bin/env bash
# Runs the issue's load scenarios against a fresh server each: the server
# pinned to core 0 with GOMAXPROCS=1, edgectl bench on core 1, Redis broker
# (the machine's redis-server on 127.0.0.1:6379 unless REDIS_ADDR says
# otherwise). Prints each report; docs/BENCHMARKS.md records them.
#
#   scripts/bench.sh                 all scenarios
#   scripts/bench.sh idle fanout     some of them (idle, fanout, burst, h2c)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/edge ./cmd/edge
go build -o bin/edgectl ./cmd/edgectl

port=${PORT:-18080}
redis=${REDIS_ADDR:-127.0.0.1:6379}
export EDGE_AUTH_HMAC_SECRETS=${EDGE_AUTH_HMAC_SECRETS:-bench-secret-0123456789abcdef0123456789}
# The load comes from one user on one address: lift the abuse limits.
export EDGE_LIMITS_STREAMS_PER_USER=20000 EDGE_LIMITS_STREAMS_PER_IP=20000
export EDGE_LIMITS_PUBLISH_RATE=100000 EDGE_LIMITS_PUBLISH_BURST=100000
EDGE_TOKEN=$(bin/edgectl token --config "" --sub bench --subscribe '*' --publish '*' --ttl 2h)
export EDGE_TOKEN

run() {
  local name=$1; shift
  echo "== $name: edgectl bench $*"
  redis-cli -h "${redis%:*}" -p "${redis#*:}" del 'edge:{bench}:meta' 'edge:{bench}:log' >/dev/null
  EDGE_LOG_LEVEL=warn EDGE_REDIS_ADDRS=$redis EDGE_HTTP_ADDR=127.0.0.1:$port \
    EDGE_HTTP_H2C=true EDGE_HTTP_DRAIN_TIMEOUT=1s GOMAXPROCS=1 \
    taskset -c 0 bin/edge --config "" &
  local pid=$!
  bin/edgectl health --server "http://127.0.0.1:$port" >/dev/null 2>&1 || sleep 1
  for _ in $(seq 50); do bin/edgectl health --server "http://127.0.0.1:$port" >/dev/null 2>&1 && break; sleep 0.1; done
  taskset -c 1 bin/edgectl bench --server "http://127.0.0.1:$port" --pid "$pid" "$@" || true
  kill "$pid"; wait "$pid" || true
}

scenarios=${*:-idle fanout burst h2c}
for s in $scenarios; do
  case $s in
    idle)   run "10,000 idle HTTP/1.1 streams" --streams 10000 --sources 4 --events 20 --rate 20 ;;
    fanout) run "20 events/s to 10,000 HTTP/1.1 streams" --streams 10000 --sources 4 --events 200 --rate 20 --publishers 4 ;;
    burst)  run "2,000 events at 1,000/s to 1,000 streams" --streams 1000 --events 2000 --rate 1000 --publishers 128 ;;
    h2c)    run "20 events/s to 10,000 h2c streams" --streams 10000 --proto h2c --events 200 --rate 20 --publishers 4 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
