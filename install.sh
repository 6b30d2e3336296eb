#!/usr/bin/env bash
# Install tagback from this checkout into ~/.cargo/bin (needs only the Rust toolchain).
#   ./install.sh && tagback demo
# Then, in a deploy repository: tagback install   (git hooks)
set -euo pipefail
cd "$(dirname "$0")"
cargo install --path . --locked --quiet --force
bin="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$bin:"*) ;;
  *) echo "install.sh: add $bin to PATH (export PATH=\"$bin:\$PATH\")" >&2 ;;
esac
echo "installed $("$bin/tagback" --version) to $bin/tagback"
