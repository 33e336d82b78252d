# bufpool-server. The build stage runs the same Make targets as CI (make test, make dist-check);
# the runtime stage has only the runtime libraries, listed by the build (build/dist/runtime-deps).
#   docker build -t bufpool .
#   docker run --rm -p 8080:8080 -p 9090:9090 -p 6380:6380 -e BUFPOOL_MAX_MEMORY=2GiB \
#     -e BUFPOOL_TOKENS='admin:<32 random characters>' bufpool
# Beyond loopback the server needs tokens (configs/container.toml says how), or --insecure.

FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends make ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# make test installs the toolchain and libraries (Debian packages only), builds and runs every
# test; make dist-check stages the server, its config and its runtime package list in build/dist
# and checks them, as CI does.
RUN make test CI=true && make dist-check

FROM debian:bookworm-slim
COPY --from=build /src/build/dist/runtime-deps /tmp/runtime-deps
RUN apt-get update \
    && xargs -a /tmp/runtime-deps apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-deps \
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
