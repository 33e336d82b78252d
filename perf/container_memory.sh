#!/usr/bin/env bash
# The container's memory against max_memory under a full pool: runs the image (make
# container-check with KEEP_IMAGE=1 builds it) under each --memory LIMIT given, lets the server
# size its pool from the limit, opens CONNS idle RESP connections that have each sent a command
# (so each holds its read buffer), fills the pool with 1 MiB PUTs until 503, and prints the
# server's peak RSS (VmHWM) and the cgroup's peak usage against max_memory and the limit.
#   perf/container_memory.sh [LIMIT...]      default: 300m 1264m; CONNS=256
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/container/podman.sh
IMAGE=${IMAGE:-localhost/bufpool:0.1.0}
CONNS=${CONNS:-256}
token=container-memory-admin-token-0123456789
work=$(mktemp -d /tmp/bufpool-container-memory.XXXXXX)
trap 'podman rm -f -t 0 bufpool-memory >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
podman image exists "$IMAGE" || { echo "no image $IMAGE: KEEP_IMAGE=1 make container-check" >&2; exit 2; }
head -c $((1 << 20)) /dev/urandom >"$work/value"
echo "| --memory | max_memory (from the cgroup) | PUTs of 1 MiB until 503 | idle RESP connections | server VmHWM | cgroup peak | peak - max_memory |"
echo "|---|---|---|---|---|---|---|"
for limit in "${@:-300m 1264m}"; do
  for l in $limit; do
    podman rm -f -t 0 bufpool-memory >/dev/null 2>&1 || true
    podman run -d --name bufpool-memory --read-only --cap-drop ALL --memory "$l" --memory-swap "$l" \
      -e BUFPOOL_TOKENS="admin:$token" -p 127.0.0.1::8080 -p 127.0.0.1::6380 "$IMAGE" >/dev/null 2> >(quiet >&2)
    http=$(podman port bufpool-memory 8080/tcp | sed 's/.*://')
    resp=$(podman port bufpool-memory 6380/tcp | sed 's/.*://')
    for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break; sleep 0.2; done
    pool=$(podman logs bufpool-memory 2>&1 | grep -o 'pool.max_memory = [^ ]*' | sed 's/.*= //')
    # The connections stay open (a background python) while the pool fills.
    /usr/bin/python3 - "$resp" "$token" "$CONNS" "$work/conns.ready" <<'PY' &
import socket, sys, time
port, token, n, ready = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(f'AUTH {token}\r\nPING\r\n'.encode())
    socks.append(s)
for s in socks:
    s.recv(64)
open(ready, 'w').close()
time.sleep(600)
PY
    holder=$!
    for _ in $(seq 1 100); do [[ -e $work/conns.ready ]] && break; sleep 0.1; done
    read -r n code < <(fill_pool "$http" "$token" "$work/value")
    read -r hwm peak < <(memory_peaks bufpool-memory)
    kill "$holder" 2>/dev/null || true
    rm -f "$work/conns.ready"
    pool_mib=${pool%MiB}
    [[ $pool == *GiB ]] && pool_mib=$((${pool%GiB} * 1024))
    echo "| $l | $pool | $n, then $code | $CONNS | $((hwm / 1024)) MiB | $((peak >> 20)) MiB | $(((peak >> 20) - pool_mib)) MiB |"
    podman rm -f -t 0 bufpool-memory >/dev/null 2>&1 || true
  done
done
