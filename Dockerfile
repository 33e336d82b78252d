# bufpool-server. The build stage installs the build dependencies from the Makefile alone (a layer
# that a source change does not invalidate), then builds the server with the same Make targets as
# CI (make dist-check PRESET=server: build, stage in build/dist, check). The runtime stage has
# only the runtime libraries, listed by that build (build/dist/runtime-deps).
#   podman build --format docker -t bufpool .     # docker build -t bufpool . works the same
#   podman run --rm -p 8080:8080 -p 9090:9090 -p 6380:6380 --memory 2g \
#     -e BUFPOOL_TOKENS='admin:<32 random characters>' bufpool
# podman needs --format docker: its default OCI format silently drops the HEALTHCHECK.
# Beyond loopback the server needs tokens (configs/container.toml says how), or --insecure.
# The pool is sized from the container's memory limit (--memory) and the threads from its CPU
# quota (--cpus) unless BUFPOOL_MAX_MEMORY or BUFPOOL_THREADS say otherwise.
# make container-check builds this image and runs it through its checks (deploy/container/).

FROM debian:bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends make ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
RUN make deps PRESET=server && rm -rf /var/lib/apt/lists/*
COPY . .
# CCACHE_DIR: make container-check lends the build the host's compiler cache as a volume.
ARG CCACHE_DIR=/root/.cache/ccache
RUN CCACHE_DIR=$CCACHE_DIR make dist-check PRESET=server

FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /src/build/dist/runtime-deps /tmp/runtime-deps
RUN apt-get update \
    && xargs -a /tmp/runtime-deps apt-get install -y --no-install-recommends \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/runtime-deps \
    && groupadd --system --gid 10001 bufpool \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin bufpool
COPY --from=build /src/build/dist/root/ /
USER 10001:10001
EXPOSE 8080 9090 6380
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/bufpool-server", "--health-check", "--config", "/etc/bufpool/bufpool.toml"]
ENTRYPOINT ["/usr/local/bin/bufpool-server"]
CMD ["--config", "/etc/bufpool/bufpool.toml"]
