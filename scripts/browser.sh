#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the dashboard's browser test (playwright-core
# drives it through executablePath; Playwright's own browser download does not work here).
set -euo pipefail
if command -v chromium > /dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium is missing: install Debian's package (sudo apt-get install -y chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq > /dev/null || true
apt-get install -y -qq --no-install-recommends chromium > /dev/null
command -v chromium
