#!/usr/bin/env python3
"""The side-by-side comparison of issue 5, in one go: bufpool-server against nginx (HTTP GET, wrk
and bufpool-bench) and against redis-server (RPC vs RESP SET/GET, bufpool-bench), then an
overload run. Writes the table into perf/RESULTS.md (between the compare markers) and a chart
into perf/compare.svg; raw outputs stay in build/compare/.

Usage: perf/compare.py               (make compare)
       perf/compare.py --chart-only  (redraw perf/compare.svg from build/compare/chart.dat)
  REPS=3 DURATION=5 WARMUP=1      runs per case (the median is reported), seconds per run
  SERVER_CPU=0 CLIENT_CPU=1       the cores: every server on one, every load generator on the
                                  other, the same for each peer
  RESULTS=perf/RESULTS.md         the file whose compare section is replaced
  ONLY=http,rpc,resp,overload     the groups to run (all by default); a partial run writes its
                                  own section (compare-resp, ...), leaving the full one alone
"""
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from peers import fail, median  # noqa: E402

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
REPS = int(os.environ.get("REPS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
SERVER_CPU = int(os.environ.get("SERVER_CPU", "0"))
CLIENT_CPU = int(os.environ.get("CLIENT_CPU", "1"))
RESULTS = os.environ.get("RESULTS", "perf/RESULTS.md")
GROUPS = ("http", "rpc", "resp", "overload")
ONLY = [g for g in os.environ.get("ONLY", ",".join(GROUPS)).split(",") if g]
SECTION = "compare" if sorted(ONLY) == sorted(GROUPS) else "compare-" + "-".join(ONLY)
CONNS = 32      # HTTP: wrk -c and bufpool-bench -c
RPC_CONNS = 16  # RPC: bufpool-bench -c, for both peers
OUT = "build/compare"
CHART_DAT = os.path.join(OUT, "chart.dat")


def draw_chart():
    """One group per case, req/s above and p99 below, log scales."""
    day = datetime.datetime.fromtimestamp(os.path.getmtime(CHART_DAT),
                                          datetime.timezone.utc).strftime("%Y-%m-%d")
    script = f"""set terminal svg size 1100,900 dynamic font "sans,10" background "#ffffff"
set output "perf/compare.svg"
set multiplot layout 2,1 title "bufpool-server vs nginx (HTTP) and Redis (RPC/RESP), medians of {REPS} runs, {day}"
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
plot "{CHART_DAT}" using 2:xtic(1) title "bufpool-server" lc rgb "#2b7bba", \\
     "" using 3 title "nginx / redis-server" lc rgb "#c0504d"
set ylabel "p99 latency, ms (log)"
plot "{CHART_DAT}" using 4:xtic(1) title "bufpool-server" lc rgb "#2b7bba", \\
     "" using 5 title "nginx / redis-server" lc rgb "#c0504d"
unset multiplot
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def cli(argv):
    return peers.pinned(CLIENT_CPU, argv)


def cpu_us(tick_delta, rps):
    """CPU microseconds per request from a tick delta and a throughput, over the run's length
    (warmup included: the warmup runs at about the same rate)."""
    return tick_delta * 10000 / (float(rps) * (DURATION + WARMUP))


class Row:
    """One case's runs: req/s as the tool printed them, p99 (ms) and CPU (µs/req) per run."""

    def __init__(self):
        self.runs, self.p99s, self.cpus = [], [], []

    def add(self, rps, p99, cpu):
        self.runs.append(rps)
        self.p99s.append(f"{p99:.3f}")
        self.cpus.append(f"{cpu:.1f}")

    @staticmethod
    def med(values):
        return median(values)


ROWS, CHART = [], []


def add_row(label, peer, target, b, n, p99_rule):
    """A table row: label, bufpool runs, peer runs, p99s, CPU, and the target for the ratio
    (target "-": the same offered rate for both, so only the p99 is compared)."""
    b_med, n_med = b.med(b.runs), n.med(n.runs)
    b_p99, n_p99 = b.med(b.p99s), n.med(n.p99s)
    b_cpu, n_cpu = b.med(b.cpus), n.med(n.cpus)
    ratio = f"{float(b_med) / float(n_med):.2f}"
    ok = target == "-" or float(ratio) >= float(target)
    if p99_rule and float(b_p99) > float(n_p99):
        ok = False
    met = "yes" if ok else "**no**"
    shown = f"{ratio} (same rate)" if target == "-" else f"**{ratio}** (≥ {target})"
    ROWS.append(f"| {label} | {peer} | {' '.join(b.runs)} | **{b_med}** | {' '.join(n.runs)} | "
                f"**{n_med}** | {shown} | {b_p99} | {n_p99} | {b_cpu} | {n_cpu} | {met} |")
    short = label.replace(" GET ", " ", 1).replace(" KiB", "K", 1).replace(" MiB", "M", 1)
    short = short.replace("(wrk)", "wrk", 1).replace("(bufpool-bench)", "bench", 1)
    short = re.sub(r"\(bufpool-bench, open loop.*", "open", short)
    short = short.replace(", pipeline ", ", p", 1).replace(" (redis-benchmark)", "", 1)
    short = short.replace(", -P ", ", p", 1)
    short = re.sub(r"^SET", "RPC SET", short)
    short = re.sub(r"^GET", "RPC GET", short)
    CHART.append(f'"{short}" {b_med} {n_med} {b_p99} {n_p99}')
    print(f"  {label}: bufpool {b_med}, {peer} {n_med}, ratio {ratio}, p99 {b_p99} vs {n_p99} ms, "
          f"CPU {b_cpu} vs {n_cpu} us/req: {met}", file=sys.stderr)


def wrk_run(url):
    argv = cli(["wrk", "-t1", f"-c{CONNS}", f"-d{DURATION}s", "--latency"])
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(OUT, "wrk.txt"), "a") as f:
        f.write(out)
    if "Non-2xx" in out or "Socket errors" in out:
        fail(f"compare: errors from {url}")
    rps = next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec"))
    p99 = next(peers.latency_ms(line.split()[1]) for line in out.splitlines()
               if line.split()[:1] == ["99%"])
    return rps, p99


def bench_run(name, args):
    """bufpool-bench with the run's settings; keeps the JSON and the text; -> (req/s, p99 ms)."""
    text, js = os.path.join(OUT, f"{name}.txt"), os.path.join(OUT, f"{name}.json")
    argv = cli([peers.BENCH, *args, "-t", "1", "-d", f"{DURATION}s", "-w", f"{WARMUP}s", "-q",
                "--json", js])
    with open(text, "w") as out:
        rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        sys.stderr.write(open(text).read())
        sys.exit(1)
    report = json.load(open(js))
    if report["error_count"] != 0:
        sys.stderr.write(f"compare: {name} had {report['error_count']} errors\n" + open(text).read())
        sys.exit(1)
    return str(report["throughput_rps"]), report["latency_us"]["p99"] / 1000


def http_rows(procs, work):
    p, bp_http, _, _ = peers.start_bufpool(procs, work, os.path.join(OUT, "bufpool-server.log"),
                                        SERVER_CPU, ["--max-memory", "2GiB"])
    ng_port = peers.free_port()
    sizes, labels = [4096, 65536, 1048576], ["4 KiB", "64 KiB", "1 MiB"]
    ng_worker = peers.start_nginx_peer(procs, work, bp_http, ng_port, sizes, SERVER_CPU)
    open_rate = 0
    for size, label in zip(sizes, labels):
        for tool in ("wrk", "bench", "open"):
            rows = {"bufpool": Row(), "nginx": Row()}
            for rep in range(1, REPS + 1):
                for who in ("bufpool", "nginx"):
                    port, pid = (bp_http, p.pid) if who == "bufpool" else (ng_port, ng_worker)
                    url = f"http://127.0.0.1:{port}/v1/buffers/v{size}"
                    if tool == "wrk" and rep == 1:
                        subprocess.run(cli(["wrk", "-t1", f"-c{CONNS}", f"-d{WARMUP}s", url]),
                                       stdout=subprocess.DEVNULL, check=True)
                    t0 = peers.ticks(pid)
                    if tool == "wrk":
                        rps, p99 = wrk_run(url)
                    elif tool == "bench":
                        rps, p99 = bench_run(f"http-get-{size}-{who}-{rep}",
                                             ["--target", url, "-c", str(CONNS)])
                    else:  # open loop at 60% of the slower server's wrk median: p99 at one load
                        rps, p99 = bench_run(f"http-open-{size}-{who}-{rep}",
                                             ["--target", url, "-c", str(CONNS), "--rate",
                                              str(open_rate)])
                    cpu = cpu_us(peers.ticks(pid) - t0, rps)
                    if tool == "wrk":  # wrk's warmup ran before t0
                        cpu = float(f"{cpu:.1f}") * (DURATION + WARMUP) / DURATION
                    rows[who].add(rps, p99, cpu)
            b, n = rows["bufpool"], rows["nginx"]
            if tool == "wrk":
                open_rate = int(min(float(b.med(b.runs)), float(n.med(n.runs))) * 0.6)
                add_row(f"HTTP GET {label} (wrk)", "nginx", "1.0", b, n, True)
            elif tool == "bench":
                add_row(f"HTTP GET {label} (bufpool-bench)", "nginx", "1.0", b, n, True)
            else:
                add_row(f"HTTP GET {label} (bufpool-bench, open loop {open_rate} req/s)", "nginx",
                        "-", b, n, True)
    peers.stop_nginx(procs, work)
    procs.stop(p)


def rpc_rows(procs, work):
    p, _, bp_rpc, _ = peers.start_bufpool(procs, work, os.path.join(OUT, "bufpool-server.log"),
                                       SERVER_CPU, ["--max-memory", "4GiB"])
    redis, redis_port = start_redis(procs, work)
    for size, keys in ((4096, 200), (4096, 10000), (1048576, 100)):
        label = f"4 KiB, {keys} keys" if size == 4096 else "1 MiB"
        target = "1.2" if size == 4096 else "1.5"
        for op in ("set", "get"):
            mix = "put=1" if op == "set" else "get=1"
            for pipeline in (1, 16):
                b, n = Row(), Row()
                for rep in range(1, REPS + 1):
                    for row, who, url, pid in ((b, "bufpool", f"rpc://127.0.0.1:{bp_rpc}", p.pid),
                                               (n, "redis", f"redis://127.0.0.1:{redis_port}",
                                                redis.pid)):
                        t0 = peers.ticks(pid)
                        rps, p99 = bench_run(
                            f"rpc-{op}-{size}-p{pipeline}-{who}-{rep}",
                            ["--target", url, "-c", str(RPC_CONNS), "-p", str(pipeline), "--mix",
                             mix, "--size", str(size), "--keys", str(keys)])
                        row.add(rps, p99, cpu_us(peers.ticks(pid) - t0, rps))
                add_row(f"{op.upper()} {label}, pipeline {pipeline}", "redis", target, b, n, False)
    procs.stop(redis)
    procs.stop(p)


def start_redis(procs, work):
    port = peers.free_port()
    redis = procs.start(peers.pinned(SERVER_CPU, [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", work, "--logfile", os.path.join(work, "redis.log")]),
        os.path.join(work, "redis.out"))
    peers.wait_port(port)
    return redis, port


# Requests per redis-benchmark run, for about 5 s at the rates seen here (scaled by DURATION).
RB_REQUESTS = {(4096, 1): 500000, (4096, 16): 3000000, (1048576, 1): 10000,
               (1048576, 16): 10000}


CLIENT_BUSY = {}  # RESP row label -> the load generator's CPU / wall time, per run


def redis_benchmark(name, port, args, busy=None):
    """redis-benchmark (Redis's own client) pinned to the client core, -c 16, CSV output;
    -> (req/s, p99 ms). `busy`, a list, gets the client's CPU time over its wall time."""
    argv = cli(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(RPC_CONNS),
                "--csv", *args])
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run(argv, capture_output=True, text=True)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    if busy is not None:
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        busy.append(cpu / wall)
    with open(os.path.join(OUT, f"{name}.txt"), "w") as f:
        f.write(out.stdout + out.stderr)
    rows = [line for line in out.stdout.splitlines() if line.startswith('"') and
            not line.startswith('"test"')]
    if out.returncode != 0 or len(rows) != 1:
        fail(f"compare: redis-benchmark {name} failed:\n{out.stdout}{out.stderr}")
    fields = [f.strip('"') for f in rows[0].split(",")]
    return fields[1], float(fields[6])  # rps, p99_latency_ms


def resp_rows(procs, work):
    """bufpool-server's RESP front end against redis-server, both driven by redis-benchmark with
    the same flags. GET runs follow SETs of every key (20 per key, so that each exists)."""
    p, _, _, bp_resp = peers.start_bufpool(procs, work, os.path.join(OUT, "bufpool-server.log"),
                                           SERVER_CPU, ["--max-memory", "4GiB"], rpc=False,
                                           resp=True)
    redis, redis_port = start_redis(procs, work)
    for size, keys in ((4096, 200), (4096, 10000), (1048576, 100)):
        label = f"4 KiB, -r {keys}" if size == 4096 else f"1 MiB, -r {keys}"
        target = "1.2" if size == 4096 else "1.5"
        for port in (bp_resp, redis_port):  # the same keys and values in both
            redis_benchmark(f"resp-prefill-{size}-{keys}-{port}", port,
                            ["-t", "set", "-d", str(size), "-r", str(keys), "-P", "16", "-n",
                             str(keys * 20)])
        for op in ("set", "get"):
            for pipeline in (1, 16):
                n_req = RB_REQUESTS[(size, pipeline)] * DURATION // 5
                b, n = Row(), Row()
                busy = {"bufpool": [], "redis": []}
                for rep in range(1, REPS + 1):
                    for row, who, port, pid in ((b, "bufpool", bp_resp, p.pid),
                                                (n, "redis", redis_port, redis.pid)):
                        t0, c0 = peers.ticks(pid), time.monotonic()
                        rps, p99 = redis_benchmark(
                            f"resp-{op}-{size}-{keys}-p{pipeline}-{who}-{rep}", port,
                            ["-t", op, "-d", str(size), "-r", str(keys), "-P", str(pipeline),
                             "-n", str(n_req)], busy[who])
                        elapsed = time.monotonic() - c0
                        row.add(rps, p99, (peers.ticks(pid) - t0) * 10000 / (float(rps) * elapsed))
                row_label = f"RESP {op.upper()} {label}, -P {pipeline} (redis-benchmark)"
                add_row(row_label, "redis", target, b, n, False)
                CLIENT_BUSY[row_label] = busy
    procs.stop(redis)
    procs.stop(p)


def overload_rows(procs, work):
    """max_memory 256 MiB; 64 writers of 16 MiB values ask for 1 GiB at once, into 12 keys
    (192 MiB stored), so a PUT succeeds when memory frees in time (alloc_timeout 1 s) and gets
    503 otherwise. A quarter of the requests are verified GETs."""
    over = []
    for rep in range(1, REPS + 1):
        p, bp_http, _, _ = peers.start_bufpool(
            procs, work, os.path.join(OUT, "bufpool-server.log"), SERVER_CPU,
            ["--max-memory", "256MiB", "--alloc-timeout", "1s"])
        name = f"overload-{rep}"
        js = os.path.join(OUT, f"{name}.json")
        with open(os.path.join(OUT, f"{name}.txt"), "w") as out:
            subprocess.run(cli([peers.BENCH, "--target", f"http://127.0.0.1:{bp_http}", "-c", "64",
                                "-t", "1", "-d", f"{DURATION * 2}s", "-w", "0s", "--mix",
                                "put=3,get=1", "--size", "16MiB", "--keys", "12", "--verify",
                                "-q", "--json", js]), stdout=out, stderr=subprocess.STDOUT)
        alive = "yes" if p.poll() is None else "no"
        peak_mib = peers.peak_rss_kib(p.pid) // 1024
        procs.stop(p)
        r = json.load(open(js))
        puts, e503 = r["puts"], r["errors"].get("http_503", 0)
        put_p99 = f"{r['put_latency_us']['p99'] / 1000:.1f}"
        rate = f"{100 * e503 / (puts + e503) if puts + e503 else 0:.1f}"
        over.append(f"| {rep} | {peak_mib} | {puts} | {e503} | {rate} % | {r['corrupt']} | "
                    f"{r['verified']} | {put_p99} | {r['error_count']} | {alive} |")
        print(f"  overload {rep}: peak RSS {peak_mib} MiB, 503 rate {rate} %, corrupt "
              f"{r['corrupt']}, p99 of successful PUTs {put_p99} ms, alive {alive}",
              file=sys.stderr)
    return over


def version(argv, pattern, group=1):
    out = subprocess.run(argv, capture_output=True, text=True)
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(group) if m else "?"


def client_busy_lines():
    """How busy redis-benchmark's core was in the RESP rows: near 100% means the load generator,
    not the server, set the rate, for both servers alike."""
    if not CLIENT_BUSY:
        return []
    lines = ["", "redis-benchmark's CPU time over its wall time in the RESP rows (its core: "
             "100% = saturated),", "runs against bufpool-server / against redis-server:", ""]
    for label, busy in CLIENT_BUSY.items():
        pct = lambda xs: " ".join(f"{100 * x:.0f}%" for x in xs)  # noqa: E731
        lines.append(f"- {label}: {pct(busy['bufpool'])} / {pct(busy['redis'])}")
    return lines


def overload_lines(over, d):
    """The overload table, when that group ran."""
    if not over:
        return []
    return [
        "",
        "Overload: bufpool-server `--max-memory 256MiB --alloc-timeout 1s --threads 1`; "
        "`bufpool-bench --target http://... -c 64",
        f"--mix put=3,get=1 --size 16MiB --keys 12 --verify -d {d * 2}s`: 64 writers of 16 MiB "
        "ask for",
        "1 GiB at once; 12 keys hold 192 MiB. Target: peak RSS ≤ 320 MiB (max_memory + 64 MiB), "
        "no crash,",
        "nothing corrupt. The 503 rate is 503s / (PUTs done + 503s).",
        "",
        "| run | peak RSS MiB | PUTs done | 503s | 503 rate | corrupt | GETs verified | p99 of "
        "successful PUTs ms | errors in all | server alive |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *over,
    ]


def section(over):
    now = datetime.datetime.now(datetime.timezone.utc)
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "?")
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo")
                   if line.startswith("MemTotal"))
    server_version = subprocess.run([peers.SERVER, "--version"], capture_output=True,
                                    text=True).stdout.split()[-1]
    nginx = version(["nginx", "-v"], r": (\S+)")
    redis = version(["redis-server", "--version"], r"v=(\S+)")
    wrk_v = version(["wrk", "-v"], r"^wrk (\S+)")
    gxx = subprocess.run(["g++", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    d, w = DURATION, WARMUP
    lines = [
        f"<!-- {SECTION}:begin (written by perf/compare.py; do not edit by hand) -->",
        f"## {now:%Y-%m-%d}: bufpool-server against nginx and Redis (issue 5), {now:%H:%M} UTC",
        "",
        f"Command: `make compare` (`perf/compare.py`, REPS={REPS} DURATION={d}s WARMUP={w}s).",
        f"Machine: {os.cpu_count()} cores ({cpu_model}),",
        f"{mem_kib / 1048576:.0f} GiB, Linux {platform.release()}, shared and noisy.",
        f"Versions: bufpool-server {server_version}, {nginx},",
        f"redis-server {redis}, wrk {wrk_v}, g++ {gxx}.",
        "",
        "Every server runs one thread (bufpool-server `--threads 1`, nginx `worker_processes 1`,",
        f"redis-server as it comes) pinned to CPU {SERVER_CPU} with `taskset`; every load "
        f"generator runs one",
        f"thread pinned to CPU {CLIENT_CPU}. HTTP: {CONNS} connections, keep-alive, the same "
        "bytes (files in",
        "/dev/shm for nginx, with sendfile and the access log off; PUT once into bufpool-server, "
        "and",
        f"checked byte for byte); `wrk -t1 -c{CONNS} -d{d}s --latency` against both, then",
        f"`bufpool-bench --target http://.../v1/buffers/vSIZE -c {CONNS} -t 1` as a cross-check, "
        "then the same",
        "with `--rate` at 60% of the slower server's wrk median (open loop, latency from the "
        "intended",
        "send time): a closed loop's p99 grows with the throughput it reaches, so the p99s are "
        "compared",
        f"at the same offered load too. RPC: `bufpool-bench -c {RPC_CONNS} -t 1",
        "--mix put=1|get=1 --size SIZE -p 1|16` with `rpc://` against bufpool-server and "
        "`redis://` against",
        "redis-server (no persistence); keys 10,000 (4 KiB) or 100 (1 MiB); GET runs PUT every "
        "key first.",
        f"RESP: `redis-benchmark -c {RPC_CONNS} -t set|get -d SIZE -r KEYS -P 1|16 -n N --csv` "
        "against both servers",
        "(bufpool-server's RESP front end, and redis-server), N sized for about "
        f"{DURATION} s; each key SET 20 times",
        "before the GETs. Its latency is Redis's: time to the first byte of the reply. "
        "CPU µs/req for these rows",
        "divides by the requests over the run's own wall time.",
        "Runs alternate between the peers. Figures: median req/s (the runs in brackets), median "
        "p99 in ms.",
        "HTTP rows must also have a p99 no worse than nginx's. CPU µs/req: the server process's "
        "CPU time",
        "(utime + stime from /proc) over the run, warmup included, divided by the requests it "
        "served",
        "(the measured rate times the run's length). With two cores the load generator often "
        "saturates",
        "its core first (at 1 MiB always), and then the servers' CPU per request is what differs.",
        "",
        "| case | peer | bufpool req/s (runs) | bufpool | peer req/s (runs) | peer | bufpool / peer "
        "| bufpool p99 ms | peer p99 ms | bufpool CPU µs/req | peer CPU µs/req | target met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *ROWS,
        *client_busy_lines(),
        *overload_lines(over, d),
        "",
        "Chart: [perf/compare.svg](compare.svg)." if SECTION == "compare" else
        f"A partial run (ONLY={','.join(ONLY)}): no chart.",
        "Raw outputs: build/compare/ (not committed).",
        f"<!-- {SECTION}:end -->",
    ]
    return "\n".join(lines) + "\n"


def replace_section(text):
    """Replaces the previous section of RESULTS (or appends the first one), leaving the rest."""
    with open(RESULTS) as f:
        old = f.read()
    m = re.search(rf"<!-- {SECTION}:begin.*?<!-- {SECTION}:end -->\n?", old, re.S)
    new = old[: m.start()] + text + old[m.end():] if m else old.rstrip("\n") + "\n\n" + text
    with open(RESULTS, "w") as f:
        f.write(new)


def main():
    if sys.argv[1:] == ["--chart-only"]:
        if not os.path.exists(CHART_DAT):
            fail(f"compare: no {CHART_DAT} (run make compare)", 2)
        draw_chart()
        return
    if sys.argv[1:]:
        fail(__doc__.strip(), 2)
    peers.need_tools("compare", ["wrk", "nginx", "redis-server", "redis-benchmark", "gnuplot",
                                 "taskset"])
    if any(g not in GROUPS for g in ONLY):
        fail(f"compare: ONLY takes {','.join(GROUPS)}", 2)
    if not (os.access(peers.SERVER, os.X_OK) and os.access(peers.BENCH, os.X_OK)):
        fail("compare: build first (make build)", 2)
    if (os.cpu_count() or 1) < 2:
        fail("compare: needs 2 cores to pin servers and clients apart", 2)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f"# compare: {now:%Y-%m-%dT%H:%M:%SZ}, server on CPU {SERVER_CPU}, load on CPU "
          f"{CLIENT_CPU}, {REPS} runs of {DURATION}s", file=sys.stderr)
    procs = peers.Processes()
    work = tempfile.mkdtemp(prefix="bufpool-compare-", dir="/dev/shm")
    over = []
    try:
        if "http" in ONLY:
            http_rows(procs, work)
        if "rpc" in ONLY:
            rpc_rows(procs, work)
        if "resp" in ONLY:
            resp_rows(procs, work)
        if "overload" in ONLY:
            over = overload_rows(procs, work)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    if SECTION == "compare":  # the chart shows the whole comparison only
        with open(CHART_DAT, "w") as f:
            f.write("\n".join(CHART) + "\n")
        draw_chart()
    text = section(over)
    with open(os.path.join(OUT, "section.md"), "w") as f:
        f.write(text)
    replace_section(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
