#!/usr/bin/env python3
"""A registry that misbehaves, for the pull tests: GET /v2/ answers 200, then by MODE
  big       a manifest of 5 MiB (over the 4 MiB cap)
  loop      every manifest request redirected to itself
  stall     manifest headers, then nothing (the connection held open)
  busy      503 with Retry-After: 1 twice, then a 404 naming the manifest unknown
  redirect  a Basic-protected registry whose manifest redirects to a second port, which
            logs whether an Authorization header reached it
Requests are logged as JSON lines to LOG.

usage: hostile_registry.py MODE PORT_FILE LOG
"""
import http.server
import json
import os
import socket
import sys
import threading
import time

mode, port_file, log = sys.argv[1:4]
count = {"busy": 0}
lock = threading.Lock()


def note(port, handler):
    with lock, open(log, "a") as f:
        f.write(json.dumps({"port": port, "path": handler.path,
                            "authorization": handler.headers.get("Authorization", "")}) + "\n")


class Other(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        note("other", self)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
threading.Thread(target=other.serve_forever, daemon=True).start()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        note("main", self)
        if self.path == "/v2/":
            if mode == "redirect" and not self.headers.get("Authorization"):
                self.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="hostile"')])
            else:
                self.reply(200, b"{}")
            return
        if mode == "big":
            body = b'{"schemaVersion":2,"pad":"' + b"x" * (5 << 20) + b'"}'
            self.reply(200, body, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")])
        elif mode == "loop":
            self.reply(302, b"", [("Location", self.path)])
        elif mode == "stall":
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.flush()
            time.sleep(30)
        elif mode == "busy":
            with lock:
                count["busy"] += 1
                n = count["busy"]
            if n <= 2:
                self.reply(503, b"", [("Retry-After", "1")])
            else:
                self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                           [("Content-Type", "application/json")])
        elif mode == "redirect":
            if not self.headers.get("Authorization"):
                self.reply(401, b"{}", [("WWW-Authenticate", 'Basic realm="hostile"')])
                return
            target = "http://localhost:%d/elsewhere%s" % (other.server_address[1], self.path)
            self.reply(307, b"", [("Location", target)])
        else:
            self.reply(500)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
