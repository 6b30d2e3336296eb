#!/usr/bin/env bash
# Package one release binary the way the release workflow publishes it and
# the GitHub Action and cargo-binstall download it:
#   DIST/tagback-vVERSION-TARGET.tar.gz (holding tagback-vVERSION-TARGET/tagback,
#   the licences and the README) and DIST/tagback-vVERSION-TARGET.tar.gz.sha256
#   (`sha256sum` format, checked with `sha256sum --check`).
# Usage: scripts/package-release.sh BINARY VERSION TARGET DIST
set -euo pipefail
bin=${1:?usage: package-release.sh BINARY VERSION TARGET DIST} version=${2#v} target=${3:?} dist=${4:?}
root=$(cd "$(dirname "$0")/.." && pwd)
name=tagback-v$version-$target
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$dist"
install -m 0755 "$bin" "$stage/$name/tagback"
cp "$root/LICENSE-MIT" "$root/LICENSE-APACHE" "$root/README.md" "$root/CHANGELOG.md" "$stage/$name/"
# Reproducible: fixed owner, order and times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -czf "$dist/$name.tar.gz" "$name"
(cd "$dist" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "$dist/$name.tar.gz"
