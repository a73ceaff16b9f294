#!/usr/bin/env bash
# Installs what ftbackup needs to build, test and demo, if missing (Debian/Ubuntu, apt).
# Root installs directly; other users go through `sudo -n` when it is available.
set -euo pipefail
# chromium: only the compliance report's HTML rendering test needs it (about 21 s with --no-install-recommends).
packages=(pkg-config libpq-dev libzstd-dev zlib1g-dev postgresql postgresql-contrib zstd openssl chromium prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "error: missing packages ${missing[*]} and no root or passwordless sudo to install them (hint: apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql package would start a cluster of its own; ftbackup's scripts start their own instead.
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
