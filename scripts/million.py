#!/usr/bin/env python3
"""million.py: the "one million files" case of scripts/bench.sh. Std only.

million.py make DIR [COUNT [PER_DIR]]
    Makes COUNT files (default 1,000,000) of 3 bytes each in folders of
    PER_DIR files (default 1,000): DIR/d000/f000000.txt, ... DIR must not
    exist yet. Progress on stderr.

million.py serve BIN TREE STATE LOG [--idle SECS] [--timeout SECS]
    Starts `BIN serve --share TREE --state STATE --port 0 --bind 127.0.0.1
    --rescan 30s` (its stderr goes to LOG, each line after the seconds since
    the start) and measures, counted from just before the start:
      port    until a TCP connect to the port printed on the start line
              has read the whole greeting line (220 ...);
      scan    until stderr says `the first scan is done: N files`;
      md5     until stderr says `every md5 is known: N files, H hashed now`;
    then VmHWM and VmRSS (KiB) from /proc/PID/status, and with --idle the
    server's CPU time (utime + stime, clock ticks) over SECS seconds,
    starting 5 s after the md5 line, as a percentage of one core. Stops
    the server (SIGTERM) and prints one line on stdout:
      port=S scan=S md5=S files=N hashed=H hwm_kb=K rss_kb=K [idle_pct=P]
    Keys not reached are left out, and the exit status is 1 then. The
    server ends with this process (SIGTERM, SIGINT, or its death).
"""

import ctypes
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def make(top, count=1_000_000, per_dir=1000):
    os.mkdir(top)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    dfd = None
    t0 = time.monotonic()
    try:
        for i in range(count):
            if i % per_dir == 0:
                if dfd is not None:
                    os.close(dfd)
                d = os.path.join(top, "d%03d" % (i // per_dir))
                os.mkdir(d)
                dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                if i and i % (count // 10 or 1) == 0:
                    print(
                        "bench:   %d files made (%.0f s)" % (i, time.monotonic() - t0),
                        file=sys.stderr,
                        flush=True,
                    )
            fd = os.open("f%06d.txt" % i, flags, 0o644, dir_fd=dfd)
            os.write(fd, b"%03d" % (i % 1000))
            os.close(fd)
    finally:
        if dfd is not None:
            os.close(dfd)


SERVER = None


def stop_server():
    p = SERVER
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def on_signal(signum, _frame):
    stop_server()
    sys.exit(128 + signum)


def die_with_parent():
    # PR_SET_PDEATHSIG (1): the server gets SIGTERM when this process ends,
    # however it ends.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def status_kb(pid):
    got = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                got[key] = int(rest.split()[0])
    return got


def ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        # The name (field 2) may hold spaces: count from after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def greeting(host, port, deadline):
    """Connects (again while refused) and reads the greeting line."""
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(deadline - time.monotonic(), 0.1)) as s:
                line = s.makefile("rb").readline()
            if not line.startswith(b"220"):
                raise RuntimeError("greeting %r" % line)
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def serve(binary, tree, state, log, idle=0.0, timeout=1200.0):
    global SERVER
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lines = queue.Queue()
    t0 = time.monotonic()
    SERVER = subprocess.Popen(
        [binary, "serve", "--share", tree, "--state", state, "--port", "0",
         "--bind", "127.0.0.1", "--rescan", "30s"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,
    )
    pid = SERVER.pid

    def reader():
        with open(log, "a") as out:
            for raw in SERVER.stderr:
                t = time.monotonic() - t0
                text = raw.decode("utf-8", "replace").rstrip("\n")
                out.write("%9.3f %s\n" % (t, text))
                out.flush()
                lines.put((t, text))
        lines.put((time.monotonic() - t0, None))

    threading.Thread(target=reader, daemon=True).start()
    deadline = t0 + timeout
    got = {}

    def next_line():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no line from the server in %.0f s" % timeout)
        try:
            t, text = lines.get(timeout=left)
        except queue.Empty:
            raise TimeoutError("no line from the server in %.0f s" % timeout) from None
        if text is None:
            raise RuntimeError("the server ended (status %s)" % SERVER.wait())
        return t, text

    try:
        while True:
            _, text = next_line()
            m = re.search(r" on (\S+):(\d+)\s*$", text)
            if text.startswith("p2pshare: sharing") and m:
                greeting(m.group(1), int(m.group(2)), deadline)
                got["port"] = "%.3f" % (time.monotonic() - t0)
                break
        while "md5" not in got:
            t, text = next_line()
            m = re.search(r"the first scan is done: (\d+) files", text)
            if m:
                got["scan"] = "%.3f" % t
                got["files"] = m.group(1)
            m = re.search(r"every md5 is known: (\d+) files, (\d+) hashed now", text)
            if m:
                got["md5"] = "%.3f" % t
                got["files"] = m.group(1)
                got["hashed"] = m.group(2)
                kb = status_kb(pid)
                got["hwm_kb"] = str(kb["VmHWM"])
                got["rss_kb"] = str(kb["VmRSS"])
            if "the first hashing is done" in text:
                raise RuntimeError(text)
        if idle > 0:
            time.sleep(5)
            a, s = ticks(pid), time.monotonic()
            time.sleep(idle)
            b, e = ticks(pid), time.monotonic()
            got["idle_pct"] = "%.1f" % ((b - a) / os.sysconf("SC_CLK_TCK") / (e - s) * 100)
        status = 0
    except (OSError, RuntimeError, TimeoutError) as e:
        print("million.py: %s" % e, file=sys.stderr)
        status = 1
    finally:
        stop_server()
    print(" ".join("%s=%s" % kv for kv in got.items()), flush=True)
    return status


def main(argv):
    if len(argv) >= 2 and argv[1] == "make":
        make(argv[2], *(int(a) for a in argv[3:5]))
        return 0
    if len(argv) >= 6 and argv[1] == "serve":
        opts = {"--idle": 0.0, "--timeout": 1200.0}
        rest = argv[6:]
        while rest:
            if rest[0] not in opts or len(rest) < 2:
                break
            opts[rest[0]] = float(rest[1])
            rest = rest[2:]
        if not rest:
            return serve(*argv[2:6], idle=opts["--idle"], timeout=opts["--timeout"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
