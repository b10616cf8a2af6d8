"""A telemetry collector for the walk-through: prints every event the extension forwards.

Run it on the host: python3 examples/extension-counter/collector.py [PORT] (default 9999).
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        events = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        for e in events:
            print(e["time"], e["type"], json.dumps(e["record"]), flush=True)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9999), Handler).serve_forever()
