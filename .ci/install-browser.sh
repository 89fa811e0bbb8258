#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the report's browser test (tests/browser), from
# Debian's packages. Idempotent: does nothing when both are already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation \
    fonts-dejavu-core
/usr/bin/chromium --version
