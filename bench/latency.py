#!/usr/bin/env python3
"""A proxy in front of the AWS API emulator that answers every request
`LATENCY_MS` later than the emulator does (a CI runner's distance to its
region), and records when each request started and ended; `report` reads
that record: requests, round trips one after another, wall time.

    latency.py serve PORT UPSTREAM_PORT LATENCY_MS LOG
    latency.py report LOG [--chain]

Round trips: the longest chain of requests each of which started only
after the one before it had ended (the critical path, in requests). With
a fixed latency per request, the wall time is about that many latencies.
"""

import http.client
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


def serve(port, upstream, latency_ms, log_path):
    lock = threading.Lock()
    log = open(log_path, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            start = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=120)
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            time.sleep(latency_ms / 1000.0)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()
            op = self.headers.get("X-Amz-Target") or ""
            if not op and body and b"Action=" in body:
                op = body.split(b"Action=")[1].split(b"&")[0].decode()
            if not op:
                op = f"{self.command} {self.path.split('?')[0]}"
            with lock:
                log.write(json.dumps({"start": start, "end": time.monotonic(), "op": op}) + "\n")

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def report(log_path, chain=False):
    calls = [json.loads(line) for line in open(log_path) if line.strip()]
    if not calls:
        print("requests=0 round_trips=0 wall_ms=0")
        return
    calls.sort(key=lambda c: c["start"])
    depth, prev = [], []
    for i, c in enumerate(calls):
        before = [j for j in range(i) if calls[j]["end"] <= c["start"]]
        j = max(before, key=lambda j: depth[j], default=None)
        depth.append(1 + (depth[j] if j is not None else 0))
        prev.append(j)
    wall = max(c["end"] for c in calls) - calls[0]["start"]
    print(f"requests={len(calls)} round_trips={max(depth)} wall_ms={wall * 1000:.0f}")
    if chain:
        i = max(range(len(calls)), key=lambda i: depth[i])
        path = []
        while i is not None:
            path.append(calls[i]["op"])
            i = prev[i]
        print("  longest chain: " + " -> ".join(reversed(path)))


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    elif sys.argv[1] == "report":
        report(sys.argv[2], chain="--chain" in sys.argv[3:])
    else:
        sys.exit(__doc__)
