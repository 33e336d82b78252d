# Sourced by server_bench.sh and compare.sh: nginx serving the same bytes as bufpool-server.

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10 s, then exit 1).
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on 127.0.0.1:$1" >&2; exit 1
}

# start_nginx_peer WORK BUFPOOL_HTTP_PORT NGINX_PORT SIZE...
#   Writes WORK/www/v1/buffers/vSIZE (random bytes) for each size, PUTs each into bufpool-server,
#   starts nginx (one worker, sendfile, access log off, keepalive) on NGINX_PORT with WORK/www as
#   its root and its pid in WORK/nginx.pid, and checks that both servers return each file byte for
#   byte. Exits 1 otherwise: figures from servers that serve different bytes mean nothing.
#   Runs nginx under $NGINX_LAUNCH (for instance "taskset -c 0") when set.
start_nginx_peer() {
  local work=$1 bp_port=$2 ng_port=$3 size p
  shift 3
  mkdir -p "$work/www/v1/buffers"
  cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  open_file_cache max=100;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$ng_port; root $work/www; }
}
CONF
  for size in "$@"; do
    head -c "$size" /dev/urandom > "$work/www/v1/buffers/v$size"
    curl -sf -o /dev/null -X PUT --data-binary @"$work/www/v1/buffers/v$size" \
      "http://127.0.0.1:$bp_port/v1/buffers/v$size"
  done
  chmod -R a+rX "$work"  # nginx's workers drop root: they must be able to read the files
  ${NGINX_LAUNCH:-} nginx -c "$work/nginx.conf" -p "$work"
  wait_port "$ng_port"
  for size in "$@"; do
    for p in "$bp_port" "$ng_port"; do
      curl -sf "http://127.0.0.1:$p/v1/buffers/v$size" | cmp -s - "$work/www/v1/buffers/v$size" ||
        { echo "port $p does not serve v$size correctly" >&2; exit 1; }
    done
  done
}
