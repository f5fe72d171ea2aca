#!/usr/bin/env python3
"""loadgen.py: many concurrent p2pshare control sessions, for scripts/bench.sh.

Opens --sessions control connections to one server at once; each sends
--rounds times `IndexGet longlist` and then `FileHash verify <--verify>`,
one request at a time, and ends with QUIT. One thread drives every socket
(selectors), so the generator's own cost stays small next to the server's.

A reply is complete when its last line is `DDD text` (a space after the
code). Anything but a 213 table (with --rows rows, when given), a lost
connection or a timeout counts as an error.

Prints one line: sessions, requests, errors, seconds, requests/s and the
p50 and p99 latency of a request (send to last reply line) in ms. Exits 1
when there was any error. Standard library only.
"""

import argparse
import selectors
import socket
import sys
import time


class Session:
    def __init__(self, sock, rounds):
        self.sock = sock
        self.buf = bytearray()
        self.phase = "greeting"
        self.rounds_left = rounds
        self.sent_at = 0.0


def reply_end(buf):
    """The final line of the reply in buf, or None while it is incomplete."""
    if not buf.endswith(b"\n"):
        return None
    start = buf.rfind(b"\n", 0, len(buf) - 1) + 1
    line = bytes(buf[start:])
    if len(line) >= 4 and line[:3].isdigit() and line[3:4] == b" ":
        return line
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--verify", required=True, help="file name for FileHash verify")
    ap.add_argument("--rows", type=int, help="files the longlist must have")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    args = ap.parse_args()

    list_req = b"IndexGet longlist\n"
    verify_req = ("FileHash verify %s\n" % args.verify).encode()
    list_ok = b"213 %d files\n" % args.rows if args.rows is not None else None

    sel = selectors.DefaultSelector()
    errors = 0
    latencies = []
    sessions = []
    for _ in range(args.sessions):
        try:
            s = socket.create_connection((args.host, args.port), timeout=30)
        except OSError as e:
            print("loadgen: connect failed: %s" % e, file=sys.stderr)
            errors += 1
            continue
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sess = Session(s, args.rounds)
        sessions.append(sess)
        sel.register(s, selectors.EVENT_READ, sess)

    def finish(sess):
        sel.unregister(sess.sock)
        sess.sock.close()

    def fail(sess, why):
        nonlocal errors
        errors += 1
        print("loadgen: %s" % why, file=sys.stderr)
        finish(sess)

    def send(sess, req, phase):
        sess.phase = phase
        sess.sent_at = time.perf_counter()
        sess.sock.sendall(req)

    start = time.perf_counter()
    deadline = start + args.timeout
    open_count = len(sessions)
    while open_count:
        if time.perf_counter() > deadline:
            errors += open_count
            print("loadgen: %d sessions timed out" % open_count, file=sys.stderr)
            break
        for key, _ in sel.select(timeout=1.0):
            sess = key.data
            try:
                data = sess.sock.recv(256 * 1024)
            except OSError as e:
                fail(sess, "receive failed: %s" % e)
                open_count -= 1
                continue
            if not data:
                fail(sess, "server closed a session during %s" % sess.phase)
                open_count -= 1
                continue
            sess.buf += data
            last = reply_end(sess.buf)
            if last is None:
                continue
            now = time.perf_counter()
            phase = sess.phase
            sess.buf.clear()
            if phase == "greeting":
                if not last.startswith(b"220 "):
                    fail(sess, "greeting was %r" % last)
                    open_count -= 1
                    continue
            elif phase == "quit":
                finish(sess)
                open_count -= 1
                continue
            else:
                latencies.append(now - sess.sent_at)
                good = last.startswith(b"213 ")
                if phase == "list" and list_ok is not None:
                    good = last == list_ok
                if not good:
                    fail(sess, "%s answered %r" % (phase, last))
                    open_count -= 1
                    continue
            try:
                if phase in ("greeting", "verify"):
                    if sess.rounds_left == 0:
                        send(sess, b"QUIT\n", "quit")
                    else:
                        sess.rounds_left -= 1
                        send(sess, list_req, "list")
                else:
                    send(sess, verify_req, "verify")
            except OSError as e:
                fail(sess, "send failed: %s" % e)
                open_count -= 1
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p):
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000

    print(
        "sessions=%d requests=%d errors=%d seconds=%.2f rps=%.0f p50_ms=%.1f p99_ms=%.1f"
        % (
            args.sessions,
            len(latencies),
            errors,
            elapsed,
            len(latencies) / elapsed if elapsed > 0 else 0,
            pct(0.50),
            pct(0.99),
        )
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
