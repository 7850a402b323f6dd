# A WSGI app for gunicorn, an unmodified server that supports systemd socket activation.
# Importing it takes a second, like a real app loading its code and config.
import os
import time

time.sleep(1.0)


def app(environ, start_response):
    body = f"gunicorn generation {os.environ.get('BATON_GENERATION', '?')} pid {os.getpid()}\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body.encode()]
