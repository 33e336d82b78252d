#!/usr/bin/python3
"""RPC over TLS with Python's ssl module (a TLS client that bufpool did not write).

Usage: tls_rpc.py PORT CAFILE SEED. PUTs a value of 1 MiB of seeded random bytes, GETs it back,
PINGs, and exits 0 only if every reply is right."""
import random
import socket
import ssl
import struct
import sys

port, cafile, seed = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
value = bytes(rng.getrandbits(8) for _ in range(1 << 20))
HEADER = struct.Struct('<IBBBBQIIQ')


def frame(op, rid, key=b'', payload=b''):
    return HEADER.pack(0x31525042, 1, op, 0, 0, rid, len(key), 0, len(payload)) + key + payload


ctx = ssl.create_default_context(cafile=cafile)
with socket.create_connection(('127.0.0.1', port)) as raw:
    with ctx.wrap_socket(raw, server_hostname='127.0.0.1') as s:
        s.sendall(frame(2, 1, b'tls-key', value) + frame(3, 2, b'tls-key') + frame(1, 3))
        buf = b''
        replies = {}
        while len(replies) < 3:
            while len(buf) < 32 or len(buf) < 32 + sum(HEADER.unpack(buf[:32])[6:9:2]):
                data = s.recv(1 << 20)
                if not data:
                    sys.exit('the server closed the connection')
                buf += data
            _, _, op, flags, status, rid, klen, _, plen = HEADER.unpack(buf[:32])
            replies[rid] = (op, status, buf[32 + klen:32 + klen + plen])
            buf = buf[32 + klen + plen:]
ok = (replies[1][1] == 0 and replies[2][1] == 0 and replies[2][2] == value and
      replies[3][:2] == (1, 0))
print('ok' if ok else f'bad replies: {[(r[0], r[1], len(r[2])) for r in replies.values()]}')
sys.exit(0 if ok else 1)
