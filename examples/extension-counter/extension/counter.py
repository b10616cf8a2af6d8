"""An extension that counts the invocations of its instance and forwards telemetry.

1. It starts an HTTP server on 127.0.0.1:8081 (every instance has its own loopback, so every
   instance can use the same port).
2. It registers with POST http://$EXTENSION_API_ADDR/extension/register, naming itself by its
   start script's file name and giving its address.
3. It subscribes to telemetry (platform events, function and extension log lines).
4. For every invocation, fgs POSTs {"traceId", "invokedFunctionUrn"} to /extension/invoke: it
   counts them in /tmp/invocations (the function can read it: /tmp is per instance).
5. Telemetry batches arrive as POSTed JSON arrays: it forwards them to COLLECTOR_URL (for
   example http://host.fgs.internal:9999/, a collector on the host) or appends them to
   /tmp/telemetry.jsonl.
"""
import json
import os
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "extensionCounter.sh"
PORT = 8081
API = "http://" + os.environ["EXTENSION_API_ADDR"]
COLLECTOR = os.environ.get("COLLECTOR_URL", "")
count = 0
lock = threading.Lock()


def post(url, body, headers):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/extension/invoke":
            event = json.loads(body)
            with lock:
                count += 1
                with open("/tmp/invocations", "w") as f:
                    f.write(str(count))
            print(f"invocation {count}: {event['traceId']} of {event['invokedFunctionUrn']}")
        elif self.path == "/telemetry":
            events = json.loads(body)
            if COLLECTOR:
                try:
                    post(COLLECTOR, events, {})
                except OSError as e:
                    print(f"collector unreachable: {e}")
            else:
                with open("/tmp/telemetry.jsonl", "a") as f:
                    for e in events:
                        f.write(json.dumps(e) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
post(API + "/extension/register", {}, {
    "FunctionGraph-Extension-Name": NAME,
    "FunctionGraph-Extension-Address": f"127.0.0.1:{PORT}",
})
post(API + "/telemetry", {
    "subscriber": {"protocol": "POST", "uri": f"http://127.0.0.1:{PORT}/telemetry"},
    "types": ["platform", "function", "extension"],
    "buffering": {"timeoutMs": 200},
}, {"FunctionGraph-Extension-Name": NAME})
print("counter extension registered")
threading.Event().wait()
