#!/usr/bin/python3
"""N bufpool-servers behind haproxy (HTTP) and twemproxy (RESP), on loopback.

  cluster.py run  [--servers 3] [--http-port P] [--resp-port P]   start, print, wait for Ctrl-C
  cluster.py test [--seed S]                                        start, check, stop

Both use the shipped configs, deploy/haproxy/haproxy.cfg and deploy/twemproxy/nutcracker.yml,
with the addresses filled in (ports are free ones picked at start unless given). `test` checks:
keys spread over every server (20-45% each of 3,000), values round-trip through both proxies
byte for byte (MGET/MSET across servers too), auth and 503 + Retry-After pass through haproxy,
stopping one server makes both proxies route around it within 5 s (its keys are misses, nothing
else fails), and restarting it brings it back. Every process started is stopped by its PID.

The servers are bufpool-server from $BUFPOOL_SERVER_BIN, or build/release's. Uses only the
Python standard library and Debian's python3-redis (run it with /usr/bin/python3)."""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
TOKEN = 'cluster-test-write-token-0123456789'  # a write token for every server (and twemproxy)
ADMIN = 'cluster-test-admin-token-0123456789'


_given = set()


def free_port():
    """A port that nothing listens on, for a listener started a moment later. It is taken below
    the kernel's ephemeral range, where no outgoing connection picks its source port (one did,
    between the pick and podman's bind), and never one this process handed out before."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            ephemeral = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    pick = random.SystemRandom()
    for _ in range(1000):
        port = pick.randrange(10000, max(ephemeral, 10001))
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError('no free port below the ephemeral range')


def wait_for(what, check, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # not up yet: refused, reset, or a client library's error for it
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f'timed out after {timeout:.0f} s waiting for {what}')
        time.sleep(step)


class Http:
    """One keep-alive HTTP/1.1 connection (http.client), reopened after a failure."""

    def __init__(self, port, token=TOKEN):
        self.port, self.token, self.conn = port, token, None

    def request(self, method, path, body=None, token=None, timeout=10):
        headers = {}
        token = self.token if token is None else token
        if token:
            headers['Authorization'] = f'Bearer {token}'
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader('Connection', '').lower() == 'close':
                    self.close()
                return r.status, data, r.headers  # case-insensitive .get()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


class Cluster:
    """N servers, haproxy and nutcracker; a context manager that stops them all."""

    def __init__(self, servers=3, http_port=None, resp_port=None, stats_port=None,
                 server_args=(), tokens=True, bin_path=None, cpu=None):
        self.n = servers
        self.bin = bin_path or os.environ.get('BUFPOOL_SERVER_BIN') or os.path.join(
            SOURCE, 'build', 'release', 'server', 'bufpool-server')
        self.dir = tempfile.mkdtemp(prefix='bufpool-cluster-')
        self.http_port = http_port or free_port()
        self.resp_port = resp_port or free_port()
        self.stats_port = stats_port or free_port()
        self.server_args = list(server_args)
        self.tokens = tokens
        # taskset: every process of the cluster on these CPUs ("0"), for benchmarks.
        self.pin = ['taskset', '-c', str(cpu)] if cpu is not None else []
        self.servers = []  # per server: {'proc', 'http', 'rpc', 'resp'}
        self.haproxy = self.nutcracker = None

    # --- processes -------------------------------------------------------------------------
    def _log(self, name):
        return open(os.path.join(self.dir, name + '.log'), 'ab')

    def start_server(self, i, ports=None):
        port_file = os.path.join(self.dir, f'bufpool-{i}.ports')
        if os.path.exists(port_file):
            os.unlink(port_file)
        p = ports or {'http': 0, 'rpc': 0, 'resp': 0}
        env = dict(os.environ)
        if self.tokens:
            env['BUFPOOL_TOKENS'] = f'write:{TOKEN},admin:{ADMIN}'
        args = [self.bin, '--http-listen', f'127.0.0.1:{p["http"]}',
                '--rpc-listen', f'127.0.0.1:{p["rpc"]}', '--resp-listen', f'127.0.0.1:{p["resp"]}',
                '--port-file', port_file, '--log-level', 'warn'] + self.server_args
        proc = subprocess.Popen(self.pin + args, env=env, stdout=self._log(f'bufpool-{i}'),
                                stderr=subprocess.STDOUT)
        wait_for(f'server bufpool-{i} to listen', lambda: proc.poll() is None and
                 os.path.exists(port_file) and os.path.getsize(port_file) > 0)
        with open(port_file) as f:
            ports = json.load(f)
        server = {'proc': proc, **ports}
        if i < len(self.servers):
            self.servers[i] = server
        else:
            self.servers.append(server)
        return server

    def stop_server(self, i, sig=signal.SIGTERM):
        proc = self.servers[i]['proc']
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def proxy_env(self):
        env = dict(os.environ)
        env['BUFPOOL_PROXY_HTTP'] = f'127.0.0.1:{self.http_port}'
        env['BUFPOOL_PROXY_RESP'] = f'127.0.0.1:{self.resp_port}'
        env['BUFPOOL_PROXY_STATS'] = f'127.0.0.1:{self.stats_port}'
        for i, s in enumerate(self.servers):
            env[f'BUFPOOL_HTTP_{i + 1}'] = f'127.0.0.1:{s["http"]}'
            env[f'BUFPOOL_RESP_{i + 1}'] = f'127.0.0.1:{s["resp"]}'
        return env

    def nutcracker_config(self, env):
        """The shipped nutcracker.yml, filled in by deploy/twemproxy/render.sh."""
        path = os.path.join(self.dir, 'nutcracker.yml')
        env = dict(env, BUFPOOL_SERVERS=str(self.n))
        if self.tokens:
            env['BUFPOOL_PROXY_AUTH'] = TOKEN
        subprocess.run([os.path.join(SOURCE, 'deploy', 'twemproxy', 'render.sh'),
                        os.path.join(SOURCE, 'deploy', 'twemproxy', 'nutcracker.yml'), path],
                       env=env, check=True)
        return path

    def haproxy_config(self):
        """The shipped haproxy.cfg; for other than 3 servers, with its server lines redone."""
        shipped = os.path.join(SOURCE, 'deploy', 'haproxy', 'haproxy.cfg')
        if self.n == 3:
            return shipped
        with open(shipped) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            if line.strip().startswith('server bufpool-'):
                if line.strip().startswith('server bufpool-0 '):
                    out += [f'    server bufpool-{i - 1} "${{BUFPOOL_HTTP_{i}}}" id {i} check'
                            for i in range(1, self.n + 1)]
                continue
            out.append(line)
        path = os.path.join(self.dir, 'haproxy.cfg')
        with open(path, 'w') as f:
            f.write('\n'.join(out) + '\n')
        return path

    def start(self):
        try:
            for i in range(self.n):
                self.start_server(i)
            env = self.proxy_env()
            cfg = self.haproxy_config()
            check = subprocess.run(['haproxy', '-c', '-q', '-f', cfg], env=env,
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError(f'haproxy -c: {check.stdout}{check.stderr}')
            # -db: stay in the foreground (the PID is haproxy's own, to stop it by).
            self.haproxy = subprocess.Popen(self.pin + ['haproxy', '-db', '-f', cfg], env=env,
                                            stdout=self._log('haproxy'), stderr=subprocess.STDOUT)
            ncfg = self.nutcracker_config(env)
            test = subprocess.run(['nutcracker', '-t', '-c', ncfg], capture_output=True, text=True)
            if test.returncode != 0:
                raise RuntimeError(f'nutcracker -t: {test.stdout}{test.stderr}')
            self.nutcracker = subprocess.Popen(
                self.pin + ['nutcracker', '-c', ncfg, '-s', str(free_port()), '-o', '/dev/stderr'],
                stdout=self._log('nutcracker'), stderr=subprocess.STDOUT)
            wait_for('haproxy to see every server up',
                     lambda: self.haproxy_up() == set(range(self.n)))
            wait_for('twemproxy to answer', lambda: self.resp_ping())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, keep_logs=False):
        for p in [self.haproxy, self.nutcracker] + [s['proc'] for s in self.servers]:
            if p and p.poll() is None:
                p.terminate()
        for p in [self.haproxy, self.nutcracker] + [s['proc'] for s in self.servers]:
            if p:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, kind, *exc):
        if kind is not None:
            print(f'logs kept in {self.dir}')
        self.stop(keep_logs=kind is not None)

    # --- what the proxies say ------------------------------------------------------------
    def haproxy_up(self):
        """The indexes of the servers that haproxy has UP (bufpool-I), from its stats CSV."""
        c = http.client.HTTPConnection('127.0.0.1', self.stats_port, timeout=2)
        try:
            c.request('GET', '/stats;csv')
            rows = c.getresponse().read().decode().splitlines()
        finally:
            c.close()
        head = rows[0].lstrip('# ').split(',')
        up = set()
        for row in rows[1:]:
            f = dict(zip(head, row.split(',')))
            if f.get('pxname') == 'bufpool' and f.get('svname', '').startswith('bufpool-') and \
                    f.get('status', '').startswith('UP'):
                up.add(int(f['svname'][len('bufpool-'):]))
        return up

    def resp_ping(self):
        r = self.redis()
        try:
            return r.ping()
        finally:
            r.close()

    def redis(self, port=None):
        import redis
        return redis.Redis(host='127.0.0.1', port=port or self.resp_port,
                           password=TOKEN if self.tokens else None, socket_timeout=10)

    def describe(self):
        lines = [f'haproxy    http://127.0.0.1:{self.http_port}  (stats: '
                 f'http://127.0.0.1:{self.stats_port}/stats)',
                 f'twemproxy  redis://127.0.0.1:{self.resp_port}']
        for i, s in enumerate(self.servers):
            lines.append(f'bufpool-{i} pid {s["proc"].pid}: http {s["http"]}, rpc {s["rpc"]}, '
                         f'resp {s["resp"]}')
        if self.tokens:
            lines.append(f'tokens     write {TOKEN}, admin {ADMIN} (twemproxy: AUTH {TOKEN})')
        lines.append(f'logs       {self.dir}')
        return '\n'.join(lines)


# --- the checks ------------------------------------------------------------------------------
class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)
    print(f'  ok: {what}')


def owners(cluster, keys, http_keys):
    """For each key, the index of the server that holds it, asked directly (HEAD or EXISTS)."""
    found = {}
    for i, s in enumerate(cluster.servers):
        if http_keys:
            h = Http(s['http'])
            for k in keys:
                if h.request('HEAD', f'/v1/buffers/{k}')[0] == 200:
                    found.setdefault(k, []).append(i)
            h.close()
        else:
            r = cluster.redis(s['resp'])
            p = r.pipeline(transaction=False)
            for k in keys:
                p.exists(k)
            for k, e in zip(keys, p.execute()):
                if e:
                    found.setdefault(k, []).append(i)
            r.close()
    return found


def value_for(rng, i):
    # Binary values (CRLF and NUL inside) of 1 byte to 16 KiB, and a few of 1 MiB.
    size = (1 << 20) if i % 500 == 7 else rng.randint(1, 16384)
    return rng.randbytes(size)


def run_test(args):
    seed = args.seed
    print(f'cluster test: seed {seed} (--seed {seed} repeats it)')
    rng = random.Random(seed)
    n_keys = 3000
    # A small pool on each server, so that a full pool (503) is quick to reach; 2s is
    # bufpool's default alloc_timeout, 300ms keeps the check short.
    server_args = ['--max-memory', '128MiB', '--max-object-size', '32MiB',
                   '--alloc-timeout', '300ms', '--shutdown-timeout', '2s']
    with Cluster(args.servers, server_args=server_args) as c:
        print(c.describe())
        proxy = Http(c.http_port)
        r = c.redis()

        print('keys spread over every server, and round trips through both proxies')
        http_values = {f'h{seed}-{i}': value_for(rng, i) for i in range(n_keys)}
        resp_values = {f'r{seed}-{i}': value_for(rng, i) for i in range(n_keys)}
        for k, v in http_values.items():
            status = proxy.request('PUT', f'/v1/buffers/{k}', body=v)[0]
            if status not in (200, 201, 204):
                raise Failure(f'PUT {k} through haproxy: {status}')
        items = list(resp_values.items())
        for j in range(0, n_keys, 100):  # MSET across servers: twemproxy splits it
            if not r.mset(dict(items[j:j + 100])):
                raise Failure('MSET through twemproxy')
        http_owner = owners(c, list(http_values), True)
        resp_owner = owners(c, list(resp_values), False)
        expect(all(len(v) == 1 for v in http_owner.values()) and len(http_owner) == n_keys,
               f'each of {n_keys} HTTP keys is on exactly one server')
        expect(all(len(v) == 1 for v in resp_owner.values()) and len(resp_owner) == n_keys,
               f'each of {n_keys} RESP keys is on exactly one server')
        for name, own in (('haproxy', http_owner), ('twemproxy', resp_owner)):
            share = [sum(1 for v in own.values() if v[0] == i) / n_keys for i in range(c.n)]
            expect(all(0.20 <= x <= 0.45 for x in share),
                   f'{name} spreads keys {", ".join(f"{x:.1%}" for x in share)} (20-45% each)')
        bad = [k for k, v in http_values.items()
               if proxy.request('GET', f'/v1/buffers/{k}')[:2] != (200, v)]
        expect(not bad, f'{n_keys} values round-trip through haproxy byte for byte')
        keys = list(resp_values)
        bad = []
        for j in range(0, n_keys, 100):  # MGET across servers
            got = r.mget(keys[j:j + 100])
            bad += [k for k, g in zip(keys[j:j + 100], got) if g != resp_values[k]]
        expect(not bad, f'{n_keys} values round-trip through twemproxy (MGET) byte for byte')
        expect(r.get(keys[7]) == resp_values[keys[7]] and len(resp_values[keys[7]]) == 1 << 20,
               'a 1 MiB value round-trips through twemproxy (GET)')

        print('auth and backpressure pass through haproxy')
        k0 = next(iter(http_values))
        s, _, h = proxy.request('GET', f'/v1/buffers/{k0}', token='')
        expect(s == 401 and 'Bearer' in h.get('WWW-Authenticate', ''),
               'no token: 401 with WWW-Authenticate from bufpool')
        s, _, _ = proxy.request('GET', f'/v1/buffers/{k0}', token='not-a-valid-token-at-all')
        expect(s == 401, 'a wrong token: 401')
        s, _, _ = proxy.request('GET', '/v1/stats')
        expect(s == 403, 'a write token for an admin path: 403')
        # Fill a server's pool: 32 MiB values until one waits alloc_timeout and gets 503. With
        # curl, which sends "Expect: 100-continue" for a large body: bufpool then answers before
        # the body is sent, and haproxy passes the interim and the final answer through.
        big = os.path.join(c.dir, 'big')
        with open(big, 'wb') as f:
            f.write(rng.randbytes(32 << 20))
        statuses, retry_after, filled = [], None, []
        for j in range(16):
            k = f'big{seed}-{j}'
            out = subprocess.run(
                ['curl', '-sS', '-o', '/dev/null', '-D', '-', '-X', 'PUT', '--data-binary',
                 f'@{big}', '-H', f'Authorization: Bearer {TOKEN}',
                 f'http://127.0.0.1:{c.http_port}/v1/buffers/{k}'],
                capture_output=True, text=True, timeout=30).stdout
            # text=True reads CRLF as LF; the last header block is the final answer.
            heads = [h for h in out.split('\n\n') if h.startswith('HTTP/')]
            final = heads[-1].splitlines() if heads else ['HTTP/1.1 0']
            statuses.append(int(final[0].split()[1]))
            filled.append(k)
            if statuses[-1] == 503:
                retry_after = next((h.split(':', 1)[1].strip() for h in final
                                    if h.lower().startswith('retry-after:')), None)
                break
        expect(statuses and statuses[-1] == 503 and retry_after and retry_after.isdigit(),
               f'a full pool: 503 with Retry-After: {retry_after} through haproxy to curl '
               f'(statuses {statuses})')
        for k in filled:
            proxy.request('DELETE', f'/v1/buffers/{k}')

        print('stopping a server: both proxies route around it within 5 s')
        victim = 1
        mine_http = {k for k, v in http_owner.items() if v[0] == victim}
        mine_resp = {k for k, v in resp_owner.items() if v[0] == victim}
        sample_http = [k for k in http_values if k not in mine_http][:5] + list(mine_http)[:5]
        sample_resp = [k for k in resp_values if k not in mine_resp][:50]
        ports = {p: c.servers[victim][p] for p in ('http', 'rpc', 'resp')}
        stopped = time.monotonic()
        rc = c.stop_server(victim)
        expect(rc == 0, f'bufpool-{victim} stopped on SIGTERM with exit 0')
        errors = {'haproxy': 0, 'twemproxy': 0}
        last_error = {'haproxy': None, 'twemproxy': None}
        marked_down = None
        while time.monotonic() - stopped < 6.5:
            now = time.monotonic() - stopped
            if marked_down is None and victim not in c.haproxy_up():
                marked_down = now
            for k in sample_http:
                try:
                    got = proxy.request('GET', f'/v1/buffers/{k}')[:2]
                    ok = got[0] == 404 if k in mine_http else got == (200, http_values[k])
                except OSError:
                    ok = False
                if not ok:
                    errors['haproxy'] += 1
                    last_error['haproxy'] = now
            for k in list(mine_resp)[:5] + sample_resp[:5]:
                try:
                    g = r.get(k)
                    ok = g is None if k in mine_resp else g == resp_values[k]
                except Exception:  # redis.exceptions.*: the proxy's error reply
                    ok = False
                if not ok:
                    errors['twemproxy'] += 1
                    last_error['twemproxy'] = now
            time.sleep(0.05)
        for name in errors:
            when = last_error[name]
            expect(when is None or when < 5.0,
                   f'{name}: {errors[name]} failed requests, the last at '
                   f'{"-" if when is None else f"{when:.2f} s"} after the stop (none after 5 s)')
        expect(c.haproxy_up() == set(range(c.n)) - {victim} and marked_down is not None,
               f'haproxy marked bufpool-{victim} down {marked_down or 0:.2f} s after the stop')
        miss = other = 0
        for k, v in http_values.items():
            s, data, _ = proxy.request('GET', f'/v1/buffers/{k}')
            if k in mine_http:
                miss += s == 404
            else:
                other += (s, data) != (200, v)
        expect(miss == len(mine_http) and other == 0,
               f'haproxy: the {len(mine_http)} keys bufpool-{victim} held are misses '
               f'({miss} 404s), the other {n_keys - len(mine_http)} all answer')
        keys = list(resp_values)
        miss = other = 0
        for j in range(0, n_keys, 100):
            for k, g in zip(keys[j:j + 100], r.mget(keys[j:j + 100])):
                if k in mine_resp:
                    miss += g is None
                else:
                    other += g != resp_values[k]
        expect(miss == len(mine_resp) and other == 0,
               f'twemproxy: the {len(mine_resp)} keys bufpool-{victim} held are misses '
               f'({miss} nils), the other {n_keys - len(mine_resp)} all answer')

        print('restarting it brings it back')
        c.start_server(victim, ports)
        restarted = time.monotonic()
        wait_for('haproxy to have the server up again',
                 lambda: c.haproxy_up() == set(range(c.n)), timeout=5)
        back_http = time.monotonic() - restarted
        k = next(iter(mine_http))
        expect(proxy.request('PUT', f'/v1/buffers/{k}', body=http_values[k])[0] in (200, 201) and
               Http(ports['http']).request('GET', f'/v1/buffers/{k}')[:2] == (200, http_values[k]),
               f'haproxy: bufpool-{victim} up again after {back_http:.2f} s, and its keys go to it')
        k = next(iter(mine_resp))
        direct = c.redis(ports['resp'])

        def lands_on_victim():
            try:
                r.set(k, resp_values[k])
            except Exception:
                return False
            return direct.get(k) == resp_values[k]
        # twemproxy retries an ejected server every server_retry_timeout (30 s).
        wait_for('twemproxy to send the server its keys again', lands_on_victim, timeout=35,
                 step=0.25)
        expect(True, f'twemproxy: bufpool-{victim} back after {time.monotonic() - restarted:.2f} s, '
                     f'and its keys go to it')
        direct.close()
        r.close()
        proxy.close()
    print('cluster test passed')
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n\n', 1)[1])
    ap.add_argument('command', choices=['run', 'test'])
    ap.add_argument('--servers', type=int, default=3, help='bufpool-servers (default 3)')
    ap.add_argument('--http-port', type=int, help='haproxy\'s port (default: a free one)')
    ap.add_argument('--resp-port', type=int, help='twemproxy\'s port (default: a free one)')
    ap.add_argument('--stats-port', type=int, help='haproxy\'s stats page (default: a free one)')
    ap.add_argument('--seed', type=int, default=14, help='the test\'s random seed (default 14)')
    args = ap.parse_args()
    if args.servers < 1:
        ap.error('--servers must be at least 1')
    for tool in ('haproxy', 'nutcracker'):
        if subprocess.run(['sh', '-c', f'command -v {tool}'], capture_output=True).returncode:
            sys.exit(f'cluster.py: {tool} is not installed (make deps installs it)')
    if args.command == 'test':
        if args.servers != 3:
            ap.error('the test runs 3 servers')
        try:
            return run_test(args)
        except (Failure, RuntimeError) as e:
            print(f'FAILED: {e}')
            return 1
    c = Cluster(args.servers, args.http_port, args.resp_port, args.stats_port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with c:
        print(c.describe(), flush=True)
        print('Ctrl-C stops every process', flush=True)
        try:
            while all(s['proc'].poll() is None for s in c.servers) and c.haproxy.poll() is None \
                    and c.nutcracker.poll() is None:
                time.sleep(0.5)
            print('a process exited; stopping the rest')
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
