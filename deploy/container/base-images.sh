#!/usr/bin/env bash
# Makes the two base images that the Dockerfile names, debian:bookworm and debian:bookworm-slim,
# with debootstrap from the Debian mirror that apt already uses, for machines that reach no
# container registry (this one: ../shared/NOTES.md). An image that is already there is kept.
#   deploy/container/base-images.sh            # both, if missing
#   FORCE=1 deploy/container/base-images.sh    # make them again
set -euo pipefail
podman=(podman ${PODMAN_GLOBAL_OPTS:---cgroup-manager cgroupfs --events-backend file})

# The mirror: the first deb.debian.org-like URI of apt's own sources.
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
  grep -v security | head -n1)
mirror=${mirror:-http://deb.debian.org/debian}

make_image() { # TAG SLIM
  local tag=$1 slim=$2
  if [[ -z ${FORCE:-} ]] && "${podman[@]}" image exists "docker.io/library/debian:$tag"; then
    echo "debian:$tag is there"
    return
  fi
  local root
  root=$(mktemp -d /var/tmp/bufpool-rootfs.XXXXXX)
  trap 'rm -rf "$root"' RETURN
  echo "debootstrap bookworm ($tag) from $mirror"
  if [[ $slim == 1 ]]; then
    # Official slim images leave out documentation, man pages and locales: the same excludes,
    # set before debootstrap unpacks anything into the root.
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  fi
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -n 20 "$root.log"; exit 1; }
  rm -f "$root.log"
  # As in Debian's official images: services never start inside a build (policy-rc.d exits 101),
  # and apt keeps no package files or caches (docker-clean).
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  [[ -s $root/etc/apt/sources.list.d/debian.sources ]] && rm -f "$root/etc/apt/sources.list"
  if [[ $slim == 1 ]]; then
    # debootstrap's first stage unpacks without dpkg, so the excludes did not apply to it.
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
      -exec rm -rf {} +
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | "${podman[@]}" import - "docker.io/library/debian:$tag" >/dev/null
  echo "debian:$tag made: $("${podman[@]}" image inspect --format '{{.Size}}' "docker.io/library/debian:$tag") bytes"
}

make_image bookworm 0
make_image bookworm-slim 1
