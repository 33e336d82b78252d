#!/usr/bin/env bash
# make container-check: builds the Dockerfile's image with podman and runs it as a user would.
#  1. the image: runs as 10001:10001 and keeps its HEALTHCHECK (built with --format docker);
#  2. run with --read-only --cap-drop ALL --security-opt no-new-privileges and a token: healthy,
#     not root, no capabilities, a PUT and GET of 1 MiB over HTTP (curl), RPC (rpc_roundtrip.py)
#     and RESP (python3-redis), byte for byte; podman stop: exit 0 within the shutdown timeout;
#  3. under --memory 300m --cpus 1: the pool and the threads sized from the cgroup, a full pool
#     answered with 503 and the container's memory below its limit (the figure is printed);
#     with max_memory = 1GiB set explicitly the same load gets it OOM-killed (exit 137);
#  4. deploy/k8s's manifests played with podman kube play on the same images (kube_test.py).
# Every container it starts is removed at the end. Base images come from
# deploy/container/base-images.sh (no registry needed). The images are removed too, unless
# KEEP_IMAGE=1. Env: IMAGE (default localhost/bufpool:0.1.0), SKIP_BUILD=1 to check images that
# are already built, CCACHE_DIR to lend the build a compiler cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=${IMAGE:-localhost/bufpool:0.1.0}
source deploy/container/podman.sh
run=(run)
secure=(--read-only --cap-drop ALL --security-opt no-new-privileges)
token=container-check-admin-token-0123456789
names=()
work=$(mktemp -d /tmp/bufpool-container-check.XXXXXX)
cleanup() {
  for n in "${names[@]}"; do "${podman[@]}" rm -f -t 0 "$n" >/dev/null 2>&1 || true; done
  [[ -n ${KEEP_IMAGE:-} || -n ${SKIP_BUILD:-} ]] || "${podman[@]}" rmi -f "$IMAGE" \
    localhost/bufpool-haproxy:0.1.0 localhost/bufpool-twemproxy:0.1.0 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "container-check FAILED: $*" >&2; exit 1; }
ok() { echo "  ok: $*"; }

why=$(podman_usable) || fail "$why"

if [[ -z ${SKIP_BUILD:-} ]]; then
  deploy/container/base-images.sh
  cache=()
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir 2>/dev/null || true)}
  if [[ -n ${CCACHE_DIR:-} ]]; then
    mkdir -p "$CCACHE_DIR"
    cache=(--volume "$CCACHE_DIR:/ccache" --build-arg CCACHE_DIR=/ccache)
  fi
  start=$SECONDS
  "${podman[@]}" build --format docker "${cache[@]}" -t "$IMAGE" . >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log"; fail "podman build"; }
  echo "built $IMAGE in $((SECONDS - start)) s"
  # The proxies' images, for the Kubernetes manifests (deploy/k8s/kube_test.py, at the end).
  for proxy in haproxy twemproxy; do
    start=$SECONDS
    "${podman[@]}" build --format docker -t "localhost/bufpool-$proxy:0.1.0" "deploy/$proxy" \
      >"$work/build-$proxy.log" 2>&1 || { tail -n 40 "$work/build-$proxy.log"; fail "podman build $proxy"; }
    echo "built localhost/bufpool-$proxy:0.1.0 in $((SECONDS - start)) s"
  done
  "${podman[@]}" image prune -f >/dev/null 2>&1 || true
fi

echo "1. the image"
size=$("${podman[@]}" image inspect "$IMAGE" --format '{{.Size}}')
user=$("${podman[@]}" image inspect "$IMAGE" --format '{{.Config.User}}')
health=$("${podman[@]}" image inspect "$IMAGE" --format '{{json .Config.Healthcheck}}')
[[ $user == 10001:10001 ]] || fail "the image runs as '$user', not 10001:10001"
ok "runs as $user; $((size / 1000000)) MB"
[[ $health == *--health-check* ]] || fail "no HEALTHCHECK in the image (built without --format docker?)"
ok "HEALTHCHECK kept: $health"

port_of() { "${podman[@]}" port "$1" "$2/tcp" | head -n1 | sed 's/.*://'; }
start_container() { # NAME ARGS... (podman run options, then the image and its arguments)
  local name=$1
  shift
  names+=("$name")
  "${podman[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
  "${podman[@]}" "${run[@]}" -d --name "$name" "$@" >/dev/null 2> >(quiet >&2)
}
wait_healthy() { # NAME
  for _ in $(seq 1 60); do
    if "${podman[@]}" healthcheck run "$1" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  "${podman[@]}" logs "$1" | tail -n 20
  fail "$1 did not become healthy in 30 s"
}

echo "2. --read-only --cap-drop ALL, with a token"
start_container bufpool-check "${secure[@]}" -e BUFPOOL_TOKENS="admin:$token" \
  -p 127.0.0.1::8080 -p 127.0.0.1::9090 -p 127.0.0.1::6380 "$IMAGE"
wait_healthy bufpool-check
status=$("${podman[@]}" inspect bufpool-check --format '{{.State.Health.Status}}')
[[ $status == healthy ]] || fail "health status '$status'"
ok "health status: $status"
pid=$("${podman[@]}" inspect bufpool-check --format '{{.State.Pid}}')
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[[ $uid == 10001 ]] || fail "the server runs as uid $uid"
ok "the server (pid $pid on the host) runs as uid $uid"
caps=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[[ $caps == 0000000000000000 ]] || fail "effective capabilities $caps"
ok "no capabilities (CapEff $caps)"
http=$(port_of bufpool-check 8080)
rpc=$(port_of bufpool-check 9090)
resp=$(port_of bufpool-check 6380)
head -c $((1 << 20)) /dev/urandom >"$work/value"
auth=(-H "Authorization: Bearer $token")
code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$work/value" "${auth[@]}" \
  "http://127.0.0.1:$http/v1/buffers/check")
[[ $code == 201 || $code == 200 ]] || fail "HTTP PUT: $code"
curl -sS -f "${auth[@]}" "http://127.0.0.1:$http/v1/buffers/check" -o "$work/got"
cmp -s "$work/value" "$work/got" || fail "HTTP GET returned other bytes"
ok "HTTP: PUT and GET of 1 MiB, byte for byte"
out=$(/usr/bin/python3 tests/server/rpc_roundtrip.py "$rpc" 14 --token "$token" 2>&1) ||
  fail "RPC: $out"
ok "RPC: AUTH, PUT and GET of 1 MiB, byte for byte ($out)"
/usr/bin/python3 - "$resp" "$token" "$work/value" <<'EOF' || fail "RESP round trip"
import sys, redis
r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), password=sys.argv[2])
v = open(sys.argv[3], 'rb').read()
assert r.set('check', v) and r.get('check') == v, 'other bytes'
EOF
ok "RESP (python3-redis): AUTH, SET and GET of 1 MiB, byte for byte"
start=$(date +%s%N)
"${podman[@]}" stop -t 10 bufpool-check 2>&1 >/dev/null | quiet
took_ms=$((($(date +%s%N) - start) / 1000000))
code=$("${podman[@]}" inspect bufpool-check --format '{{.State.ExitCode}}')
[[ $code == 0 ]] || fail "exit code $code after podman stop"
((took_ms < 8000)) || fail "podman stop took $took_ms ms, beyond shutdown_timeout (8s)"
ok "podman stop: exit 0 after $took_ms ms (shutdown_timeout 8s, podman's 10s)"

echo "3. --memory 300m --cpus 1: sized from the cgroup"
start_container bufpool-sized "${secure[@]}" --memory 300m --memory-swap 300m --cpus 1 \
  -e BUFPOOL_TOKENS="admin:$token" -p 127.0.0.1::8080 "$IMAGE"
wait_healthy bufpool-sized
logs=$("${podman[@]}" logs bufpool-sized 2>&1)
grep -q 'pool.max_memory = 128MiB  # from the memory limit 300MiB' <<<"$logs" ||
  fail "max_memory not from the cgroup: $(grep max_memory <<<"$logs")"
ok "$(grep -o 'pool.max_memory = .*' <<<"$logs")"
grep -q 'server.threads = 1  # from the CPU quota 1.00' <<<"$logs" ||
  fail "threads not from the CPU quota: $(grep server.threads <<<"$logs")"
ok "$(grep -o 'server.threads = .*' <<<"$logs")"
read -r n code < <(fill_pool "$(port_of bufpool-sized 8080)" "$token" "$work/value")
[[ $code == 503 ]] || fail "the fill ended with $code after $n PUTs, not 503"
read -r rss peak < <(memory_peaks bufpool-sized)
running=$("${podman[@]}" inspect bufpool-sized --format '{{.State.Running}}')
[[ $running == true ]] || fail "the container died under a full pool"
ok "full pool after $n PUTs of 1 MiB (then 503); peak RSS $((rss / 1024)) MiB, cgroup peak $((peak >> 20)) MiB of 300 MiB (max_memory 128 MiB)"
echo "figure: container memory under a full pool: VmHWM $((rss / 1024)) MiB, cgroup max usage $((peak >> 20)) MiB, max_memory 128 MiB, limit 300 MiB"
"${podman[@]}" stop -t 10 bufpool-sized 2>&1 >/dev/null | quiet

start_container bufpool-unsized "${secure[@]}" --memory 300m --memory-swap 300m --cpus 1 \
  -e BUFPOOL_TOKENS="admin:$token" -e BUFPOOL_MAX_MEMORY=1GiB -p 127.0.0.1::8080 "$IMAGE"
wait_healthy bufpool-unsized
read -r n code < <(fill_pool "$(port_of bufpool-unsized 8080)" "$token" "$work/value")
sleep 1
# podman 4.3 on cgroup v1 does not always set OOMKilled: the SIGKILL's 137 is what shows.
oom=$("${podman[@]}" inspect bufpool-unsized --format '{{.State.Running}} {{.State.ExitCode}}')
[[ $oom == "false 137" ]] || fail "with max_memory = 1GiB under 300m: running/exit '$oom' after $n PUTs (expected an OOM kill)"
ok "the same load with BUFPOOL_MAX_MEMORY=1GiB: OOM-killed (exit 137) at PUT $((n + 1)), as before this sizing"

echo "4. the Kubernetes manifests, played with podman kube play"
[[ $IMAGE == localhost/bufpool:0.1.0 ]] || "${podman[@]}" tag "$IMAGE" localhost/bufpool:0.1.0
/usr/bin/python3 deploy/k8s/kube_test.py || fail "deploy/k8s/kube_test.py"
echo "container-check passed"
