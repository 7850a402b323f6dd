#!/usr/bin/env python3
"""A plain Python http.server app that binds its own fixed port and knows nothing of baton.

Usage: server.py PORT [HOST]   (HOST defaults to 127.0.0.1; "::" or "0.0.0.0" for wildcards)

It answers every GET with "python pid=<pid>" and, on SIGTERM, stops accepting, finishes the
requests in flight and exits: the ordinary graceful shutdown any production server has.
"""
import http.server
import os
import signal
import socket
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"python pid={os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per request would drown the test output


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the requests in flight: nothing is cut off


def main():
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if ":" in host:
        Server.address_family = socket.AF_INET6
    server = Server((host, port), Handler)
    # shutdown() waits for serve_forever() to return, so it must not run on serve_forever's thread.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
