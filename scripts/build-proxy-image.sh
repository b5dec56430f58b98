#!/usr/bin/env bash
# Builds the sidecar image for the Docker engine's architecture (x86_64 or aarch64),
# tagged with the reference the launcher of this checkout expects by default and
# labelled with the version (org.opencontainers.image.version), which the launcher checks.
#
# usage: scripts/build-proxy-image.sh [--tag TAG] [--label KEY=VALUE]... [--builder auto|host|docker] [--push]
#        scripts/build-proxy-image.sh --print-tag
#
# --builder host: compiles sandbox-proxy on this host as a static musl binary (adding the
#   Rust target with rustup when it is missing), then builds the final stage of
#   images/proxy/Dockerfile from a context holding only that binary. Pulls nothing.
# --builder docker: the whole multi-stage images/proxy/Dockerfile in the engine (pulls
#   the Rust builder image); what works where the host cannot build Linux binaries (macOS).
# --builder auto (default): host on Linux when cargo is there and the engine runs
#   this host's architecture, docker otherwise.
# The default tag is REPOSITORY:VERSION, REPOSITORY being $AGENT_SANDBOX_PROXY_REPOSITORY
# (default ghcr.io/agent-sandbox/sandbox-proxy), VERSION the workspace version; the launcher is built
# with the same variable. Prints the image tag on success. CARGO and CARGO_TARGET_DIR
# are honoured.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "build-proxy-image.sh: $*" >&2; exit 1; }

# The workspace version: [workspace.package] version in the root Cargo.toml.
version="$(sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")"
[[ -n "$version" ]] || die "no [workspace.package] version in $root/Cargo.toml"
tag="${AGENT_SANDBOX_PROXY_REPOSITORY:-ghcr.io/agent-sandbox/sandbox-proxy}:$version"

builder=auto
push=false
labels=(--label "org.opencontainers.image.version=$version")
while (($#)); do
  case "$1" in
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --label) labels+=(--label "${2:?--label needs a value}"); shift 2 ;;
    --builder) builder="${2:?--builder needs a value}"; shift 2 ;;
    --push) push=true; shift ;;
    --print-tag) echo "$tag"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//p}' "$0"; exit 0 ;;
    *) echo "build-proxy-image.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

engine_arch="$(docker info --format '{{.Architecture}}')" || die "the Docker engine does not answer"
case "$engine_arch" in
  x86_64|amd64) arch=x86_64 platform=linux/amd64 ;;
  aarch64|arm64) arch=aarch64 platform=linux/arm64 ;;
  *) die "the engine runs on $engine_arch; the sidecar is built for x86_64 and aarch64 only" ;;
esac
cargo="${CARGO:-cargo}"
if [[ "$builder" == auto ]]; then
  builder=docker
  if [[ "$(uname -s)" == Linux && "$(uname -m)" == "$arch" ]] && command -v "$cargo" >/dev/null; then
    builder=host
  fi
fi

build_in_engine() {
  docker build --quiet --platform "$platform" --file "$root/images/proxy/Dockerfile" --tag "$tag" "${labels[@]}" "$root" >/dev/null
}

build_on_host() {
  local target="$arch-unknown-linux-musl"
  # rustup and cargo run in the checkout, so both use its rust-toolchain.toml (or
  # RUSTUP_TOOLCHAIN, which cargo sets for what it runs).
  cd "$root"
  if command -v rustup >/dev/null; then
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
  elif [[ ! -d "$("${RUSTC:-rustc}" --print sysroot)/lib/rustlib/$target" ]]; then
    die "the Rust target $target is not installed and rustup is not there to add it:
  install Rust's standard library for $target (with rustup: rustup target add $target),
  or build in the engine instead: $0 --builder docker (pulls the Rust builder image)"
  fi
  # ring (TLS crypto) compiles C for the musl target: musl-gcc, or a cross compiler.
  command -v musl-gcc >/dev/null || command -v "$arch-linux-musl-gcc" >/dev/null \
    || die "no C compiler for $target: install musl-tools (Debian, Ubuntu: it provides
  musl-gcc), or build in the engine instead: $0 --builder docker (pulls the Rust builder image)"
  local target_dir="${CARGO_TARGET_DIR:-$root/target}"
  # musl targets link statically by default (no RUSTFLAGS here: changing them would
  # rebuild every dependency); readelf below checks the result.
  "$cargo" build --quiet --release --locked --target "$target" -p sandbox-proxy --no-default-features \
    --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
  local binary="$target_dir/$target/release/sandbox-proxy"
  if readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
    die "$binary is dynamically linked; a scratch image cannot run it"
  fi
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  install -D -m 0755 "$binary" "$context/out/sandbox-proxy"
  install -d -m 0755 "$context/out/run-sandbox"
  # The final stage of the multi-stage Dockerfile, reading from this context instead
  # of the builder stage: one recipe for both paths.
  sed -n '/^FROM scratch/,$p' "$root/images/proxy/Dockerfile" \
    | sed 's/^COPY --from=builder /COPY /' > "$context/Dockerfile"
  docker build --quiet --platform "$platform" --tag "$tag" "${labels[@]}" "$context" >/dev/null
}

case "$builder" in
  host) build_on_host ;;
  docker) build_in_engine ;;
  *) echo "build-proxy-image.sh: --builder is auto, host or docker, not $builder" >&2; exit 2 ;;
esac
if $push; then
  docker push --quiet "$tag" >/dev/null
fi
echo "$tag"
