#!/usr/bin/env python3
"""bigpeer.py N: a fake p2pshare peer on 127.0.0.1 (a free port, printed
on the first line of stdout) that lists N files (`FileHash checkall`,
`IndexGet longlist`) without having them, for measuring what a client
holds for a large listing (`Sync --dry-run`). Std only; one session at a
time; answers NOOP and QUIT, refuses the rest. Runs until killed."""

import socket
import sys

N = int(sys.argv[1])
ID = "0123456789abcdef0123456789abcdef"
TS = "2026-01-02T03:04:05Z"
MD5 = "0cc175b9c0f1b6a831c399e269772661"


def names():
    for i in range(N):
        yield "d%04d/f%07d.txt" % (i // 1000, i)


def table(header, row):
    out = ["213-" + header]
    out.extend("213-" + row(n) for n in names())
    out.append("213 %d files" % N)
    return ("\n".join(out) + "\n").encode()


CHECKALL = table("name\tmd5\ttimestamp", lambda n: "%s\t%s\t%s" % (n, MD5, TS))
LONGLIST = table("name\tsize\ttimestamp\ttype", lambda n: "%s\t1\t%s\ttext/plain" % (n, TS))

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(8)
print(srv.getsockname()[1], flush=True)
while True:
    conn, _ = srv.accept()
    f = conn.makefile("rb")
    conn.sendall(("220 bigpeer ready; share-id=%s; HELP lists commands\n" % ID).encode())
    for line in f:
        req = line.decode(errors="replace").rstrip("\r\n")
        if req == "FileHash checkall":
            conn.sendall(CHECKALL)
        elif req == "IndexGet longlist":
            conn.sendall(LONGLIST)
        elif req == "NOOP":
            conn.sendall(b"200 ok\n")
        elif req == "QUIT":
            conn.sendall(b"221 bye\n")
            break
        else:
            conn.sendall(b"500 bigpeer does not know that\n")
    conn.close()
