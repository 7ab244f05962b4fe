#!/usr/bin/env bash
# The browser test drives Debian's Chromium with Playwright (Playwright cannot download its own here).
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian's chromium for the browser test" >&2
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
else
  echo "setup: install chromium (e.g. apt-get install chromium) for the browser test; it will be skipped" >&2
fi
