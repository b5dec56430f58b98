#!/usr/bin/env bash
# Builds the sidecar image without pulling anything: compiles sandbox-proxy on this
# host as a static musl binary, then builds the final stage of images/proxy/Dockerfile
# from a context holding only that binary (and the empty /run/sandbox directory).
#
# usage: scripts/build-proxy-image.sh [--tag TAG] [--label KEY=VALUE]...
# Prints the image tag on success. CARGO and CARGO_TARGET_DIR are honoured.
set -euo pipefail

tag=agent-sandbox/proxy:local
labels=()
while (($#)); do
  case "$1" in
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --label) labels+=(--label "${2:?--label needs a value}"); shift 2 ;;
    -h|--help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "build-proxy-image.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$(uname -m)-unknown-linux-musl"
cargo="${CARGO:-cargo}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

# musl targets link statically by default (no RUSTFLAGS here: changing them would
# rebuild every dependency); readelf below checks the result.
"$cargo" build --quiet --release --locked --target "$target" -p sandbox-proxy --no-default-features \
  --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
binary="$target_dir/$target/release/sandbox-proxy"
if readelf -l "$binary" 2>/dev/null | grep -q 'Requesting program interpreter'; then
  echo "build-proxy-image.sh: $binary is dynamically linked; a scratch image cannot run it" >&2
  exit 1
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
install -D -m 0755 "$binary" "$context/out/sandbox-proxy"
install -d -m 0755 "$context/out/run-sandbox"
# The final stage of the multi-stage Dockerfile, reading from this context instead
# of the builder stage: one recipe for both paths.
sed -n '/^FROM scratch/,$p' "$root/images/proxy/Dockerfile" \
  | sed 's/^COPY --from=builder /COPY /' > "$context/Dockerfile"

docker build --quiet --tag "$tag" "${labels[@]}" "$context" >/dev/null
echo "$tag"
