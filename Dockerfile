# tagback in an empty image: one statically linked binary and a git config.
#
#   scripts/build-static.sh && docker build -t tagback:dev .
#   docker run --rm -v "$PWD:/repo" tagback:dev check --from origin/main --to HEAD
#
# No base image is pulled (this builds on machines without a registry). The
# release workflow passes BINARY= to use the binary it built for the platform.
FROM scratch
ARG BINARY=target/static/tagback
COPY ${BINARY} /usr/local/bin/tagback
# /etc/gitconfig (which mount points are trusted) and /tmp (mode 1777, set by
# scripts/build-static.sh: git does not keep directory modes).
COPY docker/rootfs/ /
ENV HOME=/tmp
WORKDIR /repo
ENTRYPOINT ["/usr/local/bin/tagback"]
CMD ["--help"]
LABEL org.opencontainers.image.source="https://github.com/tagback/tagback" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.description="Block Django downgrades in Docker stack files; write the exact rollback"
