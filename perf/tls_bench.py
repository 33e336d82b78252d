#!/usr/bin/env python3
"""What TLS costs bufpool-server: the same requests to a plain server and to one with TLS on its
HTTP and RPC listeners, in the same run, alternating, server on CPU 0 and client on CPU 1.

Usage: perf/tls_bench.py [REPS] [DURATION_S]   (make bench-tls)
  HTTP GET of 64 KiB and 1 MiB values with wrk (-t1 -c32; https:// for TLS), and RPC GET of
  4 KiB values with bufpool-bench (-c 16, pipeline 1 and 16; --tls for TLS). Prints a Markdown
  table of medians (req/s), the TLS / plain ratio, and the server's CPU per request.
A self-signed certificate for 127.0.0.1 is made with the openssl command for the run.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SERVER_CPU, CLIENT_CPU = 0, 1


def main():
    if len(sys.argv) > 3 or any(a in ("-h", "--help") for a in sys.argv[1:]):
        peers.fail(__doc__.strip(), 2)
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    duration = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    peers.need_tools("tls_bench", ["wrk", "openssl", "taskset", "curl"])
    for binary in (peers.SERVER, peers.BENCH):
        if not os.access(binary, os.X_OK):
            peers.fail("tls_bench: build first (make build)", 2)
    procs = peers.Processes()
    work = tempfile.mkdtemp(prefix="bufpool-tls-bench-")
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        servers = {}
        for who, extra in (("plain", []),
                           ("tls", ["--tls-cert-file", cert, "--tls-key-file", key,
                                    "--tls-http", "true", "--tls-rpc", "true"])):
            sub = os.path.join(work, who)
            os.mkdir(sub)
            p, http, rpc, _ = peers.start_bufpool(procs, sub, os.path.join(sub, "server.log"),
                                                  cpu=SERVER_CPU, rpc=True,
                                                  extra=["--max-memory", "1GiB", *extra])
            scheme = "https" if who == "tls" else "http"
            for size in (65536, 1048576):
                value = os.path.join(work, f"v{size}")
                with open(value, "wb") as f:
                    f.write(os.urandom(size))
                subprocess.run(["curl", "-sSf", "--cacert", cert, "-X", "PUT", "--data-binary",
                                "@" + value, f"{scheme}://127.0.0.1:{http}/v1/buffers/v{size}"],
                               check=True, capture_output=True)
            servers[who] = (p, http, rpc)
        wrk = peers.pinned(CLIENT_CPU, ["wrk", "-t1", "-c32", f"-d{duration}s", "--latency"])
        log = os.path.join(work, "wrk.txt")

        def http_case(size):
            def run(who):
                p, http, _ = servers[who]
                scheme = "https" if who == "tls" else "http"
                return peers.wrk(wrk, f"{scheme}://127.0.0.1:{http}/v1/buffers/v{size}", log)[0]
            return run

        def rpc_case(pipeline):
            def run(who):
                p, _, rpc = servers[who]
                js = os.path.join(work, f"rpc-{who}.json")
                argv = [peers.BENCH, "--target", f"rpc://127.0.0.1:{rpc}", "-c", "16", "-t", "1",
                        "--pipeline", str(pipeline), "--mix", "get=1", "--size", "4KiB",
                        "--keys", "200", "-d", f"{duration}s", "-w", "1s", "-q", "--json", js]
                if who == "tls":
                    argv += ["--tls", "--cacert", cert]
                subprocess.run(peers.pinned(CLIENT_CPU, argv), check=True, capture_output=True)
                report = json.load(open(js))
                if report["error_count"]:
                    peers.fail(f"tls_bench: {report['error_count']} errors ({who})")
                return report["throughput_rps"]
            return run

        cases = [("HTTP GET 64 KiB (wrk)", http_case(65536)),
                 ("HTTP GET 1 MiB (wrk)", http_case(1048576)),
                 ("RPC GET 4 KiB, pipeline 1 (bufpool-bench)", rpc_case(1)),
                 ("RPC GET 4 KiB, pipeline 16 (bufpool-bench)", rpc_case(16))]
        now = datetime.datetime.now(datetime.timezone.utc)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        print(f"# tls_bench {now:%Y-%m-%dT%H:%M:%SZ} at {commit}, {os.cpu_count()} cores, "
              f"{reps} runs of {duration}s each, server on CPU {SERVER_CPU}, client on CPU "
              f"{CLIENT_CPU}")
        print("| case | plain req/s (runs) | TLS req/s (runs) | TLS / plain | server CPU µs/req, "
              "plain vs TLS |")
        print("|---|---|---|---|---|")
        for name, run in cases:
            runs = {"plain": [], "tls": []}
            cpu = {"plain": [], "tls": []}
            for _ in range(reps):
                for who in ("plain", "tls"):
                    pid = servers[who][0].pid
                    t0 = peers.ticks(pid)
                    rps = float(run(who))
                    runs[who].append(rps)
                    # ticks are 10 ms; over the run (the RPC case has 1 s of warmup more)
                    seconds = duration + (1 if name.startswith("RPC") else 0)
                    cpu[who].append((peers.ticks(pid) - t0) * 10000 / (rps * seconds))
            med = {w: peers.median(v) for w, v in runs.items()}
            print(f"| {name} | {' '.join(f'{r:.0f}' for r in runs['plain'])} | "
                  f"{' '.join(f'{r:.0f}' for r in runs['tls'])} | {med['tls'] / med['plain']:.2f} | "
                  f"{peers.median(cpu['plain']):.1f} vs {peers.median(cpu['tls']):.1f} |",
                  flush=True)
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
