#!/usr/bin/env python3
"""bufpool-server's HTTP GET throughput with wrk, against nginx serving the same bytes from files,
in the same run on the same machine.

Usage: perf/server_bench.py [REPS] [DURATION]   (make bench-server)
  REPS      runs per case (default 3; the median is reported)
  DURATION  wrk duration per run (default 5s)
Needs wrk and nginx-light (Debian packages; make bench-deps installs them). Both servers get one
worker thread and wrk one thread with 32 connections, so that the 2 cores are split evenly.
"""
import datetime
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main():
    if len(sys.argv) > 3 or any(a in ("-h", "--help") for a in sys.argv[1:]):
        peers.fail(__doc__.strip(), 2)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    duration = sys.argv[2] if len(sys.argv) > 2 else "5s"
    peers.need_tools("server_bench", ["wrk", "nginx"], "apt-get install wrk nginx-light")
    if not os.access(peers.SERVER, os.X_OK):
        peers.fail("server_bench: build first (make build)", 2)
    procs = peers.Processes()
    work = tempfile.mkdtemp(prefix="bufpool-server-bench-")
    try:
        p, port, _, _ = peers.start_bufpool(procs, work, os.path.join(work, "server.log"),
                                         extra=["--max-memory", "1GiB"], rpc=False)
        nport = peers.free_port()
        sizes = [4096, 65536, 1048576]
        peers.start_nginx_peer(procs, work, port, nport, sizes)
        wrk = ["wrk", "-t1", "-c32", f"-d{duration}", "--latency"]
        log = os.path.join(work, "wrk.txt")
        now = datetime.datetime.now(datetime.timezone.utc)
        print(f"# server_bench {now:%Y-%m-%dT%H:%M:%SZ}, {os.cpu_count()} cores, wrk -t1 -c32 "
              f"-d{duration}, {reps} runs each")
        print("| size | bufpool req/s (runs) | bufpool median | p99 | nginx req/s (runs) | "
              "nginx median | p99 | bufpool / nginx |")
        print("|---|---|---|---|---|---|---|---|")
        for size in sizes:
            b_runs, n_runs = [], []
            b_p99 = n_p99 = 0.0
            for _ in range(reps):
                rps, b_p99 = peers.wrk(wrk, f"http://127.0.0.1:{port}/v1/buffers/v{size}", log)
                b_runs.append(rps)
                rps, n_p99 = peers.wrk(wrk, f"http://127.0.0.1:{nport}/v1/buffers/v{size}", log)
                n_runs.append(rps)
            b_med, n_med = peers.median(b_runs), peers.median(n_runs)
            print(f"| {size} | {' '.join(f'{r:.2f}' for r in b_runs)} | {b_med:.2f} | "
                  f"{b_p99:.3f}ms | {' '.join(f'{r:.2f}' for r in n_runs)} | {n_med:.2f} | "
                  f"{n_p99:.3f}ms | {b_med / n_med:.2f} |")
    finally:
        peers.stop_nginx(procs, work)
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
