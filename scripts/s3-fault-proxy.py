#!/usr/bin/env python3
"""A small fault-injecting HTTP proxy in front of the loopback S3 server, for the tests (stdlib only).

    s3-fault-proxy.py UPSTREAM [--every N] [--faults 503,reset,slow] [--truncate-every N]
                      [--lost-every N] [--lost-on PATTERN=N ...] [--stop-after N] [--stop-on PATTERN=N] [--status PATTERN=CODE ...]
                      [--status-on PATTERN=N:CODE[:S3CODE] ...]

Listens on a free 127.0.0.1 port and prints it (one line) on stdout, then forwards every request
byte for byte (the Host header too, so SigV4 signatures stay valid) to UPSTREAM (http://127.0.0.1:PORT).
Faults, each logged as one line "fault KIND METHOD PATH" on stderr:
  --every N --faults K,...  every Nth request gets the next fault of the list, before it reaches the
                            store: 503 (SlowDown), reset (connection reset, no answer) or slow (the
                            answer trickles in over ~1.5 s).
  --truncate-every N        every Nth ranged GET gets its headers (full Content-Length) and half of
                            its body, then the connection is reset.
  --lost-every N            every Nth request that changes something reaches the store, then the
                            answer is lost (connection reset): the retry meets the request's effect.
  --lost-on PATTERN=N       the Nth request whose "METHOD PATH" contains PATTERN reaches the store, then
                            its answer is lost (connection reset); once per option.
  --stop-after N            after N requests the proxy stops listening and exits (the store "stopped").
  --stop-on PATTERN=N       the same, at the Nth request whose "METHOD PATH" contains PATTERN.
  --status PATTERN=CODE     every request whose "METHOD PATH" contains PATTERN is answered CODE.
  --status-on PATTERN=N:CODE[:S3CODE]  only the Nth such request is answered CODE (S3 error code S3CODE,
                            default Forced), without reaching the store: with --lost-on, a store whose retried
                            CompleteMultipartUpload says 404 NoSuchUpload (MinIO, or AWS after its retry window).
"""
import argparse
import http.client
import http.server
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

lock = threading.Lock()
counters = {"all": 0, "ranged": 0, "changes": 0, "stop-on": 0}
lost_on_counts = {}
status_on_counts = {}
local = threading.local()


def log(line):
    with lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def reset(handler):
    try:
        handler.wfile.flush()
    except OSError:
        pass
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


def upstream_connection(args):
    if getattr(local, "conn", None) is None:
        url = urllib.parse.urlsplit(args.upstream)
        local.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    return local.conn


def forward(args, method, path, headers, body):
    for attempt in range(2):
        conn = upstream_connection(args)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders(body if body else None)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        except (http.client.HTTPException, OSError):
            conn.close()
            local.conn = None
            if attempt == 1:
                raise


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_one(self):
        args = self.server.args
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        what = f"{self.command} {self.path}"
        with lock:
            counters["all"] += 1
            number = counters["all"]
            ranged = self.command == "GET" and "range" in {k.lower() for k in self.headers.keys()}
            if ranged:
                counters["ranged"] += 1
            changes = self.command in ("PUT", "POST", "DELETE")
            if changes:
                counters["changes"] += 1
            if args.stop_on and args.stop_on[0] in what:
                counters["stop-on"] += 1
            lose = False
            for index, (pattern, nth) in enumerate(args.lost_on):
                if pattern in what:
                    lost_on_counts[index] = lost_on_counts.get(index, 0) + 1
                    lose = lose or lost_on_counts[index] == nth
            forced = None
            for index, (pattern, nth, code, s3code) in enumerate(args.status_on):
                if pattern in what:
                    status_on_counts[index] = status_on_counts.get(index, 0) + 1
                    if status_on_counts[index] == nth:
                        forced = (code, s3code)
        stop_on = args.stop_on and counters["stop-on"] >= args.stop_on[1]
        if (args.stop_after and number > args.stop_after) or stop_on:
            log(f"fault stopped {what}")
            reset(self)
            self.server.socket.close()
            os._exit(0)
        for pattern, code in args.status:
            if pattern in what:
                log(f"fault status-{code} {what}")
                return self.answer(code, "Forced", [], b"<Error><Code>Forced</Code><Message>fault proxy</Message></Error>")
        if forced:
            log(f"fault status-{forced[0]} {what}")
            return self.answer(forced[0], "Forced", [], f"<Error><Code>{forced[1]}</Code><Message>fault proxy</Message></Error>".encode())
        kind = None
        if ranged and args.truncate_every and counters["ranged"] % args.truncate_every == 0:
            kind = "truncate"
        elif lose or (changes and args.lost_every and counters["changes"] % args.lost_every == 0):
            kind = "lost"
        elif args.every and number % args.every == 0:
            kind = args.faults[(number // args.every) % len(args.faults)]
        if kind:
            log(f"fault {kind} {what}")
        if kind == "503":
            return self.answer(503, "Slow Down", [], b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>")
        if kind == "reset":
            return reset(self)
        status, reason, headers, data = forward(args, self.command, self.path, list(self.headers.items()), body)
        if kind == "lost":
            return reset(self)
        if kind == "truncate" and len(data) >= 2:
            self.answer(status, reason, headers, data[: len(data) // 2], declared=len(data))
            return reset(self)
        self.answer(status, reason, headers, data, slow=(kind == "slow"))

    def answer(self, status, reason, headers, data, declared=None, slow=False):
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() in ("transfer-encoding", "connection", "content-length", "date", "server"):
                continue
            self.send_header(name, value)
        if self.command == "HEAD":
            length = dict((k.lower(), v) for k, v in headers).get("content-length", "0")
        else:
            length = str(declared if declared is not None else len(data))
        self.send_header("Content-Length", length)
        self.send_header("Date", self.date_time_string())
        self.end_headers()
        if self.command == "HEAD":
            return
        if slow:
            self.wfile.flush()
            time.sleep(0.5)
            step = max(1, len(data) // 4)
            for start in range(0, len(data), step):
                self.wfile.write(data[start:start + step])
                self.wfile.flush()
                time.sleep(0.25)
        else:
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


def main():
    # Started by a test process: take the default SIGTERM back (it may arrive ignored or blocked) and drop every
    # inherited descriptor beyond stdio (another test's pipe held open here would never see its end of file).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
    os.closerange(3, 65536)
    parser = argparse.ArgumentParser()
    parser.add_argument("upstream")
    parser.add_argument("--every", type=int, default=0)
    parser.add_argument("--faults", default="503,reset,slow")
    parser.add_argument("--truncate-every", type=int, default=0)
    parser.add_argument("--lost-every", type=int, default=0)
    parser.add_argument("--lost-on", action="append", default=[])
    parser.add_argument("--stop-after", type=int, default=0)
    parser.add_argument("--stop-on", default="")
    parser.add_argument("--status", action="append", default=[])
    parser.add_argument("--status-on", action="append", default=[])
    args = parser.parse_args()
    args.faults = args.faults.split(",")
    args.stop_on = (args.stop_on.rsplit("=", 1)[0], int(args.stop_on.rsplit("=", 1)[1])) if args.stop_on else None
    args.lost_on = [(item.rsplit("=", 1)[0], int(item.rsplit("=", 1)[1])) for item in args.lost_on]
    def status_on(item):
        pattern, rest = item.rsplit("=", 1)
        fields = rest.split(":")
        return (pattern, int(fields[0]), int(fields[1]), fields[2] if len(fields) > 2 else "Forced")
    args.status_on = [status_on(item) for item in args.status_on]
    args.status = [(item.rsplit("=", 1)[0], int(item.rsplit("=", 1)[1])) for item in args.status]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.args = args
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
