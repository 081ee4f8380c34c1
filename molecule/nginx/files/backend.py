#!/usr/bin/env python3
"""Test backend for the nginx scenario: answers JSON describing the request.

GET /health and /<prefix>/health -> {"status": "ok"}; anything else echoes
the method, path, port and the proxy headers nginx set. A WebSocket upgrade
request gets a 101 handshake (RFC 6455 accept key) and the socket is closed.
"""

import base64
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send_json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        port = self.server.server_address[1]
        if self.headers.get("Upgrade", "").lower() == "websocket":
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.close_connection = True
            return
        if self.path.split("?")[0].endswith("/health"):
            self._send_json(200, {"status": "ok", "port": port})
            return
        self._send_json(
            200,
            {
                "app": "webstack-test-backend",
                "port": port,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                # Long enough for nginx to gzip it.
                "padding": "x" * 512,
            },
        )

    do_GET = _handle
    do_HEAD = _handle
    do_POST = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
