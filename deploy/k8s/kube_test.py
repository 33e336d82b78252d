#!/usr/bin/python3
"""Plays deploy/k8s/bufpool.yaml and proxies.yaml with `podman kube play`, on the images that
make container-check builds, and checks what they promise.

  kube_test.py [--seed S] [--keep]

podman 4.3 plays Pods, Deployments, Secrets, ConfigMaps and PVCs; it has no StatefulSet, Service
or PodDisruptionBudget, and no cluster DNS. So the manifests are checked as written first (the
Service, StatefulSet and PDB select the same pods, the probes ask /healthz, requests = limits,
the token comes from the Secret, the scrape annotations name the metrics port), then played the
way a cluster would run them: the StatefulSet as its Pods bufpool-0..N-1 (what its controller
makes), the Deployments with one replica each, the Secret as a podman secret, and the proxies'
server addresses "bufpool-I.bufpool" (the headless Service's names) as "bufpool-I" (podman's DNS
names a pod by its name). Host ports are added to reach the pods from here. Then: every pod runs
as uid 10001 on a read-only root without capabilities; the servers size their pools from the
memory limit (1 GiB from 1264Mi); values round-trip through haproxy and twemproxy with the tokens
from the Secret and spread over every server; /metrics answers without a token.

Exits 77 (a skip, for ctest) when podman cannot run here or the images are missing."""
import argparse
import base64
import copy
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
PODMAN = os.path.join(SOURCE, 'deploy', 'container', 'podman-here')
sys.path.insert(0, os.path.join(SOURCE, 'deploy', 'cluster'))
from cluster import Failure, expect, free_port, wait_for  # noqa: E402
NETWORK = 'bufpool-k8s-test'
SKIP = 77


def podman(*args, check=True, capture=True, timeout=120):
    r = subprocess.run([PODMAN, *args], capture_output=capture, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f'podman {" ".join(args)}: {r.stderr.strip()[-500:]}')
    return r


def http_request(port, method, path, body=None, token=None, timeout=5):
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        headers = {'Authorization': f'Bearer {token}'} if token else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_manifests(docs):
    """What the manifests promise, read as Kubernetes would."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d['kind'], []).append(d)
    sts = by_kind['StatefulSet'][0]
    svc = next(s for s in by_kind['Service'] if s['metadata']['name'] == sts['spec']['serviceName'])
    pdb = by_kind['PodDisruptionBudget'][0]
    pod_labels = sts['spec']['template']['metadata']['labels']
    expect(svc['spec'].get('clusterIP') == 'None', 'the StatefulSet\'s Service is headless')
    expect(labels_match(svc['spec']['selector'], pod_labels) and
           labels_match(pdb['spec']['selector']['matchLabels'], pod_labels) and
           labels_match(sts['spec']['selector']['matchLabels'], pod_labels),
           'the Service, the PDB and the StatefulSet select the same pods')
    expect(pdb['spec'].get('maxUnavailable') == 1, 'the PDB lets one server go at a time')
    server = sts['spec']['template']['spec']['containers'][0]
    for probe in ('readinessProbe', 'livenessProbe'):
        expect(server[probe]['httpGet']['path'] == '/healthz', f'the server\'s {probe} asks /healthz')
    res = server['resources']
    expect(res['requests']['memory'] == res['limits']['memory'],
           f'memory requests = limits ({res["limits"]["memory"]}): Guaranteed')
    env = {e['name']: e for e in server['env']}
    expect(env['BUFPOOL_TOKENS']['valueFrom']['secretKeyRef']['name'] == 'bufpool-tokens',
           'the servers\' tokens come from the Secret bufpool-tokens')
    ann = sts['spec']['template']['metadata']['annotations']
    ports = {p['name']: p['containerPort'] for p in server['ports']}
    expect(ann['prometheus.io/scrape'] == 'true' and
           int(ann['prometheus.io/port']) == ports['http'] and ann['prometheus.io/path'] == '/metrics',
           'Prometheus scrape annotations name the HTTP port\'s /metrics')
    grace = sts['spec']['template']['spec']['terminationGracePeriodSeconds']
    expect(grace > 8, f'terminationGracePeriodSeconds {grace} > the server\'s shutdown_timeout (8s)')
    for d in by_kind['Deployment']:
        c = d['spec']['template']['spec']['containers'][0]
        sec = d['spec']['template']['spec']['securityContext']
        expect(sec['runAsNonRoot'] and c['securityContext']['readOnlyRootFilesystem'] and
               c['securityContext']['capabilities']['drop'] == ['ALL'],
               f'{d["metadata"]["name"]}: non-root, read-only root, no capabilities')
        selected = [s for s in by_kind['Service'] if s is not svc and
                    labels_match(s['spec']['selector'], d['spec']['template']['metadata']['labels'])]
        expect(len(selected) == 1, f'{d["metadata"]["name"]} has a Service '
                                   f'({selected[0]["metadata"]["name"] if selected else "none"})')
    return sts, by_kind['Deployment']


def for_podman(sts, deployments, host_ports):
    """The pods a cluster would run, in the form podman plays: see the module's comment."""
    out = []
    for i in range(sts['spec']['replicas']):
        name = f'{sts["metadata"]["name"]}-{i}'
        spec = copy.deepcopy(sts['spec']['template']['spec'])
        spec['hostname'] = name
        for p in spec['containers'][0]['ports']:
            host_ports[(name, p['name'])] = p['hostPort'] = free_port()
            p['hostIP'] = '127.0.0.1'
        out.append({'apiVersion': 'v1', 'kind': 'Pod',
                    'metadata': {'name': name,
                                 'labels': sts['spec']['template']['metadata']['labels'],
                                 'annotations': sts['spec']['template']['metadata']['annotations']},
                    'spec': spec})
    service = sts['spec']['serviceName']
    for d in deployments:
        d = copy.deepcopy(d)
        d['spec']['replicas'] = 1
        c = d['spec']['template']['spec']['containers'][0]
        for e in c.get('env', []):
            if 'value' in e:
                e['value'] = e['value'].replace(f'.{service}:', ':')
        for p in c['ports']:
            host_ports[(d['metadata']['name'], p['name'])] = p['hostPort'] = free_port()
            p['hostIP'] = '127.0.0.1'
        out.append(d)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split('\n\n', 1)[1])
    ap.add_argument('--seed', type=int, default=14, help='random seed (tokens, values)')
    ap.add_argument('--keep', action='store_true', help='leave the pods running at the end')
    args = ap.parse_args()
    try:
        import yaml
    except ImportError:
        print('SKIPPED: python3-yaml is not installed (make container-check installs it)')
        return SKIP
    why = subprocess.run(['bash', '-c', f'source {SOURCE}/deploy/container/podman.sh; '
                          'podman_usable'], capture_output=True, text=True)
    if why.returncode != 0:
        print(f'SKIPPED: {why.stdout.strip()}')
        return SKIP
    images = ['localhost/bufpool:0.1.0', 'localhost/bufpool-haproxy:0.1.0',
              'localhost/bufpool-twemproxy:0.1.0']
    missing = [i for i in images if podman('image', 'exists', i, check=False).returncode != 0]
    if missing:
        print(f'SKIPPED: no image {", ".join(missing)}: make container-check builds them '
              '(KEEP_IMAGE=1 keeps them for this test)')
        return SKIP

    print(f'kube test: seed {args.seed} (--seed {args.seed} repeats it)')
    rng = random.Random(args.seed)
    docs = []
    for f in ('bufpool.yaml', 'proxies.yaml'):
        with open(os.path.join(HERE, f)) as fh:
            docs += [d for d in yaml.safe_load_all(fh) if d]
    print('the manifests, as written')
    sts, deployments = check_manifests(docs)

    write = ''.join(rng.choice('0123456789abcdef') for _ in range(48))
    admin = ''.join(rng.choice('0123456789abcdef') for _ in range(48))
    secret = {'tokens': f'admin:{admin},write:{write}', 'proxy-password': write}
    host_ports = {}
    pods = for_podman(sts, deployments, host_ports)
    work = tempfile.mkdtemp(prefix='bufpool-kube-')
    played = os.path.join(work, 'played.yaml')
    with open(played, 'w') as f:
        yaml.safe_dump_all(pods, f)
    with open(os.path.join(work, 'secret.json'), 'w') as f:
        json.dump({k: base64.b64encode(v.encode()).decode() for k, v in secret.items()}, f)

    def cleanup():
        podman('kube', 'down', played, check=False, timeout=60)
        podman('secret', 'rm', 'bufpool-tokens', check=False)
        podman('network', 'rm', '-f', NETWORK, check=False)

    cleanup()
    try:
        podman('secret', 'create', 'bufpool-tokens', os.path.join(work, 'secret.json'))
        podman('network', 'create', NETWORK)
        started = time.monotonic()
        out = podman('kube', 'play', '--network', NETWORK, played, check=False, timeout=180)
        if out.returncode != 0:
            raise Failure(f'podman kube play: {out.stderr.strip()[-800:]}')
        print(f'played: {", ".join(p["metadata"]["name"] for p in pods)}')
        names = [p['metadata']['name'] for p in pods if p['kind'] == 'Pod']
        for n in names:
            wait_for(f'{n} /healthz', lambda n=n: http_request(
                host_ports[(n, 'http')], 'GET', '/healthz')[0] == 200, timeout=60)
        haproxy = host_ports[('bufpool-haproxy', 'http')]
        resp = host_ports[('bufpool-twemproxy', 'resp')]
        wait_for('haproxy to reach a server', lambda: http_request(
            haproxy, 'GET', '/v1/buffers/none', token=write)[0] == 404, timeout=60)
        print(f'up after {time.monotonic() - started:.1f} s')

        print('the pods, as played')
        # podman names a container POD-CONTAINER, and a Deployment's pod DEPLOYMENT-pod-0.
        containers = [f'{p["metadata"]["name"]}{"" if p["kind"] == "Pod" else "-pod-0"}-{c["name"]}'
                      for p in pods for c in (p['spec'] if p['kind'] == 'Pod' else
                                              p['spec']['template']['spec'])['containers']]
        for c in containers:
            info = json.loads(podman('inspect', c).stdout)[0]
            pid = info['State']['Pid']
            status = open(f'/proc/{pid}/status').read()
            uid = next(l.split()[1] for l in status.splitlines() if l.startswith('Uid:'))
            caps = next(l.split()[1] for l in status.splitlines() if l.startswith('CapEff:'))
            ro = info['HostConfig']['ReadonlyRootfs']
            expect(uid == '10001' and ro and int(caps, 16) == 0,
                   f'{c}: uid {uid}, read-only root {ro}, capabilities {caps}')
        for n in names:
            logs = podman('logs', f'{n}-server').stdout + podman('logs', f'{n}-server').stderr
            line = next((l for l in logs.splitlines() if 'pool.max_memory' in l), '')
            expect('pool.max_memory = 1GiB  # from the memory limit 1264MiB' in line,
                   f'{n}: {line[line.find("pool.max_memory"):]}')

        print('through the proxies, with the tokens from the Secret')
        expect(http_request(haproxy, 'GET', '/v1/buffers/x')[0] == 401,
               'haproxy: no token, 401 from bufpool')
        values = {f'k8s-{args.seed}-{i}': rng.randbytes(rng.randint(1, 65536)) for i in range(300)}
        for k, v in values.items():
            s = http_request(haproxy, 'PUT', f'/v1/buffers/{k}', body=v, token=write)[0]
            if s not in (200, 201):
                raise Failure(f'PUT {k} through haproxy: {s}')
        bad = [k for k, v in values.items()
               if http_request(haproxy, 'GET', f'/v1/buffers/{k}', token=write) != (200, v)]
        expect(not bad, f'{len(values)} values round-trip through haproxy byte for byte')
        import redis
        r = redis.Redis(host='127.0.0.1', port=resp, password=write, socket_timeout=10)
        rvalues = {f'k8s-r{args.seed}-{i}': rng.randbytes(rng.randint(1, 65536))
                   for i in range(300)}
        wait_for('twemproxy to answer', lambda: r.ping(), timeout=30)
        expect(r.mset(rvalues), 'twemproxy: MSET of 300 keys across the servers')
        got = r.mget(list(rvalues))
        expect(got == list(rvalues.values()),
               f'{len(rvalues)} values round-trip through twemproxy (MGET) byte for byte')
        counts = []
        for n in names:
            s, body = http_request(host_ports[(n, 'http')], 'GET', '/metrics')
            if s != 200:
                raise Failure(f'{n} /metrics without a token: {s}')
            keys = next(int(float(l.split()[1])) for l in body.decode().splitlines()
                        if l.startswith('bufpool_store_keys '))
            counts.append(keys)
        total = sum(counts)
        expect(total == 600 and all(0.20 <= c / total <= 0.45 for c in counts),
               f'/metrics without a token; keys per server {counts} of {total} (20-45% each)')
        r.close()
    finally:
        if args.keep:
            print(f'pods left running; stop them with: {PODMAN} kube down {played}')
        else:
            cleanup()
    print('kube test passed')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (Failure, RuntimeError) as e:
        print(f'FAILED: {e}')
        sys.exit(1)
