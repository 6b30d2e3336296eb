#!/usr/bin/env bash
# Build a statically linked tagback for this machine's architecture into
# target/static/tagback (what the Dockerfile copies into its empty image):
#   scripts/build-static.sh && docker build -t tagback:dev .
# glibc with crt-static, vendored libgit2 and bundled SQLite: no musl target
# or cross toolchain needed. A separate target directory keeps it from
# invalidating the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=$(uname -m)
case $arch in
  x86_64 | aarch64) target="$arch-unknown-linux-gnu" ;;
  *) echo "build-static.sh: no static build for $arch (x86_64 and aarch64 only)" >&2; exit 2 ;;
esac
command -v cc >/dev/null || { echo "build-static.sh: a C compiler (cc) is needed for libgit2 and SQLite" >&2; exit 2; }
echo "build-static.sh: building tagback for $target (statically linked; a few minutes on 2 cores)" >&2
# --target keeps build scripts and proc-macros dynamic; only tagback is static.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  CARGO_TARGET_DIR=target/static \
  cargo build --release --locked --target "$target" "$@"
bin=target/static/$target/release/tagback
# A dynamic executable lists the libraries it loads ("libc.so.6 => ...").
if ldd "$bin" 2>&1 | grep -q '=>'; then
  echo "build-static.sh: $bin is dynamically linked:" >&2
  ldd "$bin" >&2
  exit 1
fi
chmod 1777 docker/rootfs/tmp
# Symbols are not needed to run it (panics still name the location).
if command -v strip >/dev/null; then strip -o target/static/tagback.partial "$bin"; else cp "$bin" target/static/tagback.partial; fi
mv target/static/tagback.partial target/static/tagback
echo "build-static.sh: target/static/tagback ($(du -h target/static/tagback | cut -f1), $("$PWD/target/static/tagback" --version))" >&2
