#!/usr/bin/env bash
# Installs what the tests need and is missing, and nothing else: redis-server,
# chromium and curl from Debian (and gcc, which `go test -race` needs for
# cgo), tesseract with its English data, poppler-utils (pdftoppm) and
# ImageMagick with the DejaVu font for the OCR tests, versitygw (an S3
# server, from the Go module proxy) for the S3 store's tests, then the e2e/
# node modules (npm ci) unless they match package-lock.json already. Safe to run
# again; Go and node are expected to be there (the machine provides them).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'test-deps: %s\n' "$*"; }
die() { printf 'test-deps: ERROR: %s\n' "$*" >&2; exit 1; }

for tool in go node npm; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed; install it first (it is not an apt package here)"
done

# Debian packages, each with the check that proves it is there.
packages=(redis-server chromium curl gcc libc6-dev
  tesseract-ocr tesseract-ocr-eng poppler-utils imagemagick fonts-dejavu-core)
present() {
  local out
  case $1 in
    chromium) [ -x /usr/bin/chromium ] ;;
    gcc | libc6-dev) command -v gcc >/dev/null 2>&1 ;;
    tesseract-ocr) command -v tesseract >/dev/null 2>&1 ;;
    # Captured, not piped into grep -q: with pipefail, grep quitting early
    # can fail the pipe.
    tesseract-ocr-eng) out=$(tesseract --list-langs 2>/dev/null) && grep -qx eng <<<"$out" ;;
    poppler-utils) command -v pdftoppm >/dev/null 2>&1 ;;
    # Another convert on PATH (GraphicsMagick's, a stand-in) is not enough:
    # the tests draw text with ImageMagick's options.
    imagemagick) out=$(convert -version 2>/dev/null) && grep -q '^Version: ImageMagick' <<<"$out" ;;
    fonts-dejavu-core) [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
for pkg in "${packages[@]}"; do
  present "$pkg" || missing+=("$pkg")
done

# Another apt-get or dpkg run (unattended upgrades, an earlier background
# install) holds the dpkg lock: wait for it rather than fail or race it.
wait_for_apt() {
  local waited=0
  while pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1; do
    if [ "$waited" -eq 0 ]; then say "waiting for another apt-get/dpkg to finish"; fi
    if [ "$waited" -ge 900 ]; then die "another apt-get/dpkg is still running after 15 minutes"; fi
    sleep 5
    waited=$((waited + 5))
  done
}

if [ ${#missing[@]} -gt 0 ]; then
  wait_for_apt
  # The other run may have installed them meanwhile.
  still=()
  for pkg in "${missing[@]}"; do
    present "$pkg" || still+=("$pkg")
  done
  missing=("${still[@]+"${still[@]}"}")
fi

if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root: run 'sudo apt-get install ${missing[*]}'"
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and there is no apt-get on this machine"
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  apt-get update -qq || die "apt-get update failed"
  say "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null \
    || die "apt-get install ${missing[*]} failed"
else
  say "installed: ${packages[*]}"
fi

for pkg in "${packages[@]}"; do
  present "$pkg" || die "$pkg is still missing after the install"
done
# The chromium package's launcher is a shell script; make sure the browser
# behind it runs at all (a missing library shows here, not mid-test).
/usr/bin/chromium --headless --no-sandbox --disable-gpu --version >/dev/null 2>&1 \
  || die "/usr/bin/chromium is installed but does not run: $(/usr/bin/chromium --headless --no-sandbox --version 2>&1 | tail -1)"

# versitygw, the S3 server the S3 store's tests run against (see
# internal/s3test, whose Version this must equal): built from the Go module
# proxy into GOBIN, about a minute on a fresh machine.
versitygw_version=v1.8.0
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
if command -v versitygw >/dev/null 2>&1 || [ -x "$gobin/versitygw" ]; then
  say "installed: versitygw"
else
  say "go install versitygw@$versitygw_version"
  go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version" \
    || die "go install github.com/versity/versitygw/cmd/versitygw@$versitygw_version failed"
fi

# node modules: npm ci when node_modules does not match the lockfile. npm
# writes node_modules/.package-lock.json on install; identical to the lockfile
# (bar its own header) means up to date.
cd "$root/e2e"
[ -f package-lock.json ] || die "e2e/package-lock.json is missing"
up_to_date() {
  [ -f node_modules/.package-lock.json ] || return 1
  node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json")).packages;
    const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json")).packages;
    for (const [k, v] of Object.entries(want)) {
      if (k === "") continue;
      if (!have[k] || have[k].version !== v.version || have[k].integrity !== v.integrity) process.exit(1);
    }
    for (const k of Object.keys(have)) if (!(k in want)) process.exit(1);
  ' 2>/dev/null
}
if up_to_date; then
  say "e2e/node_modules matches package-lock.json"
else
  say "npm ci in e2e/"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci in e2e/ failed"
fi
say "ok"
