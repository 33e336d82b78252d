#!/bin/sh
# Writes nutcracker.yml with its ${BUFPOOL_*} placeholders filled in from the environment, since
# nutcracker reads no environment itself. Used by the twemproxy image's entry point and by
# deploy/cluster/cluster.py.
#   render.sh TEMPLATE OUT
# BUFPOOL_PROXY_RESP, BUFPOOL_RESP_1..N: the addresses (host:port). BUFPOOL_SERVERS=N (default 3)
# repeats the template's first server line for N servers, named as it names them. With
# BUFPOOL_PROXY_AUTH set (a write token), twemproxy sends AUTH to each server and asks its own
# clients for the same password (redis_auth).
set -eu
template=$1
out=$2
awk -v n="${BUFPOOL_SERVERS:-3}" -v auth="${BUFPOOL_PROXY_AUTH:-}" '
  # The server lines: the first one is the pattern ("- ${BUFPOOL_RESP_1}:1 bufpool-0").
  /^ *- \$\{BUFPOOL_RESP_[0-9]+\}/ {
    if ($0 ~ /RESP_1\}/) {
      match($0, /^ */); indent = substr($0, 1, RLENGTH)
      split($2, hp, "}:"); weight = hp[2]
      name = $3; first = substr(name, length(name)) + 0; prefix = substr(name, 1, length(name) - 1)
      for (i = 1; i <= n; i++)
        printf "%s- ${BUFPOOL_RESP_%d}:%s %s%d\n", indent, i, weight, prefix, first + i - 1
    }
    next
  }
  { print }
  /^  redis: true/ && auth != "" { print "  redis_auth: " auth }
' "$template" >"$out.tmp"
# Every ${BUFPOOL_NAME} from the environment; one that is not set is an error.
missing=$(grep -o '\${BUFPOOL_[A-Z0-9_]*}' "$out.tmp" | sort -u | while read -r ref; do
  name=${ref#??}
  name=${name%?}
  eval "[ -n \"\${$name+x}\" ]" || echo "$name"
done)
if [ -n "$missing" ]; then
  echo "render.sh: not set: $missing" >&2
  rm -f "$out.tmp"
  exit 2
fi
for ref in $(grep -o '\${BUFPOOL_[A-Z0-9_]*}' "$out.tmp" | sort -u); do
  name=${ref#??}
  name=${name%?}
  eval "value=\$$name"
  # The value goes into sed's replacement: escape what sed would read (\, & and the delimiter).
  value=$(printf '%s' "$value" | sed 's/[\\&|]/\\&/g')
  sed -i "s|\\\${$name}|$value|g" "$out.tmp"
done
mv "$out.tmp" "$out"
