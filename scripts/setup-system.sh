#!/usr/bin/env bash
# Installs the Debian packages the test suite needs from the system, when missing:
#   chromium         the browser tests/integration/console.test.ts drives (playwright-core,
#                    executablePath /usr/bin/chromium; Playwright's own browser download is not used)
#   openssh-server   sshd, for the SFTP source test (the test starts its own sshd on a free port)
# Everything else comes from npm or `npm run provision`.
#
# Idempotent and non-interactive: installed packages are left alone, and apt-get runs only when
# something is missing. Needs root (or sudo) and a Debian/Ubuntu apt.
set -euo pipefail

PACKAGES=(chromium openssh-server)

log() { printf '[setup-system] %s\n' "$*" >&2; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
  log "apt-get not found: install ${PACKAGES[*]} with your system's package manager"
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    log "need root to install ${missing[*]}: run this script as root, or install sudo"
    exit 1
  fi

  # Package scripts must not start services here (sshd on port 22 of a container or CI runner): a
  # policy-rc.d answering 101 is Debian's way to say so. One that exists already is left as it is;
  # the one created here is removed on exit.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    ${as_root[@]+"${as_root[@]}"} sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    trap '${as_root[@]+"${as_root[@]}"} rm -f "$policy"' EXIT
  fi

  log "installing ${missing[*]}"
  ${as_root[@]+"${as_root[@]}"} apt-get update -q
  ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

for pkg in "${PACKAGES[@]}"; do
  if ! installed "$pkg"; then
    log "$pkg is still not installed"
    exit 1
  fi
done

echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null | head -n1))"
echo "sshd:     $(command -v sshd || echo /usr/sbin/sshd)"
