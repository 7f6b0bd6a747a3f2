"""A tiny web app: GET / answers with a greeting and a request counter; PORT sets the port."""
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8080"))
GREETING = os.environ.get("GREETING", "hello from northstar")
count = 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        count += 1
        body = f"{GREETING} ({os.environ.get('NORTHSTAR_CONTAINER', '?')}, request {count})\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{self.address_string()} {fmt % args}", flush=True)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(f"serving on http://127.0.0.1:{PORT}/", flush=True)
sys.stdout.flush()
server.serve_forever()
