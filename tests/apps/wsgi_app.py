# A WSGI app for gunicorn, an unmodified server that supports systemd socket activation.
# Importing it takes a second, like a real app loading its code and config.
import os
import time

time.sleep(1.0)
# A release that fails at import, as one with a syntax error or a missing dependency does: the
# tests make it so by creating the file WSGI_BROKEN_MARKER names.
if os.path.exists(os.environ.get("WSGI_BROKEN_MARKER", "/nonexistent")):
    raise RuntimeError("this release is broken (WSGI_BROKEN_MARKER exists)")


def app(environ, start_response):
    body = f"gunicorn generation {os.environ.get('BATON_GENERATION', '?')} pid {os.getpid()}\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body.encode()]
