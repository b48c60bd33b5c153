#!/usr/bin/env python3
"""A token server for the registry tests: what Docker Hub's auth.docker.io does, small.

GET /token?service=S&scope=repository:NAME:ACTIONS answers {"token", "access_token",
"expires_in"} with a JWT (RS256, the certificate in its x5c header) that the distribution
registry's auth.token section trusts. With USER:PASSWORD given, a request must bring them as
Basic credentials (else 401); without, tokens are anonymous. Each request is logged as a JSON
line (path, whether credentials came) to LOG.

usage: token_server.py KEY CERT PORT_FILE LOG ISSUER [USER:PASSWORD]
"""
import base64
import http.server
import json
import subprocess
import sys
import time
import urllib.parse

key, cert, port_file, log, issuer = sys.argv[1:6]
expected = sys.argv[6] if len(sys.argv) > 6 else ""


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cert_der():
    pem = open(cert).read()
    body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
    return body  # x5c holds standard base64 DER


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write(json.dumps({"path": url.path, "query": query, "basic": auth.startswith("Basic ")}) + "\n")
        if url.path != "/token":
            self.send_error(404)
            return
        if expected and auth != "Basic " + base64.b64encode(expected.encode()).decode():
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"details":"wrong credentials"}')
            return
        access = []
        for scope in query.get("scope", []):
            parts = scope.split(":")
            if len(parts) == 3 and parts[0] == "repository":
                access.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der()]}
        claims = {"iss": issuer, "sub": expected.split(":")[0] if expected else "",
                  "aud": query.get("service", [""])[0], "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": str(now) + str(id(self)), "access": access}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
                                   capture_output=True, check=True).stdout
        token = signing_input + "." + b64url(signature)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
