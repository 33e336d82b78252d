# Sourced by the container scripts (deploy/container/check.sh, perf/container_memory.sh): podman
# as it runs on this kind of machine (../shared/NOTES.md), and the helpers they share. podman
# runs as root without systemd, on a host whose cgroups are a v1/v2 hybrid. One containers.conf
# (CONTAINERS_CONF) so that `podman run`, `podman build` and `podman kube play` (which takes no
# --ulimit) all get the same settings:
#   cgroupfs and file events: there is no systemd;
#   runc: crun 1.8 refuses the hybrid cgroup layout;
#   netavark with aardvark-dns: containers and pods find each other by name;
#   ulimits no higher than this shell's hard limits: root here cannot raise them.
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
# Seen here: runc refused nproc 40000 and above although `ulimit -Hu` said 96364; 32768 works.
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
BUFPOOL_CONTAINERS_CONF=${BUFPOOL_CONTAINERS_CONF:-/tmp/bufpool-containers.conf}
cat >"$BUFPOOL_CONTAINERS_CONF" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[network]
network_backend = "netavark"
CONF
export CONTAINERS_CONF=$BUFPOOL_CONTAINERS_CONF
podman=(podman)
# podman logs its lack of systemd (no health-check timers) on many commands: not our concern.
quiet() { grep -v 'unable to get systemd connection' || true; }
podman_usable() { # prints why not, and fails, when podman cannot run containers here
  if ! command -v podman >/dev/null; then
    echo "podman is not installed (make container-check installs it)"
    return 1
  fi
  local why
  if ! why=$(podman info 2>&1 >/dev/null); then
    echo "podman cannot run here: ${why##*$'\n'}"
    return 1
  fi
}
# fill_pool PORT TOKEN FILE [MAX]: PUTs FILE under new keys over HTTP until one is not stored
# (503 once the pool is full; 000 when the connection fails), at most MAX times (2000). Prints
# "STORED LAST_STATUS".
fill_pool() {
  local port=$1 token=$2 file=$3 max=${4:-2000} n code=
  for ((n = 0; n < max; n++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary "@$file" \
      -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/buffers/fill-$n") || code=000
    [[ $code == 201 || $code == 200 ]] || break
  done
  echo "$n $code"
}
# memory_peaks NAME: the container's main process's peak RSS (VmHWM, KiB) and its memory
# cgroup's peak usage (bytes; v1 memory.max_usage_in_bytes, v2 memory.peak), as "KIB BYTES".
memory_peaks() {
  local pid path dir
  pid=$(podman inspect "$1" --format '{{.State.Pid}}')
  path=$(awk -F: '$2 == "memory" {print $3}' "/proc/$pid/cgroup")
  if [[ -n $path ]]; then dir=/sys/fs/cgroup/memory$path; else
    dir=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
  fi
  echo "$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")" \
    "$(cat "$dir/memory.max_usage_in_bytes" 2>/dev/null || cat "$dir/memory.peak" 2>/dev/null || echo 0)"
}
