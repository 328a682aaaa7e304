#!/usr/bin/env bash
# Upload throughput: a 1 GiB file in one PATCH over loopback, to Edge and to
# tusd's own binary (v2.9.1), each storing in its own directory of one
# tree. Both servers run throughout; the uploads alternate between them,
# ROUNDS rounds of one each, the first of a round alternating too, so that
# neither always meets a warmer or a fuller page cache. Edge computes the
# SHA-256 as the bytes arrive; tusd does not. Prints each round, then the
# median and mean of each and their ratio.
#
# On this kind of virtual machine single uploads vary by a factor of two
# for both servers alike (the host, not the server: the same binary on the
# same file); only many rounds give a figure. BENCH_DIR=/dev/shm keeps the
# disk's writeback out of it. Needs tusd on PATH or in $TUSD
# (go install github.com/tus/tusd/v2/cmd/tusd@v2.9.1).
set -euo pipefail
cd "$(dirname "$0")/.."
tusd=${TUSD:-$(command -v tusd || echo "$HOME/go/bin/tusd")}
size=${SIZE:-1073741824}
rounds=${ROUNDS:-20}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/upload-bench.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# EDGE_BIN runs another build of Edge (an older commit's, to compare).
edge_bin=${EDGE_BIN:-bin/edge}
[ -n "${EDGE_BIN:-}" ] || go build -o bin/edge ./cmd/edge
go build -o bin/edgectl ./cmd/edgectl
head -c "$size" /dev/urandom > "$work/file"
export EDGE_AUTH_HMAC_SECRETS=upload-bench-secret-0123456789abcdef0123
token=$(bin/edgectl token --config "" --sub bench --ttl 1h)

# Limits lifted so that the rounds' finished uploads, removed between
# rounds, never trip a quota.
EDGE_LOG_LEVEL=warn EDGE_HTTP_ADDR=127.0.0.1:18090 EDGE_UPLOADS_DIR="$work/edge" \
  EDGE_UPLOADS_MAX_SIZE=$((size * 2)) EDGE_UPLOADS_MAX_BYTES_PER_USER=$((size * 4)) \
  "$edge_bin" --config "" &
"$tusd" -host 127.0.0.1 -port 18091 -upload-dir "$work/tusd" -base-path /files/ >/dev/null 2>&1 &
for _ in $(seq 100); do
  curl -sf http://127.0.0.1:18090/healthz >/dev/null 2>&1 && curl -s http://127.0.0.1:18091/files/ >/dev/null 2>&1 && break
  sleep 0.1
done

# upload URL AUTH: create, then PATCH the whole file; prints MiB/s and
# removes the upload's files.
upload() {
  local loc start end code
  loc=$(curl -sS -D - -o /dev/null -X POST "$1" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" ${2:+-H "$2"} \
    | tr -d '\r' | awk -F': ' 'tolower($1)=="location"{print $2}')
  case $loc in http*) ;; *) echo "no Location from $1" >&2; exit 1;; esac
  # Dirty pages of the previous upload must not be written back during
  # this one.
  sync
  start=$(date +%s.%N)
  # -T streams the file (--data-binary would read it into memory first).
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PATCH "$loc" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
    -H 'Content-Type: application/offset+octet-stream' ${2:+-H "$2"} -T "$work/file")
  end=$(date +%s.%N)
  [ "$code" = 204 ] || { echo "PATCH to $loc answered $code" >&2; exit 1; }
  rm -f "$work"/edge/[0-9a-f]* "$work"/tusd/[0-9a-f]*
  echo "$end $start $size" | awk '{printf "%.0f\n", $3/1048576/($1-$2)}'
}
edge() { upload http://127.0.0.1:18090/v1/uploads/ "Authorization: Bearer $token"; }
tusd() { upload http://127.0.0.1:18091/files/; }

# A server in service is warm: one upload each first, not counted (the
# first upload of a process also pays for its buffers and heap growth).
edge >/dev/null
tusd >/dev/null
: >"$work/edge.txt"
: >"$work/tusd.txt"
for i in $(seq "$rounds"); do
  if [ $((i % 2)) -eq 1 ]; then e=$(edge); t=$(tusd); else t=$(tusd); e=$(edge); fi
  echo "$e" >>"$work/edge.txt"
  echo "$t" >>"$work/tusd.txt"
  echo "round $i: edge $e MiB/s  tusd $t MiB/s"
done
stats() { sort -n "$1" | awk '{v[NR]=$1; s+=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.0f %.0f\n", m, s/NR}'; }
read -r em ea < <(stats "$work/edge.txt")
read -r tm ta < <(stats "$work/tusd.txt")
echo "median: edge $em MiB/s  tusd $tm MiB/s  ratio $(awk -v a="$em" -v b="$tm" 'BEGIN{printf "%.0f%%", 100*a/b}')"
echo "mean:   edge $ea MiB/s  tusd $ta MiB/s  ratio $(awk -v a="$ea" -v b="$ta" 'BEGIN{printf "%.0f%%", 100*a/b}')"
