#!/usr/bin/env bash
# Heap calls that bufpool-server makes per GET, over HTTP (keep-alive) and RPC: runs the server
# with a malloc-counting shim (perf/tools/malloc_count.c, LD_PRELOAD), sends N GETs of a stored
# value on one connection, and compares the count with a run that sends none.
# Usage: perf/server_mallocs.sh [N]
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
cat > "$work/rpc_client.py" <<'PY'
import socket, struct, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
def frame(op, rid, key=b"", payload=b""):
    return struct.pack("<IBBBBQIIQ", 0x31525042, 1, op, 0, 0, rid, len(key), 0,
                       len(payload)) + key + payload
buf = b""
def reply():
    global buf
    while len(buf) < 32: buf += s.recv(65536)
    length = struct.unpack("<Q", buf[24:32])[0]
    while len(buf) < 32 + length: buf += s.recv(65536)
    buf = buf[32 + length:]
s.sendall(frame(2, 1, b"k", b"hello world")); reply()
for i in range(n):
    s.sendall(frame(3, i + 2, b"k")); reply()
PY
count() {  # protocol requests
  rm -f "$work/p.json"
  LD_PRELOAD="$work/count.so" "$BIN" --http-listen 127.0.0.1:0 --rpc-listen 127.0.0.1:0 \
    --threads 1 --port-file "$work/p.json" --log-level warn 2> "$work/log" &
  local pid=$!
  for _ in $(seq 100); do [ -f "$work/p.json" ] && break; sleep 0.05; done
  local http rpc
  http=$(sed 's/.*"http": \([0-9]*\).*/\1/' "$work/p.json")
  rpc=$(sed 's/.*"rpc": \([0-9]*\).*/\1/' "$work/p.json")
  if [ "$1" = http ]; then
    curl -s -o /dev/null -X PUT --data-binary 'hello world' "http://127.0.0.1:$http/v1/buffers/k"
    python3 "$work/client.py" "$http" "$2"
  else
    python3 "$work/rpc_client.py" "$rpc" "$2"
  fi
  kill -TERM "$pid"
  wait "$pid"
  sed -n 's/mallocs=//p' "$work/log"
}
for proto in http rpc; do
  base=$(count "$proto" 0)
  with=$(count "$proto" "$N")
  echo "$proto: server mallocs $base with 0 GETs, $with with $N GETs: $(( with - base )) for $N requests"
done
