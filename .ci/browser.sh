#!/usr/bin/env bash
# Headless Chromium and playwright-core for the web page's browser test: installs Debian's
# chromium (and Node.js when missing) and the locked node package, then prints Chromium's path.
# Idempotent and quiet; everything but the path goes to standard error.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "missing ${need[*]} and apt-get is not available: install them" >&2
    exit 1
  fi
  as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  $as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
(cd crates/visage-server/browser &&
  { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2; }) ||
  { echo "npm ci failed in crates/visage-server/browser" >&2; exit 1; }
command -v chromium
