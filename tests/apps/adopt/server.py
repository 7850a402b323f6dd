#!/usr/bin/env python3
"""A plain Python http.server app that binds its own fixed port and knows nothing of baton.

Usage: server.py PORT [HOST] [--tls PEM]
  HOST defaults to 127.0.0.1 ("::" or "0.0.0.0" for wildcards). With --tls it speaks HTTPS with
  the certificate and key in PEM, HTTP/1.1 with keep-alive.

It answers every GET with "python pid=<pid>" and, on SIGTERM, stops accepting, finishes the
requests in flight and exits: the ordinary graceful shutdown any production server has.
"""
import http.server
import os
import select
import signal
import socket
import ssl
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/then-close":
            # A response that ends with the connection (no length: HTTP/1.0, the connection's
            # end is the body's), written at once. The connection ends (socketserver shuts its
            # write side and closes it) once it turns readable, without reading: that is when
            # baton takes it over. It models an app that ends the connection just then.
            self.wfile.write(f"HTTP/1.0 200 OK\r\n\r\npython pid={os.getpid()}\n".encode())
            self.wfile.flush()
            select.select([self.request], [], [], 60)
            return
        body = f"python pid={os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass  # one line per request would drown the test output


class TlsHandler(Handler):
    protocol_version = "HTTP/1.1"  # keep-alive: the connection waits for the next request

    def setup(self):
        # The handshake on the request's own thread, so a slow client holds only that thread.
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the requests in flight: nothing is cut off
    tls = None

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            super().handle_error(request, client_address)


def main():
    args = sys.argv[1:]
    pem = None
    if "--tls" in args:
        pem = args[args.index("--tls") + 1]
        del args[args.index("--tls") : args.index("--tls") + 2]
    port = int(args[0])
    host = args[1] if len(args) > 1 else "127.0.0.1"
    if ":" in host:
        Server.address_family = socket.AF_INET6
    # SIGTERM is taken by sigwait() on the main thread, not by a Python signal handler. A handler
    # runs between any two bytecodes of the main thread, also inside threading's own locked
    # sections (serve_forever reaps finished request threads on its thread, under a lock that
    # starting a thread takes too), so a handler that starts the shutdown thread can deadlock.
    # Blocked before any thread starts, so every thread inherits the mask.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    server = Server((host, port), TlsHandler if pem else Handler)
    if pem:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(pem)
    # The listening socket may be shared with other processes (two generations under baton, the
    # workers of a pre-fork server), so poll() reporting it readable does not mean a connection is
    # still queued when accept() runs: another process may have taken it, and a blocking accept()
    # then waits for the next connection (accept(2), NOTES). serve_forever() calls accept() after
    # poll() as if it could not block; stuck there, it never sees shutdown()'s request, so the
    # process does not exit until someone connects. Non-blocking, that accept() fails with EAGAIN,
    # which serve_forever() ignores. Accepted connections stay blocking: Linux's accept() does not
    # pass O_NONBLOCK on, and Python gives them no timeout.
    server.socket.setblocking(False)
    print(f"listening on {server.server_address[0]}:{server.server_address[1]}", flush=True)
    # shutdown() waits for serve_forever() to return, so they run on different threads.
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    signal.sigwait({signal.SIGTERM})
    server.shutdown()
    serving.join()
    server.server_close()


if __name__ == "__main__":
    main()
