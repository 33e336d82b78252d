# Sourced by the container scripts: podman as it runs on this kind of machine (../shared/NOTES.md),
# as root without systemd, on a host whose cgroups are a v1/v2 hybrid. One containers.conf
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
