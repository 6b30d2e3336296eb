#!/usr/bin/env bash
# Put tagback on PATH for the GitHub Action, without building anything.
#   TAGBACK_INSTALL=release  download the release binary for this runner and
#                            check it against the release's SHA-256 file
#   TAGBACK_INSTALL=image    a `tagback` wrapper that runs the container image
#                            (TAGBACK_IMAGE) on the workspace, as your uid
#   TAGBACK_INSTALL=path     use the tagback already on PATH
# Environment: TAGBACK_VERSION (e.g. 0.1.0), TAGBACK_RELEASES (default
# https://github.com/tagback/tagback/releases/download), RUNNER_OS,
# RUNNER_ARCH, RUNNER_TEMP, GITHUB_PATH.
set -euo pipefail
say() { printf 'tagback: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

mode=${TAGBACK_INSTALL:-release}
dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/tagback-bin
mkdir -p "$dir"
case $mode in
  path)
    command -v tagback >/dev/null || die "install: path, but there is no tagback on PATH"
    ;;
  image)
    image=${TAGBACK_IMAGE:?TAGBACK_IMAGE is not set}
    cat >"$dir/tagback" <<WRAPPER
#!/usr/bin/env bash
exec docker run --rm --user "\$(id -u):\$(id -g)" -v "\$PWD:/repo" -w /repo $(printf '%q' "$image") "\$@"
WRAPPER
    chmod +x "$dir/tagback"
    docker image inspect "$image" >/dev/null 2>&1 || docker pull --quiet "$image" >&2 ||
      die "cannot pull $image"
    ;;
  release)
    version=${TAGBACK_VERSION:?TAGBACK_VERSION is not set}
    version=${version#v}
    [[ "${RUNNER_OS:-Linux}" == Linux ]] || die "release binaries are Linux only (runner is $RUNNER_OS); use install: path after cargo install tagback --locked"
    case ${RUNNER_ARCH:-$(uname -m)} in
      X64 | x86_64) target=x86_64-unknown-linux-gnu ;;
      ARM64 | aarch64) target=aarch64-unknown-linux-gnu ;;
      *) die "no release binary for runner architecture ${RUNNER_ARCH:-$(uname -m)}" ;;
    esac
    name=tagback-v$version-$target
    base=${TAGBACK_RELEASES:-https://github.com/tagback/tagback/releases/download}/v$version
    say "downloading $base/$name.tar.gz"
    curl --fail --silent --show-error --location --retry 3 -o "$dir/$name.tar.gz" "$base/$name.tar.gz" ||
      die "cannot download $base/$name.tar.gz"
    curl --fail --silent --show-error --location --retry 3 -o "$dir/$name.tar.gz.sha256" "$base/$name.tar.gz.sha256" ||
      die "cannot download the checksum $base/$name.tar.gz.sha256"
    (cd "$dir" && sha256sum --check --strict "$name.tar.gz.sha256" >&2) ||
      die "$name.tar.gz does not match its published SHA-256; not installed"
    tar -xzf "$dir/$name.tar.gz" -C "$dir"
    mv "$dir/$name/tagback" "$dir/tagback"
    ;;
  *) die "install: must be release, image or path, not $mode" ;;
esac
if [[ $mode != path ]]; then
  [[ -z "${GITHUB_PATH:-}" ]] || echo "$dir" >>"$GITHUB_PATH"
  export PATH="$dir:$PATH"
fi
say "using $(tagback --version) ($mode)"
