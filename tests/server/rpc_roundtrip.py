#!/usr/bin/python3
"""An RPC round trip written from docs/protocol.md with Python's socket and ssl modules (a client
that shares no code with bufpool's).

Usage: rpc_roundtrip.py PORT SEED [--cafile FILE] [--token TOKEN] [--host HOST]
AUTHs when given a token, PUTs a value of 1 MiB of seeded random bytes, GETs it back and PINGs;
over TLS when given --cafile (the CA to verify the server with). Exits 0 only if every reply is
right."""
import argparse
import random
import socket
import ssl
import struct
import sys

ap = argparse.ArgumentParser()
ap.add_argument('port', type=int)
ap.add_argument('seed', type=int)
ap.add_argument('--cafile')
ap.add_argument('--token')
ap.add_argument('--host', default='127.0.0.1')
args = ap.parse_args()
rng = random.Random(args.seed)
value = bytes(rng.getrandbits(8) for _ in range(1 << 20))
HEADER = struct.Struct('<IBBBBQIIQ')
AUTH, PUT, GET, PING = 7, 2, 3, 1


def frame(op, rid, key=b'', payload=b''):
    return HEADER.pack(0x31525042, 1, op, 0, 0, rid, len(key), 0, len(payload)) + key + payload


key = f'rpc-roundtrip-{args.seed}'.encode()
requests = [(PUT, key, value), (GET, key, b''), (PING, b'', b'')]
if args.token:
    requests.insert(0, (AUTH, b'', args.token.encode()))
with socket.create_connection((args.host, args.port), timeout=10) as raw:
    s = raw
    if args.cafile:
        s = ssl.create_default_context(cafile=args.cafile).wrap_socket(
            raw, server_hostname=args.host)
    s.sendall(b''.join(frame(op, i + 1, k, p) for i, (op, k, p) in enumerate(requests)))
    buf = b''
    replies = {}
    while len(replies) < len(requests):
        while len(buf) < 32 or len(buf) < 32 + sum(HEADER.unpack(buf[:32])[6:9:2]):
            data = s.recv(1 << 20)
            if not data:
                sys.exit('the server closed the connection')
            buf += data
        _, _, op, flags, status, rid, klen, _, plen = HEADER.unpack(buf[:32])
        replies[rid] = (op, status, buf[32 + klen:32 + klen + plen])
        buf = buf[32 + klen + plen:]
    if s is not raw:
        s.close()
by_op = {requests[rid - 1][0]: r for rid, r in replies.items()}
ok = (all(r[1] == 0 for r in replies.values()) and by_op[GET][2] == value and
      by_op[PING][0] == PING)
print('ok' if ok else f'bad replies: {[(r[0], r[1], len(r[2])) for r in replies.values()]}')
sys.exit(0 if ok else 1)
