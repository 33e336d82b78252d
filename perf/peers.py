"""What perf/compare.py and perf/server_bench.py share: starting bufpool-server and nginx on
loopback with the same bytes, pinning, waiting for ports, and reading a process's CPU time.

Python's standard library only (Debian's python3). Every process started here is stopped by
Processes.stop_all(), by its pid, also when the script fails.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

SERVER = "build/release/server/bufpool-server"
BENCH = "build/release/client/bufpool-bench"


def fail(message, code=1):
    print(message, file=sys.stderr)
    sys.exit(code)


def need_tools(script, tools, hint="make bench-deps installs it"):
    for tool in tools:
        if shutil.which(tool) is None:
            fail(f"{script}: {tool} is missing ({hint})", 2)


def median(values):
    """The middle value in numeric order (of an even count, the lower middle), returned as it
    was given: a figure keeps the digits its tool printed."""
    s = sorted(values, key=float)
    return s[(len(s) + 1) // 2 - 1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10.0):
    """Until something listens on 127.0.0.1:port; exits 1 after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    fail(f"nothing listens on 127.0.0.1:{port}")


def ticks(pid):
    """A process's CPU time (utime + stime), in clock ticks (1/100 s)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu)] + list(argv)


class Processes:
    """The servers a script started, stopped by pid at the end whatever happens."""

    def __init__(self):
        self.procs = []
        self.pid_files = []

    def start(self, argv, log):
        with open(log, "wb") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_pid_file(self, path):
        """Stops the daemon whose pid is in `path` (nginx), once."""
        if path in self.pid_files:
            self.pid_files.remove(path)
        try:
            with open(path) as f:
                os.kill(int(f.read().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass

    def stop_all(self):
        for p in self.procs:
            self.stop(p)
        for path in list(self.pid_files):
            self.stop_pid_file(path)


def start_bufpool(procs, work, log, cpu=None, extra=(), rpc=True, resp=False):
    """bufpool-server with one thread on ephemeral ports (RPC off unless `rpc`, RESP off unless
    `resp`); returns (Popen, http_port, rpc_port, resp_port), 0 for a port that is off."""
    ports = os.path.join(work, "ports.json")
    if os.path.exists(ports):
        os.remove(ports)
    argv = [SERVER, "--http-listen", "127.0.0.1:0", "--rpc-listen", "127.0.0.1:0" if rpc else "",
            "--resp-listen", "127.0.0.1:0" if resp else "", "--threads", "1", "--port-file", ports, "--log-level", "warn", *extra]
    p = procs.start(pinned(cpu, argv) if cpu is not None else argv, log)
    for _ in range(200):
        if os.path.exists(ports) and os.path.getsize(ports) > 0:
            break
        if p.poll() is not None:
            with open(log) as f:
                fail(f"bufpool-server exited with {p.returncode}: {f.read().strip()}")
        time.sleep(0.05)
    with open(ports) as f:
        ports_json = json.load(f)
    return p, ports_json["http"], ports_json.get("rpc", 0), ports_json.get("resp", 0)


def http(method, url, data=None):
    req = urllib.request.Request(url, data=data, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


NGINX_CONF = """worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  open_file_cache max=100;
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{port}; root {work}/www; }}
}}
"""


def start_nginx_peer(procs, work, bp_port, ng_port, sizes, cpu=None):
    """Writes WORK/www/v1/buffers/vSIZE (random bytes) for each size, PUTs each into
    bufpool-server, starts nginx (one worker, sendfile, access log off, keep-alive) on ng_port
    with WORK/www as its root, and checks that both servers return each file byte for byte:
    figures from servers that serve different bytes mean nothing. Returns the worker's pid."""
    root = os.path.join(work, "www", "v1", "buffers")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF.format(work=work, port=ng_port))
    files = {}
    for size in sizes:
        files[size] = os.urandom(size)
        with open(os.path.join(root, f"v{size}"), "wb") as f:
            f.write(files[size])
        http("PUT", f"http://127.0.0.1:{bp_port}/v1/buffers/v{size}", files[size])
    for dirpath, dirnames, filenames in os.walk(work):  # nginx's workers drop root
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    argv = ["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work]
    subprocess.run(pinned(cpu, argv) if cpu is not None else argv, check=True)
    pid_file = os.path.join(work, "nginx.pid")
    procs.pid_files.append(pid_file)
    wait_port(ng_port)
    for size in sizes:
        for port in (bp_port, ng_port):
            if http("GET", f"http://127.0.0.1:{port}/v1/buffers/v{size}") != files[size]:
                fail(f"port {port} does not serve v{size} correctly")
    with open(pid_file) as f:
        master = f.read().strip()
    workers = subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()
    return int(workers[0]) if workers else int(master)


def stop_nginx(procs, work):
    procs.stop_pid_file(os.path.join(work, "nginx.pid"))


def wrk(argv, url, log):
    """Runs wrk (argv: the command up to the URL); returns (req/s, p99 ms). Exits on errors."""
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout
    with open(log, "a") as f:
        f.write(out)
    if "Non-2xx" in out or "Socket errors" in out:
        fail(f"errors from {url}")
    rps, p99 = None, None
    for line in out.splitlines():
        words = line.split()
        if line.startswith("Requests/sec"):
            rps = float(words[1])
        elif words and words[0] == "99%":
            p99 = latency_ms(words[1])
    return rps, p99


def latency_ms(text):
    """wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds."""
    for unit, factor in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)
