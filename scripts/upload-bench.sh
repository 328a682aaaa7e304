#!/usr/bin/env bash
# Upload throughput: one 1 GiB file in one PATCH over loopback, to Edge and
# to tusd's own binary (v2.9.1), each on a fresh store in the same directory
# tree, one after the other, RUNS times each. Edge computes the SHA-256 as
# the bytes arrive; tusd does not. Needs tusd on PATH or in $TUSD
# (go install github.com/tus/tusd/v2/cmd/tusd@v2.9.1).
set -euo pipefail
cd "$(dirname "$0")/.."
tusd=${TUSD:-$(command -v tusd || echo "$HOME/go/bin/tusd")}
size=${SIZE:-1073741824}
runs=${RUNS:-3}
work=$(mktemp -d /tmp/upload-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o bin/edge ./cmd/edge
go build -o bin/edgectl ./cmd/edgectl
head -c "$size" /dev/urandom > "$work/file"
export EDGE_AUTH_HMAC_SECRETS=upload-bench-secret-0123456789abcdef0123
token=$(bin/edgectl token --config "" --sub bench --ttl 1h)

# upload URL AUTH: create, then PATCH the whole file; prints MiB/s.
upload() {
  local loc start end
  loc=$(curl -sS -D - -o /dev/null -X POST "$1" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" ${2:+-H "$2"} \
    | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  case $loc in http*) ;; *) echo "no Location from $1" >&2; exit 1;; esac
  start=$(date +%s.%N)
  # -T streams the file (--data-binary would read it into memory first).
  local code
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "$loc" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' ${2:+-H "$2"} -T "$work/file")
  end=$(date +%s.%N)
  [ "$code" = 204 ] || { echo "PATCH to $loc answered $code" >&2; exit 1; }
  echo "$end $start $size" | awk '{printf "%.0f MiB/s\n", $3/1048576/($1-$2)}'
}

for i in $(seq "$runs"); do
  rm -rf "$work/edge" "$work/tusd"
  EDGE_LOG_LEVEL=warn EDGE_HTTP_ADDR=127.0.0.1:18090 EDGE_UPLOADS_DIR="$work/edge" \
    EDGE_UPLOADS_MAX_SIZE=$((size * 2)) bin/edge --config "" & epid=$!
  "$tusd" -host 127.0.0.1 -port 18091 -upload-dir "$work/tusd" -base-path /files/ >/dev/null 2>&1 & tpid=$!
  for _ in $(seq 50); do
    curl -sf http://127.0.0.1:18090/healthz >/dev/null 2>&1 && curl -s http://127.0.0.1:18091/files/ >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "run $i: edge $(upload http://127.0.0.1:18090/v1/uploads/ "Authorization: Bearer $token")  tusd $(upload http://127.0.0.1:18091/files/)"
  kill "$epid" "$tpid"; wait "$epid" "$tpid" 2>/dev/null || true
done
