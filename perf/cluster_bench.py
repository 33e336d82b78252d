#!/usr/bin/python3
"""What the proxies cost, and what more servers give: bufpool-bench against one server directly
and through haproxy (HTTP) or twemproxy (RESP), in the same run, alternating.

Usage: perf/cluster_bench.py [REPS] [DURATION_S]   (make bench-cluster)
  1. proxy against direct: one server behind each proxy (deploy/cluster/cluster.py's Cluster with
     the shipped configs), GET and SET of 4 KiB and 1 MiB values, -c 16, pipeline 1. The server
     and the proxy share CPU 0, the client has CPU 1.
  2. N servers against one: the same GET 4 KiB load through each proxy with 1 and 3 servers, all
     on CPU 0 with the proxy.
Prints Markdown tables of medians over REPS runs (default 3) of DURATION_S seconds (default 5):
requests per second, p99, and the CPU time per request of the server(s) and of the proxy, read
from /proc/PID/stat over each run (ticks of 10 ms).
"""
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'deploy', 'cluster'))
import peers  # noqa: E402
from cluster import Cluster  # noqa: E402

os.chdir(os.path.join(HERE, '..'))
SERVER_CPU, CLIENT_CPU = 0, 1
SIZES = {'4KiB': 1000, '1MiB': 64}  # value size: keys (1 MiB x 64 keys fits the default pool)


def bench(target, op, size, duration, work):
    """One bufpool-bench run: (req/s, p99 ms, requests)."""
    js = os.path.join(work, 'bench.json')
    argv = [peers.BENCH, '--target', target, '-c', '16', '-t', '1', '--mix', f'{op}=1',
            '--size', size, '--keys', str(SIZES[size]), '-d', f'{duration}s', '-w', '1s', '-q',
            '--json', js]
    if op == 'put':
        argv.append('--no-prefill')
    r = subprocess.run(peers.pinned(CLIENT_CPU, argv), capture_output=True, text=True)
    if r.returncode != 0:
        peers.fail(f'cluster_bench: bufpool-bench {target} {op} {size}: {r.stdout}{r.stderr}')
    report = json.load(open(js))
    return report['throughput_rps'], report['latency_us']['p99'] / 1000, report['requests']


def cpu_us_per_request(pids, before, requests, seconds, measured):
    """CPU µs per request over the whole run (warmup and prefill too: scaled to the measured
    share of the requests by time, which the closed loop keeps near constant)."""
    used = sum(peers.ticks(p) - before[p] for p in pids) * 10000  # µs
    return used * measured / seconds / requests


def run_case(cluster, proto, op, size, duration, work, via):
    """(req/s, p99 ms, server µs/req, proxy µs/req) for one run."""
    server = cluster.servers[0]
    if via == 'direct':
        port = server['http'] if proto == 'http' else server['resp']
    else:
        port = cluster.http_port if proto == 'http' else cluster.resp_port
    scheme = 'http' if proto == 'http' else 'redis'
    proxy = cluster.haproxy if proto == 'http' else cluster.nutcracker
    pids = [s['proc'].pid for s in cluster.servers]
    before = {p: peers.ticks(p) for p in pids + [proxy.pid]}
    t0 = time.monotonic()
    rps, p99, requests = bench(f'{scheme}://127.0.0.1:{port}', op, size, duration, work)
    elapsed = time.monotonic() - t0
    srv = cpu_us_per_request(pids, before, requests, elapsed, duration)
    prx = cpu_us_per_request([proxy.pid], before, requests, elapsed, duration)
    return rps, p99, srv, prx


def main():
    if len(sys.argv) > 3 or any(a in ('-h', '--help') for a in sys.argv[1:]):
        peers.fail(__doc__.strip(), 2)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    duration = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    peers.need_tools('cluster_bench', ['taskset', 'haproxy', 'nutcracker'], 'make deps installs it')
    for binary in (peers.SERVER, peers.BENCH):
        if not os.access(binary, os.X_OK):
            peers.fail('cluster_bench: build first (make build)', 2)
    work = tempfile.mkdtemp(prefix='bufpool-cluster-bench-')
    now = datetime.datetime.now(datetime.timezone.utc)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                            text=True).stdout.strip()
    print(f'# cluster_bench {now:%Y-%m-%dT%H:%M:%SZ} at {commit}, {os.cpu_count()} cores, '
          f'{reps} runs of {duration}s each; servers and proxy on CPU {SERVER_CPU}, '
          f'bufpool-bench (-c 16 -p 1) on CPU {CLIENT_CPU}')
    args = ['--max-memory', '1GiB']

    print('\n## Through a proxy against direct (one server)\n')
    print('| case | direct req/s | proxy req/s | proxy / direct | p99 ms, direct vs proxy | '
          'server µs/req, direct vs proxy | proxy µs/req |')
    print('|---|---|---|---|---|---|---|')
    with Cluster(1, server_args=args, tokens=False, cpu=SERVER_CPU) as c:
        for proto, name in (('http', 'HTTP via haproxy'), ('resp', 'RESP via twemproxy')):
            for op in ('get', 'put'):
                for size in SIZES:
                    runs = {'direct': [], 'proxy': []}
                    for _ in range(reps):
                        for via in runs:
                            runs[via].append(run_case(c, proto, op, size, duration, work, via))
                    med = {v: [peers.median([r[i] for r in runs[v]]) for i in range(4)]
                           for v in runs}
                    d, p = med['direct'], med['proxy']
                    label = f'{name}: {"GET" if op == "get" else "SET"} {size}'
                    print(f'| {label} | {d[0]:.0f} | {p[0]:.0f} | {p[0] / d[0]:.2f} | '
                          f'{d[1]:.2f} vs {p[1]:.2f} | {d[2]:.1f} vs {p[2]:.1f} | {p[3]:.1f} |',
                          flush=True)

    print('\n## N servers against one, through each proxy (GET 4 KiB; all on CPU 0)\n')
    print('| proxy | servers | req/s | p99 ms | servers µs/req | proxy µs/req |')
    print('|---|---|---|---|---|---|')
    for n in (1, 3):
        with Cluster(n, server_args=args, tokens=False, cpu=SERVER_CPU) as c:
            for proto, name in (('http', 'haproxy'), ('resp', 'twemproxy')):
                runs = [run_case(c, proto, 'get', '4KiB', duration, work, 'proxy')
                        for _ in range(reps)]
                m = [peers.median([r[i] for r in runs]) for i in range(4)]
                print(f'| {name} | {n} | {m[0]:.0f} | {m[1]:.2f} | {m[2]:.1f} | {m[3]:.1f} |',
                      flush=True)


if __name__ == '__main__':
    main()
