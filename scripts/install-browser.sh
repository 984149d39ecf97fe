#!/usr/bin/env bash
# Installs what the browser tests (tests/ui/test_browser_*.py) need from Debian: Chromium and the Noto CJK
# fonts (Korean and Chinese screens). Playwright drives this Chromium through its pip-installed driver,
# so no browser is ever downloaded. Idempotent: apt-get runs only for what is missing.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
  [ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto/NotoSansCJK* >/dev/null 2>&1 \
    || missing+=(fonts-noto-cjk)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "browser test prerequisites present: /usr/bin/chromium and fonts-noto-cjk"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi

echo "installing from Debian: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
[ -x /usr/bin/chromium ] || { echo "apt-get finished but /usr/bin/chromium is still missing" >&2; exit 1; }
/usr/bin/chromium --version
