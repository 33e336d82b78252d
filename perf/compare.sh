#!/usr/bin/env bash
# The side-by-side comparison of issue 5, in one go: bufpool-server against nginx (HTTP GET, wrk
# and bufpool-bench) and against redis-server (RPC vs RESP SET/GET, bufpool-bench), then an
# overload run. Writes the table into perf/RESULTS.md (between the compare markers) and a chart
# into perf/compare.svg; raw outputs stay in build/compare/.
#
# Usage: perf/compare.sh            (make compare)
#        perf/compare.sh --chart-only  (redraw perf/compare.svg from build/compare/chart.dat)
#   REPS=3 DURATION=5 WARMUP=1      runs per case (the median is reported), seconds per run
#   SERVER_CPU=0 CLIENT_CPU=1       the cores: every server on one, every load generator on the
#                                   other, the same for each peer
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/http_peers.sh
REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
CONNS=32         # HTTP: wrk -c and bufpool-bench -c
RPC_CONNS=16     # RPC: bufpool-bench -c, for both peers
SERVER=build/release/server/bufpool-server
BENCH=build/release/client/bufpool-bench
OUT=build/compare

# The chart: one group per case, req/s above and p99 below, log scales.
draw_chart() {
  gnuplot <<GP
set terminal svg size 1100,900 dynamic font "sans,10" background "#ffffff"
set output "perf/compare.svg"
set multiplot layout 2,1 title "bufpool-server vs nginx (HTTP) and Redis (RPC/RESP), medians of $REPS runs, $(date -u -r "$OUT/chart.dat" +%F)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -35 scale 0 font ",9"
set rmargin 6
set grid ytics
set logscale y
set key top right
set ylabel "requests per second (log)"
plot "$OUT/chart.dat" using 2:xtic(1) title "bufpool-server" lc rgb "#2b7bba", \
     "" using 3 title "nginx / redis-server" lc rgb "#c0504d"
set ylabel "p99 latency, ms (log)"
plot "$OUT/chart.dat" using 4:xtic(1) title "bufpool-server" lc rgb "#2b7bba", \
     "" using 5 title "nginx / redis-server" lc rgb "#c0504d"
unset multiplot
GP
}
if [ "${1:-}" = --chart-only ]; then
  [ -f "$OUT/chart.dat" ] || { echo "compare: no $OUT/chart.dat (run make compare)" >&2; exit 2; }
  draw_chart
  exit 0
fi
for tool in wrk nginx redis-server gnuplot taskset; do
  command -v "$tool" >/dev/null ||
    { echo "compare: $tool is missing (make bench-deps installs it)" >&2; exit 2; }
done
[ -x "$SERVER" ] && [ -x "$BENCH" ] || { echo "compare: build first (make build)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "compare: needs 2 cores to pin servers and clients apart" >&2; exit 2; }

rm -rf "$OUT"
mkdir -p "$OUT"
work=$(mktemp -d /dev/shm/bufpool-compare-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# taskset execs the command, so $! of a background `taskset ... &` is the server's own pid.
cli() { taskset -c "$CLIENT_CPU" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
json() {  # json FILE KEY [OBJECT]: a number from bufpool-bench's --json
  local line
  if [ -n "${3:-}" ]; then line=$(grep "\"$3\"" "$1"); else line=$(cat "$1"); fi
  grep -o "\"$2\": [0-9.e+-]*" <<<"$line" | head -1 | awk '{print $2}'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # a process's CPU time, in 1/100 s
# CPU microseconds per request from a tick delta, a throughput, and the run's length (warmup
# included: the warmup runs at about the same rate).
cpu_us() { awk -v t="$1" -v r="$2" -v d="$((DURATION + WARMUP))" 'BEGIN {printf "%.1f", t * 10000 / (r * d)}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
  echo $(( (RANDOM % 20000) + 30000 )); }

start_bufpool() {  # [extra flags...]; sets BP_HTTP BP_RPC BP_PID
  rm -f "$work/ports.json"
  taskset -c "$SERVER_CPU" "$SERVER" --http-listen 127.0.0.1:0 --rpc-listen 127.0.0.1:0 --threads 1 \
    --port-file "$work/ports.json" --log-level warn "$@" > "$OUT/bufpool-server.log" 2>&1 &
  BP_PID=$!
  pids+=("$BP_PID")
  for _ in $(seq 200); do [ -s "$work/ports.json" ] && break; sleep 0.05; done
  BP_HTTP=$(sed 's/.*"http": \([0-9]*\).*/\1/' "$work/ports.json")
  BP_RPC=$(sed 's/.*"rpc": \([0-9]*\).*/\1/' "$work/ports.json")
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# One row of the table: label, bufpool runs, peer runs, p99s, and the target for the ratio.
ROWS=()
CHART=()
add_row() {  # label peer target b_runs n_runs b_p99s n_p99s b_cpus n_cpus
  local label=$1 peer=$2 target=$3 b_runs=$4 n_runs=$5 b_p99s=$6 n_p99s=$7 b_cpus=$8 n_cpus=$9
  local b_med n_med b_p99 n_p99 ratio met b_cpu n_cpu
  b_med=$(tr ' ' '\n' <<<"$b_runs" | median)
  n_med=$(tr ' ' '\n' <<<"$n_runs" | median)
  b_p99=$(tr ' ' '\n' <<<"$b_p99s" | median)
  n_p99=$(tr ' ' '\n' <<<"$n_p99s" | median)
  b_cpu=$(tr ' ' '\n' <<<"$b_cpus" | median)
  n_cpu=$(tr ' ' '\n' <<<"$n_cpus" | median)
  ratio=$(awk -v a="$b_med" -v b="$n_med" 'BEGIN {printf "%.2f", a / b}')
  # target "-": the same offered rate for both, so only the p99 is compared.
  met=$(awk -v r="$ratio" -v t="$target" -v bp="$b_p99" -v np="$n_p99" -v p99="${P99_RULE:-0}" \
    'BEGIN {ok = t == "-" || r >= t; if (p99 && bp > np) ok = 0; print ok ? "yes" : "**no**"}')
  local shown="**$ratio** (≥ $target)"
  [ "$target" = - ] && shown="$ratio (same rate)"
  ROWS+=("| $label | $peer | $b_runs | **$b_med** | $n_runs | **$n_med** | $shown | $b_p99 | $n_p99 | $b_cpu | $n_cpu | $met |")
  local short
  short=$(sed -e 's/ GET / /; s/ KiB/K/; s/ MiB/M/; s/(wrk)/wrk/; s/(bufpool-bench)/bench/' \
    -e 's/(bufpool-bench, open loop.*/open/; s/, pipeline /, p/; s/^SET/RPC SET/; s/^GET/RPC GET/' \
    <<<"$label")
  CHART+=("\"$short\" $b_med $n_med $b_p99 $n_p99")
  echo "  $label: bufpool $b_med, $peer $n_med, ratio $ratio, p99 $b_p99 vs $n_p99 ms, CPU $b_cpu vs $n_cpu us/req: $met" >&2
}

wrk_run() {  # url -> "req/s p99_ms"
  local out
  out=$(cli wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1")
  echo "$out" >> "$OUT/wrk.txt"
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then echo "compare: errors from $1" >&2; exit 1; fi
  awk '/Requests\/sec/ {rps=$2}
       $1 == "99%" {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+/, "", v);
                    ms = u == "us" ? v / 1000 : u == "s" ? v * 1000 : v}
       END {printf "%s %.3f\n", rps, ms}' <<<"$out"
}
bench_run() {  # name args... -> "req/s p99_ms"; keeps the JSON and the text
  local name=$1; shift
  cli "$BENCH" "$@" -t 1 -d "${DURATION}s" -w "${WARMUP}s" -q --json "$OUT/$name.json" \
    > "$OUT/$name.txt" 2>&1 || { cat "$OUT/$name.txt" >&2; exit 1; }
  local errors
  errors=$(json "$OUT/$name.json" error_count)
  [ "$errors" = 0 ] || { echo "compare: $name had $errors errors" >&2; cat "$OUT/$name.txt" >&2; exit 1; }
  echo "$(json "$OUT/$name.json" throughput_rps) $(awk -v u="$(json "$OUT/$name.json" p99 latency_us)" 'BEGIN {printf "%.3f", u / 1000}')"
}

echo "# compare: $(date -u +%FT%TZ), server on CPU $SERVER_CPU, load on CPU $CLIENT_CPU, $REPS runs of ${DURATION}s" >&2

# ---------------------------------------------------------------- HTTP: bufpool-server vs nginx
start_bufpool --max-memory 2GiB
NGINX_PORT=$(free_port)
SIZES=(4096 65536 1048576)
LABELS=("4 KiB" "64 KiB" "1 MiB")
NGINX_LAUNCH="taskset -c $SERVER_CPU" start_nginx_peer "$work" "$BP_HTTP" "$NGINX_PORT" "${SIZES[@]}"
NGINX_WORKER=$(pgrep -P "$(cat "$work/nginx.pid")" | head -1)

P99_RULE=1
for i in "${!SIZES[@]}"; do
  size=${SIZES[$i]}
  for tool in wrk bench open; do
    b_runs="" n_runs="" b_p99s="" n_p99s="" b_cpus="" n_cpus=""
    for rep in $(seq "$REPS"); do
      for who in bufpool nginx; do
        port=$BP_HTTP pid=$BP_PID
        [ "$who" = nginx ] && port=$NGINX_PORT pid=$NGINX_WORKER
        [ "$tool" = wrk ] && [ "$rep" = 1 ] &&
          cli wrk -t1 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/v1/buffers/v$size" > /dev/null
        t0=$(ticks "$pid")
        url="http://127.0.0.1:$port/v1/buffers/v$size"
        if [ "$tool" = wrk ]; then
          read -r rps p99 < <(wrk_run "$url")
        elif [ "$tool" = bench ]; then
          read -r rps p99 < <(bench_run "http-get-$size-$who-$rep" --target "$url" -c "$CONNS")
        else  # open loop at 60% of the slower server's wrk median: p99 at the same load
          read -r rps p99 < <(bench_run "http-open-$size-$who-$rep" --target "$url" -c "$CONNS" \
            --rate "$OPEN_RATE")
        fi
        cpu=$(cpu_us "$(( $(ticks "$pid") - t0 ))" "$rps")
        [ "$tool" = wrk ] && cpu=$(awk -v c="$cpu" -v d="$DURATION" -v w="$WARMUP" 'BEGIN {printf "%.1f", c * (d + w) / d}')
        if [ "$who" = bufpool ]; then b_runs+="$rps " b_p99s+="$p99 " b_cpus+="$cpu "
        else n_runs+="$rps " n_p99s+="$p99 " n_cpus+="$cpu "; fi
      done
    done
    if [ "$tool" = wrk ]; then
      OPEN_RATE=$(awk -v a="$(tr ' ' '\n' <<<"${b_runs% }" | median)" \
        -v b="$(tr ' ' '\n' <<<"${n_runs% }" | median)" 'BEGIN {printf "%d", (a < b ? a : b) * 0.6}')
    fi
    case $tool in
      wrk) add_row "HTTP GET ${LABELS[$i]} (wrk)" nginx 1.0 "${b_runs% }" "${n_runs% }" "${b_p99s% }" "${n_p99s% }" "${b_cpus% }" "${n_cpus% }" ;;
      bench) add_row "HTTP GET ${LABELS[$i]} (bufpool-bench)" nginx 1.0 "${b_runs% }" "${n_runs% }" "${b_p99s% }" "${n_p99s% }" "${b_cpus% }" "${n_cpus% }" ;;
      open) add_row "HTTP GET ${LABELS[$i]} (bufpool-bench, open loop $OPEN_RATE req/s)" nginx - "${b_runs% }" "${n_runs% }" "${b_p99s% }" "${n_p99s% }" "${b_cpus% }" "${n_cpus% }" ;;
    esac
  done
done
kill "$(cat "$work/nginx.pid")"
stop_pid "$BP_PID"

# ---------------------------------------------------------------- RPC: bufpool-server vs Redis
P99_RULE=0
start_bufpool --max-memory 4GiB
REDIS_PORT=$(free_port)
taskset -c "$SERVER_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work" --logfile "$work/redis.log" &
REDIS_PID=$!
pids+=("$REDIS_PID")
wait_port "$REDIS_PORT"
for size in 4096 1048576; do
  label=$([ "$size" = 4096 ] && echo "4 KiB" || echo "1 MiB")
  keys=$([ "$size" = 4096 ] && echo 10000 || echo 100)
  target=$([ "$size" = 4096 ] && echo 1.0 || echo 1.5)
  for op in set get; do
    mix=$([ "$op" = set ] && echo put=1 || echo get=1)
    for pipeline in 1 16; do
      b_runs="" n_runs="" b_p99s="" n_p99s="" b_cpus="" n_cpus=""
      for rep in $(seq "$REPS"); do
        t0=$(ticks "$BP_PID")
        read -r rps p99 < <(bench_run "rpc-$op-$size-p$pipeline-bufpool-$rep" \
          --target "rpc://127.0.0.1:$BP_RPC" -c "$RPC_CONNS" -p "$pipeline" --mix "$mix" \
          --size "$size" --keys "$keys")
        b_runs+="$rps " b_p99s+="$p99 " b_cpus+="$(cpu_us "$(( $(ticks "$BP_PID") - t0 ))" "$rps") "
        t0=$(ticks "$REDIS_PID")
        read -r rps p99 < <(bench_run "rpc-$op-$size-p$pipeline-redis-$rep" \
          --target "redis://127.0.0.1:$REDIS_PORT" -c "$RPC_CONNS" -p "$pipeline" --mix "$mix" \
          --size "$size" --keys "$keys")
        n_runs+="$rps " n_p99s+="$p99 " n_cpus+="$(cpu_us "$(( $(ticks "$REDIS_PID") - t0 ))" "$rps") "
      done
      add_row "${op^^} $label, pipeline $pipeline" redis "$target" "${b_runs% }" "${n_runs% }" "${b_p99s% }" "${n_p99s% }" "${b_cpus% }" "${n_cpus% }"
    done
  done
done
stop_pid "$REDIS_PID"
stop_pid "$BP_PID"

# ---------------------------------------------------------------- overload
# max_memory 256 MiB; 64 writers of 16 MiB values ask for 1 GiB at once, into 12 keys (192 MiB
# stored), so a PUT succeeds when memory frees in time (alloc_timeout 1 s) and gets 503 otherwise.
# A quarter of the requests are verified GETs.
OVER=()
for rep in $(seq "$REPS"); do
  start_bufpool --max-memory 256MiB --alloc-timeout 1s
  name="overload-$rep"
  cli "$BENCH" --target "http://127.0.0.1:$BP_HTTP" -c 64 -t 1 -d "$((DURATION * 2))s" -w 0s \
    --mix put=3,get=1 --size 16MiB --keys 12 --verify -q --json "$OUT/$name.json" \
    > "$OUT/$name.txt" 2>&1 || true
  alive=yes
  kill -0 "$BP_PID" 2>/dev/null || alive=no
  peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$BP_PID/status" 2>/dev/null || echo 0)
  stop_pid "$BP_PID"
  f="$OUT/$name.json"
  puts=$(json "$f" puts)
  e503=$(grep -o '"http_503": [0-9]*' "$f" | awk '{print $2}' || true)
  e503=${e503:-0}
  put_p99=$(awk -v u="$(json "$f" p99 put_latency_us)" 'BEGIN {printf "%.1f", u / 1000}')
  rate=$(awk -v e="$e503" -v p="$puts" 'BEGIN {printf "%.1f", p + e ? 100 * e / (p + e) : 0}')
  OVER+=("| $rep | $((peak_kib / 1024)) | $puts | $e503 | $rate % | $(json "$f" corrupt) | $(json "$f" verified) | $put_p99 | $(json "$f" error_count) | $alive |")
  echo "  overload $rep: peak RSS $((peak_kib / 1024)) MiB, 503 rate $rate %, corrupt $(json "$f" corrupt), p99 of successful PUTs $put_p99 ms, alive $alive" >&2
done

# ---------------------------------------------------------------- the chart and the table
printf '%s\n' "${CHART[@]}" > "$OUT/chart.dat"
draw_chart

{
  echo "<!-- compare:begin (written by perf/compare.sh; do not edit by hand) -->"
  echo "## $(date -u +%F): bufpool-server against nginx and Redis (issue 5), $(date -u +%H:%M) UTC"
  echo
  echo "Command: \`make compare\` (\`perf/compare.sh\`, REPS=$REPS DURATION=${DURATION}s WARMUP=${WARMUP}s)."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), shared and noisy."
  echo "Versions: bufpool-server $("$SERVER" --version | awk '{print $NF}'), $(nginx -v 2>&1 | sed 's/.*: //'),"
  echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), g++ $(g++ -dumpfullversion)."
  echo
  echo "Every server runs one thread (bufpool-server \`--threads 1\`, nginx \`worker_processes 1\`,"
  echo "redis-server as it comes) pinned to CPU $SERVER_CPU with \`taskset\`; every load generator runs one"
  echo "thread pinned to CPU $CLIENT_CPU. HTTP: $CONNS connections, keep-alive, the same bytes (files in"
  echo "/dev/shm for nginx, with sendfile and the access log off; PUT once into bufpool-server, and"
  echo "checked byte for byte with curl); \`wrk -t1 -c$CONNS -d${DURATION}s --latency\` against both, then"
  echo "\`bufpool-bench --target http://.../v1/buffers/vSIZE -c $CONNS -t 1\` as a cross-check, then the same"
  echo "with \`--rate\` at 60% of the slower server's wrk median (open loop, latency from the intended"
  echo "send time): a closed loop's p99 grows with the throughput it reaches, so the p99s are compared"
  echo "at the same offered load too. RPC: \`bufpool-bench -c $RPC_CONNS -t 1"
  echo "--mix put=1|get=1 --size SIZE -p 1|16\` with \`rpc://\` against bufpool-server and \`redis://\` against"
  echo "redis-server (no persistence); keys 10,000 (4 KiB) or 100 (1 MiB); GET runs PUT every key first."
  echo "Runs alternate between the peers. Figures: median req/s (the runs in brackets), median p99 in ms."
  echo "HTTP rows must also have a p99 no worse than nginx's. CPU µs/req: the server process's CPU time"
  echo "(utime + stime from /proc) over the run, warmup included, divided by the requests it served"
  echo "(the measured rate times the run's length). With two cores the load generator often saturates"
  echo "its core first (at 1 MiB always), and then the servers' CPU per request is what differs."
  echo
  echo "| case | peer | bufpool req/s (runs) | bufpool | peer req/s (runs) | peer | bufpool / peer | bufpool p99 ms | peer p99 ms | bufpool CPU µs/req | peer CPU µs/req | target met |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Overload: bufpool-server \`--max-memory 256MiB --alloc-timeout 1s --threads 1\`; \`bufpool-bench --target http://... -c 64"
  echo "--mix put=3,get=1 --size 16MiB --keys 12 --verify -d $((DURATION * 2))s\`: 64 writers of 16 MiB ask for"
  echo "1 GiB at once; 12 keys hold 192 MiB. Target: peak RSS ≤ 320 MiB (max_memory + 64 MiB), no crash,"
  echo "nothing corrupt. The 503 rate is 503s / (PUTs done + 503s)."
  echo
  echo "| run | peak RSS MiB | PUTs done | 503s | 503 rate | corrupt | GETs verified | p99 of successful PUTs ms | errors in all | server alive |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${OVER[@]}"
  echo
  echo "Chart: [perf/compare.svg](compare.svg). Raw outputs: build/compare/ (not committed)."
  echo "<!-- compare:end -->"
} > "$OUT/section.md"

# Replace the previous section (or append the first one), leaving the rest of RESULTS.md alone.
awk -v section="$OUT/section.md" '
  /<!-- compare:begin/ {skip = 1; while ((getline line < section) > 0) print line; done = 1; next}
  /<!-- compare:end -->/ {skip = 0; next}
  !skip {print}
  END {if (!done) {print ""; while ((getline line < section) > 0) print line}}
' perf/RESULTS.md > "$OUT/RESULTS.md"
mv "$OUT/RESULTS.md" perf/RESULTS.md
cat "$OUT/section.md"
