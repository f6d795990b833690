#!/usr/bin/env bash
# Builds the controller image from deploy/Dockerfile and checks it for real:
#   1. the image runs as uid/gid 65532 and has no shell;
#   2. the binary starts in it with a read-only root filesystem, every capability dropped and
#      no-new-privileges (what the Helm chart's securityContext sets);
#   3. the containerised controller, given only a kubeconfig and a Proxmox config, brings the
#      four examples of deploy/examples to Ready in `pve-operator demo --external-controller`
#      (a real kube-apiserver and the Proxmox simulator on this host);
#   4. `docker stop` (SIGTERM) ends it cleanly, with exit code 0, and its logs hold no password.
#
# It needs a running Docker engine with BuildKit. It is not part of hack/test.sh: CI machines
# have no Docker engine.
#
# Where Docker Hub and gcr.io cannot be reached, the two base images of the Dockerfile are
# replaced by stand-ins built here (cached in ~/.cache/pve-operator/image/):
#   - for rust:1-bookworm: Debian bookworm from debootstrap with gcc, plus this machine's Rust
#     toolchain (`rustc --print sysroot`) and CA bundle;
#   - for gcr.io/distroless/cc-debian12:nonroot: what distroless puts in that image, extracted
#     from the same Debian packages (base-files, netbase, tzdata, libc6, libgcc-s1, libstdc++6,
#     libssl3), the CA bundle, and the nonroot user; no shell, no package manager.
# LOCAL_BASES=1 forces the stand-ins; LOCAL_BASES=0 forbids them.
#
# Usage: hack/image/verify.sh            (IMAGE=name:tag to choose the tag; DOCKER=path/to/docker)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
docker=${DOCKER:-docker}
image=${IMAGE:-pve-operator:verify}
cache=${PVE_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pve-operator}/image
builder_image=rust:1-bookworm
runtime_image=gcr.io/distroless/cc-debian12:nonroot
local_builder=pve-operator-local/rust:1-bookworm
local_runtime=pve-operator-local/distroless-cc-debian12:nonroot
host_ca_bundle=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}

say() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

"$docker" info >/dev/null 2>&1 || die "no Docker engine answers ('$docker info' failed); start dockerd, or set DOCKER to a client that reaches one"

# --- base images ---------------------------------------------------------------------------

registry_reachable() {
  timeout 60 "$docker" pull -q "$builder_image" >/dev/null 2>&1 &&
    timeout 60 "$docker" pull -q "$runtime_image" >/dev/null 2>&1
}

build_local_builder() {
  local sysroot stamp rootfs
  sysroot=$(rustc --print sysroot) || die "rustc is needed for the stand-in builder image"
  stamp=$({ rustc --version; cat "$host_ca_bundle"; } | sha256sum | cut -c1-16)
  if [[ "$("$docker" image inspect -f '{{index .Config.Labels "stamp"}}' "$local_builder" 2>/dev/null)" == "$stamp" ]]; then
    say "reusing $local_builder ($(rustc --version))"
    return
  fi
  command -v debootstrap >/dev/null || die "debootstrap is needed for the stand-in builder image (apt-get install debootstrap)"
  rootfs="$cache/builder-rootfs"
  if [[ ! -x "$rootfs/usr/bin/gcc" ]]; then
    say "debootstrap: Debian bookworm with gcc into $rootfs"
    rm -rf "$rootfs"
    mkdir -p "$cache"
    debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates,make,pkg-config \
      bookworm "$rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $cache/debootstrap.log"
  fi
  # This machine's trust store: where crates.io is reached through an intercepting proxy, its CA
  # is there, and cargo inside the build needs it.
  cp "$host_ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  say "adding $(rustc --version) from $sysroot"
  rm -rf "$rootfs/usr/local/rust"
  mkdir -p "$rootfs/usr/local/rust" "$rootfs/usr/local/cargo"
  tar -C "$sysroot" --exclude=share/doc -cf - . | tar -C "$rootfs/usr/local/rust" -xf -
  tar -C "$rootfs" -cf - . | "$docker" import \
    -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV CARGO_HOME=/usr/local/cargo' \
    -c "LABEL stamp=$stamp" - "$local_builder" >/dev/null
}

build_local_runtime() {
  local rootfs debs stamp
  stamp=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
  if [[ "$("$docker" image inspect -f '{{index .Config.Labels "stamp"}}' "$local_runtime" 2>/dev/null)" == "$stamp" ]]; then
    say "reusing $local_runtime"
    return
  fi
  rootfs=$(mktemp -d)
  debs=$(mktemp -d)
  trap 'rm -rf "$rootfs" "$debs"' RETURN
  say "extracting distroless/cc's Debian packages into a stand-in runtime image"
  (cd "$debs" && apt-get -o APT::Sandbox::User=root download base-files netbase tzdata libc6 libgcc-s1 libstdc++6 libssl3 >/dev/null) ||
    die "apt-get download of the runtime packages failed"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
  rm -rf "$rootfs/usr/share/doc" "$rootfs/usr/share/man" "$rootfs/usr/share/lintian"
  mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home/nonroot"
  cp "$host_ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  chmod 1777 "$rootfs/tmp"
  chown 65532:65532 "$rootfs/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
  [[ ! -e "$rootfs/bin/sh" && ! -e "$rootfs/usr/bin/sh" ]] || die "the stand-in runtime image would have a shell"
  tar -C "$rootfs" -cf - . | "$docker" import -c 'USER 65532:65532' -c 'WORKDIR /home/nonroot' \
    -c "LABEL stamp=$stamp" - "$local_runtime" >/dev/null
}

case "${LOCAL_BASES:-auto}" in
  1) use_local=1 ;;
  0) use_local=0 ;;
  *) if registry_reachable; then use_local=0; else use_local=1; fi ;;
esac
build_args=()
if [[ $use_local == 1 ]]; then
  say "using stand-ins for $builder_image and $runtime_image (the registries are not used)"
  build_local_builder
  build_local_runtime
  build_args=(--build-arg "BUILDER_IMAGE=$local_builder" --build-arg "RUNTIME_IMAGE=$local_runtime")
fi

# --- 0. build --------------------------------------------------------------------------------

say "building $image from deploy/Dockerfile"
started=$SECONDS
DOCKER_BUILDKIT=1 "$docker" build --network host -f "$root/deploy/Dockerfile" -t "$image" \
  "${build_args[@]}" "$root" >"$cache/build.log" 2>&1 || { tail -n 30 "$cache/build.log" >&2; die "docker build failed; full log in $cache/build.log"; }
size=$("$docker" image inspect -f '{{.Size}}' "$image")
say "built in $((SECONDS - started)) s; image size $((size / 1000 / 1000)) MB"

# --- 1. user and no shell --------------------------------------------------------------------

user=$("$docker" image inspect -f '{{.Config.User}}' "$image")
[[ "$user" == 65532:65532 ]] || die "the image runs as '$user', not 65532:65532"
if "$docker" run --rm --entrypoint /bin/sh "$image" -c true >/dev/null 2>&1; then
  die "the image has a shell"
fi
say "ok: runs as $user, no shell"

# --- 2. hardened start -----------------------------------------------------------------------

hardened=(--read-only --cap-drop ALL --security-opt no-new-privileges)
version=$("$docker" run --rm "${hardened[@]}" "$image" --version)
say "ok: '$version' starts with a read-only root filesystem and no capabilities"

# --- 3. the containerised controller against the demo environment ----------------------------

work=$(mktemp -d)
container=pve-operator-verify-$$
demo_pid=
cleanup() {
  "$docker" rm -f "$container" >/dev/null 2>&1 || true
  [[ -z "$demo_pid" ]] || kill "$demo_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say "starting 'pve-operator demo --external-controller' on this host"
(cd "$root" && cargo build -q -p pve-operator)
"${CARGO_TARGET_DIR:-$root/target}/debug/pve-operator" demo --external-controller --timeout 120 \
  >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
# Waits until a file holds a line matching a pattern, as long as the demo runs.
await_line() {
  for _ in $(seq 1500); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$demo_pid" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
await_line "$work/demo.err" 'pve-operator run --kubeconfig' ||
  { cat "$work/demo.err" >&2; die "the demo did not get ready for a controller"; }
read -r kubeconfig config < <(sed -n 's/.*pve-operator run --kubeconfig \([^ ]*\) --config \([^ ]*\).*/\1 \2/p' "$work/demo.err")
# The container's user (65532) reads copies; the originals are readable by their owner only.
mkdir -p "$work/config"
cp "$kubeconfig" "$work/config/kubeconfig"
cp "$config" "$work/config/proxmox.yaml"
chmod 0755 "$work" "$work/config"
chmod 0644 "$work/config/"*

"$docker" run -d --name "$container" --network host "${hardened[@]}" \
  -v "$work/config:/config:ro" "$image" \
  run --kubeconfig /config/kubeconfig --config /config/proxmox.yaml --log-format json >/dev/null
if ! await_line "$work/demo.out" 'MachineRequests are Ready'; then
  cat "$work/demo.out" >&2
  "$docker" logs --tail 40 "$container" >&2
  die "the examples did not become Ready under the containerised controller"
fi
say "ok: the containerised controller brought every example to Ready"

# --- 4. graceful stop ------------------------------------------------------------------------

"$docker" stop -t 30 "$container" >/dev/null
code=$("$docker" inspect -f '{{.State.ExitCode}}' "$container")
[[ "$code" == 0 ]] || { "$docker" logs --tail 40 "$container" >&2; die "the controller exited with $code after SIGTERM"; }
"$docker" logs "$container" >"$cache/controller.log" 2>&1
say "ok: SIGTERM ends it with exit code 0 ($(wc -l <"$cache/controller.log") JSON log lines in $cache/controller.log)"
password=$(sed -n 's/^ *password: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$work/config/proxmox.yaml")
[[ -n "$password" ]] || die "found no password in the demo's Proxmox config to look for"
if grep -qF "$password" "$cache/controller.log"; then
  die "the controller's logs contain the Proxmox password"
fi
say "ok: the Proxmox password appears nowhere in the controller's logs"
kill -INT "$demo_pid"
wait "$demo_pid" || true
demo_pid=
say "all checks passed for $image"
