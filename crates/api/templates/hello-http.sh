#!/bin/sh
# Hello world on the http runtime: bootstrap starts a web server on 127.0.0.1:8000, and every
# event arrives as an HTTP request.
exec python3 -c '
from http.server import BaseHTTPRequestHandler, HTTPServer

class Hello(BaseHTTPRequestHandler):
    def answer(self):
        body = b"hello world from " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer

HTTPServer(("127.0.0.1", 8000), Hello).serve_forever()
'
