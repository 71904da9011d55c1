#!/usr/bin/env python3
"""Plays systemd's part for handover.sh: restarts the server under load.

Holds the listening socket (socket activation: the server gets it as fd 3
with LISTEN_FDS=1, LISTEN_FDNAMES=http and LISTEN_PID), waits for each
server's READY=1 on its NOTIFY_SOCKET (Type=notify), starts the load
(the command after --), and while it runs restarts the server as
`systemctl restart` does: SIGTERM, wait for the exit, start the new one.
With --bound there is no held socket: each server binds the port itself.

Prints one line per restart (how long the old server took to stop, the
new one to be ready), then the load command's output.

Usage: holder.py --bin BIN --port PORT --restarts N --secs S [--bound]
                 [--log DIR] -- LOAD_COMMAND...
The server's environment (database, data directory) is this script's.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--restarts", type=int, default=5)
    p.add_argument("--secs", type=float, default=20)
    p.add_argument("--bound", action="store_true")
    p.add_argument("--log", default=None)
    p.add_argument("load", nargs=argparse.REMAINDER)
    a = p.parse_args()
    load = a.load[1:] if a.load[:1] == ["--"] else a.load

    tmp = tempfile.mkdtemp()
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    addr = f"127.0.0.1:{a.port}"
    held = None
    if not a.bound:
        held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", a.port))
        held.listen(4096)
    started = 0

    def start():
        nonlocal started
        started += 1
        log = os.path.join(a.log or tmp, f"server-{started}.log")
        args = [a.bin, "serve", "--listen", addr]
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 2)
                if held is not None:
                    if held.fileno() == 3:
                        os.set_inheritable(3, True)
                    else:
                        os.dup2(held.fileno(), 3)
                    env.update(LISTEN_FDS="1", LISTEN_FDNAMES="http", LISTEN_PID=str(os.getpid()))
                os.execve(a.bin, args, env)
            finally:
                os._exit(127)
        deadline = time.monotonic() + 60
        while True:
            notify.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = notify.recv(256).decode()
            except socket.timeout:
                sys.exit(f"server {started} sent no READY=1 within 60 s (log: {log})")
            if msg == "READY=1":
                return pid

    server = start()
    runner = subprocess.Popen(load)
    began = time.monotonic()
    for i in range(1, a.restarts + 1):
        time.sleep(max(0.0, began + a.secs * i / (a.restarts + 1) - time.monotonic()))
        t0 = time.monotonic()
        os.kill(server, signal.SIGTERM)
        _, status = os.waitpid(server, 0)
        t1 = time.monotonic()
        server = start()
        t2 = time.monotonic()
        print(
            f"restart {i}: the old server stopped in {(t1 - t0) * 1000:.0f} ms "
            f"(exit {os.waitstatus_to_exitcode(status)}), the new one was ready "
            f"{(t2 - t1) * 1000:.0f} ms later",
            flush=True,
        )
    code = runner.wait()
    os.kill(server, signal.SIGTERM)
    os.waitpid(server, 0)
    sys.exit(code)


if __name__ == "__main__":
    main()
