#!/usr/bin/env bash
# Installs what ftbackup needs to build, test and demo, if missing (Debian/Ubuntu, apt).
# Root installs directly; other users go through `sudo -n` when it is available.
set -euo pipefail
# time: GNU time measures the S3 upload test's peak memory.
# chromium: only the compliance report's HTML rendering test needs it (about 21 s with --no-install-recommends).
# python3-venv: the encryption test cross-checks ftbackup's format with Google's own Tink (tink on PyPI, below).
packages=(pkg-config libpq-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev postgresql postgresql-contrib zstd openssl time chromium prometheus python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Tink's Python package (the reference implementation of the streaming AEAD format ftbackup uses) in a venv of
# the project's own, .scratch/tink-venv (about 7 s with pip's cache empty); the encryption test runs its python.
install_tink() {
  local root venv
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.scratch/tink-venv"
  "$venv/bin/python" -c 'import tink.streaming_aead' 2>/dev/null && return 0
  echo "installing: tink 1.16.1 (PyPI) into $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check tink==1.16.1
}

# moto's S3 server mode (the tests' S3-compatible store, scripts/scratch-s3.sh) and botocore (which signs the
# same requests as ftbackup's SigV4 signer in a test) in .scratch/s3-venv.
install_moto() {
  local root venv
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.scratch/s3-venv"
  "$venv/bin/python" -c 'import moto, botocore, flask' 2>/dev/null && return 0
  echo "installing: moto[server] 5.2.5, botocore 1.44.5 (PyPI) into $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.2.5' botocore==1.44.5
}

if [ ${#missing[@]} -eq 0 ]; then install_tink; install_moto; exit 0; fi
echo "installing: ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "error: missing packages ${missing[*]} and no root or passwordless sudo to install them (hint: apt-get install ${missing[*]})" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's postgresql package would start a cluster of its own; ftbackup's scripts start their own instead.
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_tink
install_moto
