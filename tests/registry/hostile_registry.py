#!/usr/bin/env python3
"""A registry that misbehaves, for the pull tests: GET /v2/ answers 200, then by MODE
  big       a manifest of 5 MiB (over the 4 MiB cap)
  loop      every manifest request redirected to itself
  stall     manifest headers, then nothing (the connection held open)
  busy      503 with Retry-After: 1 twice, then a 404 naming the manifest unknown
  redirect  a Basic-protected registry whose manifest redirects to a second port, which
            logs whether an Authorization header reached it
  resume    the image of the OCI layout LAYOUT (its first manifest, for any name and tag),
            each blob's first transfer cut off halfway; a request with a Range gets a 206
  resume-ignore  the same, but a Range is ignored: the whole blob again, with 200
Requests are logged as JSON lines to LOG (with their Range header).

usage: hostile_registry.py MODE PORT_FILE LOG [LAYOUT]
"""
import http.server
import json
import os
import socket
import sys
import threading
import time

mode, port_file, log = sys.argv[1:4]
layout = sys.argv[4] if len(sys.argv) > 4 else ""
cut = set()
count = {"busy": 0}
lock = threading.Lock()


def note(port, handler):
    with lock, open(log, "a") as f:
        f.write(json.dumps({"port": port, "path": handler.path,
                            "authorization": handler.headers.get("Authorization", ""),
                            "range": handler.headers.get("Range", "")}) + "\n")


def layout_blob(digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


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
        if mode.startswith("resume"):
            self.serve_layout()
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


    def serve_layout(self):
        if "/manifests/" in self.path:
            with open(os.path.join(layout, "index.json")) as f:
                descriptor = json.load(f)["manifests"][0]
            self.reply(200, layout_blob(descriptor["digest"]),
                       [("Content-Type", descriptor["mediaType"])])
            return
        digest = self.path.rsplit("/", 1)[1]
        data = layout_blob(digest)
        wanted = self.headers.get("Range", "")
        with lock:
            first = digest not in cut
            cut.add(digest)
        if first and not wanted and len(data) > 4096:
            # Cut off halfway: the length promised, half sent, the connection closed.
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if wanted and mode == "resume":
            start = int(wanted[len("bytes="):].split("-")[0])
            self.reply(206, data[start:],
                       [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))])
            return
        self.reply(200, data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
