#!/usr/bin/env bash
# Installs what the browser tests and the viewer need, and checks it: Debian's chromium
# (apt; the tests drive /usr/bin/chromium, never a downloaded browser), rrweb into
# viewer/node_modules and playwright-core into tests/browser/node_modules (npm ci, from the
# committed lock files). Idempotent. Fails loudly, naming what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "install-browser: $*" >&2; exit 1; }

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  command -v apt-get >/dev/null || fail "$chromium is missing and there is no apt-get to install Debian's chromium"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || fail "$chromium is missing; installing it needs root (apt-get install chromium)"
    sudo=sudo
  fi
  echo "install-browser: installing Debian's chromium"
  $sudo apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium \
    || fail "apt-get install chromium failed"
fi
"$chromium" --version >/dev/null 2>&1 || fail "$chromium does not run"

command -v node >/dev/null || fail "node is required (Node.js 18+)"
command -v npm >/dev/null || fail "npm is required"
for dir in viewer tests/browser; do
  stamp="$root/$dir/node_modules/.rrstitch-lock"
  if ! cmp -s "$root/$dir/package-lock.json" "$stamp" 2>/dev/null; then
    (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in $dir failed"
    cp "$root/$dir/package-lock.json" "$stamp"
  fi
done
[ -f "$root/viewer/node_modules/rrweb/dist/rrweb.umd.min.cjs" ] || fail "rrweb's dist is missing from viewer/node_modules"
[ -d "$root/tests/browser/node_modules/playwright-core" ] || fail "playwright-core is missing from tests/browser/node_modules"
echo "install-browser: $("$chromium" --version 2>/dev/null), rrweb $(node -p "require('$root/viewer/node_modules/rrweb/package.json').version"), playwright-core $(node -p "require('$root/tests/browser/node_modules/playwright-core/package.json').version")"
