#!/usr/bin/env bash
# Builds helm and kustomize from their published Go modules at the versions pinned in
# versions.env, once, into ~/.cache/pve-operator/deploy-tools/<versions>/, and prints that
# directory as the last line of stdout. Later runs reuse the cached binaries. The tests of the
# Helm chart and the kustomize base (tests/e2e/deploy/) use them.
#
# Users who already have the tools skip the build:
#   PVE_OPERATOR_DEPLOY_TOOLS=/dir/with/helm/and/kustomize
#
# Usage: hack/helm/build.sh          build (or reuse) and print the tools directory
#        hack/helm/build.sh pin      regenerate tools/go.mod and go.sum after a version change
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

say() { printf '[helm] %s\n' "$*" >&2; }
die() { printf '[helm] error: %s\n' "$*" >&2; exit 1; }

if [[ -n "${PVE_OPERATOR_DEPLOY_TOOLS:-}" ]]; then
  for bin in helm kustomize; do
    [[ -x "$PVE_OPERATOR_DEPLOY_TOOLS/$bin" ]] || die "PVE_OPERATOR_DEPLOY_TOOLS=$PVE_OPERATOR_DEPLOY_TOOLS has no executable '$bin'; unset it to build the pinned versions"
  done
  say "using PVE_OPERATOR_DEPLOY_TOOLS=$PVE_OPERATOR_DEPLOY_TOOLS; nothing to build"
  echo "$PVE_OPERATOR_DEPLOY_TOOLS"
  exit 0
fi

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed, and it is needed once to build helm $HELM_VERSION and kustomize $KUSTOMIZE_VERSION for the tests.
  Install Go 1.26 or newer (https://go.dev/dl/, or 'apt-get install golang-go' on a recent Debian/Ubuntu), or point
  PVE_OPERATOR_DEPLOY_TOOLS at a directory that already holds 'helm' (v4) and 'kustomize' (v5)."
  local have
  have=$(go env GOVERSION 2>/dev/null || true); have=${have#go}
  if [[ "$(printf '%s\n1.26\n' "$have" | sort -V | head -n 1)" != 1.26 && "$(go env GOTOOLCHAIN)" == local ]]; then
    die "Go $have is too old to build helm $HELM_VERSION (it needs Go 1.26 or newer); install a newer Go, unset GOTOOLCHAIN=local so that Go fetches the toolchain it needs, or set PVE_OPERATOR_DEPLOY_TOOLS"
  fi
}

if [[ "${1:-}" == pin ]]; then
  require_go
  sed -i -e "s#^\t*helm.sh/helm/v4 .*#\thelm.sh/helm/v4 $HELM_VERSION#" \
    -e "s#^\t*sigs.k8s.io/kustomize/kustomize/v5 v.*#\tsigs.k8s.io/kustomize/kustomize/v5 $KUSTOMIZE_VERSION#" "$here/tools/go.mod"
  (cd "$here/tools" && GOFLAGS=-mod=mod go mod tidy)
  say "pinned helm $HELM_VERSION and kustomize $KUSTOMIZE_VERSION"
  exit 0
fi

cache_root=${PVE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-operator}
dest="$cache_root/deploy-tools/helm-$HELM_VERSION-kustomize-$KUSTOMIZE_VERSION"
# The stamp ties the cached binaries to the exact module pins; editing go.mod/go.sum rebuilds.
stamp=$(cat "$here/versions.env" "$here"/tools/go.{mod,sum} "$here/tools/tools.go" "$0" | sha256sum | cut -c1-16)

cached() { [[ -x "$dest/helm" && -x "$dest/kustomize" && "$(cat "$dest/.stamp" 2>/dev/null)" == "$stamp" ]]; }

if cached; then
  say "reusing cached helm $HELM_VERSION and kustomize $KUSTOMIZE_VERSION in $dest"
  echo "$dest"
  exit 0
fi

require_go
mkdir -p "$cache_root/deploy-tools"
# One build at a time: parallel test processes wait for the first one instead of racing it.
exec 9>"$cache_root/deploy-tools/.build.lock"
if ! flock -n 9; then
  say "another build is running; waiting for it"
  flock 9
  if cached; then
    echo "$dest"
    exit 0
  fi
fi

work=$(mktemp -d "$cache_root/deploy-tools/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# Runs a go command, showing a running count of compiled packages instead of hundreds of names,
# and the tail of the full log when it fails.
go_with_progress() {
  local what=$1; shift
  local log="$work/$what.log"
  say "$what: go $*"
  if ! go "$@" 2>&1 | tee "$log" | awk -v what="$what" '
      { n++; if (n % 100 == 0) { printf "[helm] %s: %d packages...\n", what, n > "/dev/stderr"; fflush("/dev/stderr") } }
      END { printf "[helm] %s: %d packages done\n", what, n > "/dev/stderr" }'; then
    tail -n 40 "$log" >&2
    die "$what failed (full log above); check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))"
  fi
}

say "building helm $HELM_VERSION and kustomize $KUSTOMIZE_VERSION into $dest (first time only; a few minutes)"
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION"
ldflags+=" -X sigs.k8s.io/kustomize/api/provenance.version=kustomize/$KUSTOMIZE_VERSION"
# One build for both: they share most of their packages, which are compiled once.
(cd "$here/tools" && go_with_progress helm+kustomize build -trimpath -v -ldflags "$ldflags" -o "$work/" \
  helm.sh/helm/v4/cmd/helm sigs.k8s.io/kustomize/kustomize/v5)
say "built after $((SECONDS - started))s"

got=$("$work/helm" version --template '{{.Version}}')
[[ "$got" == "$HELM_VERSION" ]] || die "helm reports version '$got', expected '$HELM_VERSION'"
got=$("$work/kustomize" version)
[[ "$got" == *"$KUSTOMIZE_VERSION"* ]] || die "kustomize reports version '$got', expected '$KUSTOMIZE_VERSION'"
mkdir -p "$dest"
rm -f "$dest/.stamp"
mv -f "$work/helm" "$work/kustomize" "$dest/"
echo "$stamp" >"$dest/.stamp" # written last: a half-finished install never looks complete
say "done in $((SECONDS - started))s: $dest"
echo "$dest"
