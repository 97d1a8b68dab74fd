# The helper image: CRIU 4.2 plus the helper binary.
#
# Offline (`make helper-image`): BASE is a minimal root with CRIU 4.2 and the
# programs it runs (ip, iptables-restore, tar, gzip), built by hack/criu-root.sh
# from Debian forky without any registry.
# With a registry: `docker build --build-arg BASE=debian:forky-slim .` installs
# the same from Debian's packages. Debian 12's CRIU 3.17 fails on current
# kernels, and 4.1 cannot dump INET sockets on kernels since 6.16: use 4.2.
ARG BASE=debian:forky-slim
FROM ${BASE}
RUN if ! command -v criu >/dev/null 2>&1; then \
      apt-get update && \
      apt-get install -y --no-install-recommends criu iproute2 iptables tar gzip && \
      rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man; \
    fi
ARG TARGETARCH=amd64
COPY bin/linux-${TARGETARCH}/xcheckpoint-helper bin/linux-${TARGETARCH}/xcheckpoint-launch /usr/local/bin/
# Launchers (criu, tar, iptables-restore, ...): symlinks to xcheckpoint-launch,
# which runs the bundled programs through the bundled loader: restore mounts
# this image's /usr into a container whose own root may have no (or another)
# glibc.
RUN ["/usr/local/bin/xcheckpoint-helper", "install-launchers"]
ENTRYPOINT ["/usr/local/bin/xcheckpoint-helper"]
