#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver and etcd) from their published Go modules at the
# versions pinned in versions.env, once, into ~/.cache/pve-operator/envtest/<versions>/, and prints
# that directory as the last line of stdout. Later runs reuse the cached binaries.
#
# Users who already have envtest binaries skip the build with the standard envtest variables:
#   KUBEBUILDER_ASSETS=/dir/with/kube-apiserver/and/etcd
#   TEST_ASSET_KUBE_APISERVER=/path/kube-apiserver TEST_ASSET_ETCD=/path/etcd
#
# Usage: hack/envtest/build.sh          build (or reuse) and print the asset directory
#        hack/envtest/build.sh pin      regenerate kube-apiserver/go.mod and go.sum after a version change
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

say() { printf '[envtest] %s\n' "$*" >&2; }
die() { printf '[envtest] error: %s\n' "$*" >&2; exit 1; }

if [[ -n "${TEST_ASSET_KUBE_APISERVER:-}" && -n "${TEST_ASSET_ETCD:-}" ]]; then
  [[ -x "$TEST_ASSET_KUBE_APISERVER" ]] || die "TEST_ASSET_KUBE_APISERVER=$TEST_ASSET_KUBE_APISERVER is not an executable file"
  [[ -x "$TEST_ASSET_ETCD" ]] || die "TEST_ASSET_ETCD=$TEST_ASSET_ETCD is not an executable file"
  say "using TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD; nothing to build"
  dirname "$TEST_ASSET_KUBE_APISERVER"
  exit 0
fi
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for bin in kube-apiserver etcd; do
    [[ -x "$KUBEBUILDER_ASSETS/$bin" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$bin'; unset it to build the pinned versions"
  done
  say "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS; nothing to build"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed, and it is needed once to build kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION for the tests.
  Install Go 1.24 or newer (https://go.dev/dl/, or 'apt-get install golang-go' on Debian/Ubuntu), or point
  KUBEBUILDER_ASSETS at a directory that already holds kube-apiserver and etcd (for example the output of
  'setup-envtest use ${KUBE_VERSION#v} -p path'), or set TEST_ASSET_KUBE_APISERVER and TEST_ASSET_ETCD."
}

if [[ "${1:-}" == pin ]]; then
  require_go
  minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  staging="v0.${KUBE_VERSION#v1.}"
  mod_url="https://proxy.golang.org/k8s.io/kubernetes/@v/$KUBE_VERSION.mod"
  modules=$(curl -fsS "$mod_url" | sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p')
  [[ -n "$modules" ]] || die "could not read the staging modules from $mod_url"
  {
    echo "// Wrapper module that builds kube-apiserver from k8s.io/kubernetes $KUBE_VERSION."
    echo "// k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths,"
    echo "// which do not apply to dependents; the replace block pins each to its published $staging release."
    echo "// Regenerate with 'hack/envtest/build.sh pin' after changing versions.env."
    echo "module pve-operator.dev/envtest/kube-apiserver"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    for m in $modules; do printf '\t%s => %s %s\n' "$m" "$m" "$staging"; done
    echo ")"
  } >"$here/kube-apiserver/go.mod"
  sed -i "s#^require go.etcd.io/etcd/server/v3 .*#require go.etcd.io/etcd/server/v3 $ETCD_VERSION#" "$here/etcd/go.mod"
  (cd "$here/kube-apiserver" && go mod tidy) && (cd "$here/etcd" && go mod tidy)
  say "pinned kube-apiserver $KUBE_VERSION (staging $staging, Kubernetes 1.$minor) and etcd $ETCD_VERSION"
  exit 0
fi

cache_root=${PVE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-operator}
dest="$cache_root/envtest/kube-apiserver-$KUBE_VERSION-etcd-$ETCD_VERSION"
# The stamp ties the cached binaries to the exact module pins; editing go.mod/go.sum rebuilds.
stamp=$(cat "$here/versions.env" "$here"/kube-apiserver/go.{mod,sum} "$here"/etcd/go.{mod,sum} "$here/etcd/main.go" "$0" | sha256sum | cut -c1-16)

if [[ -x "$dest/kube-apiserver" && -x "$dest/etcd" && "$(cat "$dest/.stamp" 2>/dev/null)" == "$stamp" ]]; then
  say "reusing cached kube-apiserver $KUBE_VERSION and etcd $ETCD_VERSION in $dest"
  echo "$dest"
  exit 0
fi

require_go
mkdir -p "$cache_root/envtest"
# One build at a time: parallel test processes wait for the first one instead of racing it.
exec 9>"$cache_root/envtest/.build.lock"
if ! flock -n 9; then
  say "another build is running; waiting for it"
  flock 9
  if [[ -x "$dest/kube-apiserver" && -x "$dest/etcd" && "$(cat "$dest/.stamp" 2>/dev/null)" == "$stamp" ]]; then
    echo "$dest"
    exit 0
  fi
fi

work=$(mktemp -d "$cache_root/envtest/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# Runs a go command, showing a running count of compiled packages instead of thousands of names,
# and the tail of the full log when it fails.
go_with_progress() {
  local what=$1; shift
  local log="$work/$what.log"
  say "$what: go $*"
  if ! go "$@" 2>&1 | tee "$log" | awk -v what="$what" '
      { n++; if (n % 100 == 0) { printf "[envtest] %s: %d packages...\n", what, n > "/dev/stderr"; fflush("/dev/stderr") } }
      END { printf "[envtest] %s: %d packages done\n", what, n > "/dev/stderr" }'; then
    tail -n 40 "$log" >&2
    die "$what failed (full log above); check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY))"
  fi
}

build_date=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
version_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  version_flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

say "building etcd $ETCD_VERSION and kube-apiserver $KUBE_VERSION into $dest (first time only; a few minutes)"
(cd "$here/etcd" && go_with_progress etcd build -trimpath -v -ldflags "-s -w" -o "$work/etcd" .)
say "etcd built after $((SECONDS - started))s"
(cd "$here/kube-apiserver" && go_with_progress kube-apiserver build -trimpath -v \
  -ldflags "-s -w$version_flags" -o "$work/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
say "kube-apiserver built after $((SECONDS - started))s"

got=$("$work/kube-apiserver" --version)
[[ "$got" == "Kubernetes $KUBE_VERSION" ]] || die "kube-apiserver reports '$got', expected 'Kubernetes $KUBE_VERSION'"
mkdir -p "$dest"
rm -f "$dest/.stamp"
mv -f "$work/kube-apiserver" "$work/etcd" "$dest/"
echo "$stamp" >"$dest/.stamp" # written last: a half-finished install never looks complete
say "done in $((SECONDS - started))s: $dest"
echo "$dest"
