#!/usr/bin/env bash
# Heap calls that bufpool-server makes per keep-alive GET: runs the server with a malloc-counting
# shim (perf/tools/malloc_count.c, LD_PRELOAD), sends N GETs of a stored value on one connection,
# and compares the count with a run that sends none. Usage: perf/server_mallocs.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
BIN=build/release/server/bufpool-server
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -shared -fPIC -O2 perf/tools/malloc_count.c -o "$work/count.so"
cat > "$work/client.py" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /v1/buffers/k HTTP/1.1\r\nHost: t\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            length = int([l for l in buf[:end].split(b"\r\n")
                          if l.lower().startswith(b"content-length")][0].split(b":")[1])
            if len(buf) >= end + 4 + length:
                buf = buf[end + 4 + length:]
                break
        buf += s.recv(65536)
PY
count() {
  rm -f "$work/p.json"
  LD_PRELOAD="$work/count.so" "$BIN" --http-listen 127.0.0.1:0 --rpc-listen '' --threads 1 \
    --port-file "$work/p.json" --log-level warn 2> "$work/log" &
  local pid=$!
  for _ in $(seq 100); do [ -f "$work/p.json" ] && break; sleep 0.05; done
  local port
  port=$(sed 's/.*"http": \([0-9]*\).*/\1/' "$work/p.json")
  curl -s -o /dev/null -X PUT --data-binary 'hello world' "http://127.0.0.1:$port/v1/buffers/k"
  python3 "$work/client.py" "$port" "$1"
  kill -TERM "$pid"
  wait "$pid"
  sed -n 's/mallocs=//p' "$work/log"
}
base=$(count 0)
with=$(count "$N")
echo "server mallocs: $base with 0 GETs, $with with $N GETs: $(( with - base )) for $N requests"
