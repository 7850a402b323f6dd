#!/usr/bin/env python3
"""A keep-alive HTTPS client that never retries: one request, then, once RELEASE exists (at most
60 s), a second one on the same connection.

Usage: tls_client.py PORT RELEASE

It prints "first STATUS BODY", then "second STATUS BODY" or "second failed: ERROR".
"""
import http.client
import os
import ssl
import sys
import time


def main():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the test's own certificate
    conn = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=context, timeout=30)
    conn.request("GET", "/")
    response = conn.getresponse()
    print("first", response.status, response.read().decode().strip(), flush=True)
    for _ in range(6000):
        if os.path.exists(sys.argv[2]):
            break
        time.sleep(0.01)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        print("second", response.status, response.read().decode().strip(), flush=True)
    except (OSError, http.client.HTTPException) as e:
        print("second failed:", type(e).__name__, e, flush=True)


if __name__ == "__main__":
    main()
