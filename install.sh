#!/usr/bin/env bash
# Build and install tagback from this checkout into ~/.cargo/bin:
#   ./install.sh && tagback demo
# Needs Rust 1.95 or newer (https://rustup.rs) and a C compiler (cc: libgit2
# and SQLite are compiled from source); no OpenSSL, no git. A release build
# takes 5-15 minutes on 2 cores; cargo prints each crate as it compiles.
# Without building: the release binaries, `cargo binstall tagback`, or the
# container image (see README.md, "Install").
set -euo pipefail
cd "$(dirname "$0")"
say() { printf 'install.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 or newer from https://rustup.rs"
rust=$(rustc --version) || die "rustc not found: install Rust 1.95 or newer from https://rustup.rs"
minor=$(sed -n 's/^rustc 1\.\([0-9]*\)\..*/\1/p' <<<"$rust")
[[ -n "$minor" && "$minor" -ge 95 ]] || die "$rust is too old: tagback needs Rust 1.95 or newer (rustup update stable)"
command -v cc >/dev/null || die "no C compiler (cc): install one (Debian/Ubuntu: apt-get install gcc; Fedora: dnf install gcc)"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
say "building tagback $version with $rust (release build, 5-15 minutes on 2 cores)"
start=$SECONDS
cargo install --path . --locked --force
bin="${CARGO_HOME:-$HOME/.cargo}/bin"
say "built in $((SECONDS - start)) s"
case ":$PATH:" in
  *":$bin:"*) ;;
  *) say "add $bin to PATH (export PATH=\"$bin:\$PATH\")" ;;
esac
say "installed $("$bin/tagback" --version) to $bin/tagback"
