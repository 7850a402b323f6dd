#!/usr/bin/env python3
"""baton's own lines reach a real systemd-journald with their priority (docs: log.h).

    journald_test.py BATON          (run by ctest; exits 77, a skip, where it cannot run)

A private systemd-journald runs in a mount namespace of its own (unshare -m), with tmpfs over
/run and the journal directories, so the host's journal, if any, is never touched. The test
connects a stream to it as systemd does for a service's stderr (the stream protocol's header, then
JOURNAL_STREAM=DEV:INODE of that socket), runs `baton run` with an app that fails at start, and
reads the journal back with journalctl: each line baton wrote has the priority of its level, and
no "<N>" prefix or timestamp left in the message.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

SKIP = 77
JOURNALD = "/lib/systemd/systemd-journald"
LEVELS = {"error": "3", "warning": "4", "notice": "5", "info": "6"}


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def outside(baton):
    """Re-runs this script in a private mount namespace (root only)."""
    if os.geteuid() != 0:
        skip("needs root (a mount namespace with tmpfs over /run)")
    for tool in ("unshare", "journalctl"):
        if shutil.which(tool) is None:
            skip(f"no {tool}")
    if not os.access(JOURNALD, os.X_OK):
        skip(f"no {JOURNALD}")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                        os.path.abspath(__file__), baton, "--inside"], timeout=90)
    return r.returncode


def await_ready(notify, timeout):
    """READY=1 from journald on its $NOTIFY_SOCKET, as systemd waits for it."""
    notify.settimeout(timeout)
    while True:
        data = notify.recv(4096)
        if b"READY=1" in data.split(b"\n"):
            return


def journal_stream(identifier):
    """A stream to journald, as systemd connects a service's stderr to it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/systemd/journal/stdout")
    s.shutdown(socket.SHUT_RD)
    # identifier, unit, default priority (info), level prefix on, no forwarding
    s.sendall(f"{identifier}\n\n6\n1\n0\n0\n0\n".encode())
    return s


def inside(baton):
    for d in ("/run", "/var/log/journal"):
        if os.path.isdir(d):
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", d], check=True)
    os.makedirs("/run/systemd/journal")
    work = tempfile.mkdtemp(prefix="bt-journal.")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(work, "notify"))
    journald = subprocess.Popen([JOURNALD], stdin=subprocess.DEVNULL,
                                env={"NOTIFY_SOCKET": os.path.join(work, "notify")})
    try:
        await_ready(notify, 30)
        stream = journal_stream("baton-journal-test")
        st = os.fstat(stream.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        # An app that exits before it is ready: info lines, then an error, and baton exits 1.
        run = subprocess.run([baton, "run", "--control", os.path.join(work, "control.sock"),
                              "--listen", "127.0.0.1:0", "--", "/bin/sh", "-c", "exit 3"],
                             stdin=subprocess.DEVNULL, stdout=stream.fileno(),
                             stderr=stream.fileno(), env=env, timeout=60)
        stream.close()
        if run.returncode != 1:
            print(f"FAIL: baton run exited {run.returncode}, expected 1")
            return 1
        subprocess.run(["journalctl", "--sync"], check=True, timeout=30)
        out = subprocess.run(["journalctl", "-D", "/run/log/journal", "-o", "json", "--no-pager",
                              "SYSLOG_IDENTIFIER=baton-journal-test"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    finally:
        journald.send_signal(signal.SIGTERM)
        journald.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    seen = {}
    failures = []
    for e in entries:
        msg = e.get("MESSAGE", "")
        if not isinstance(msg, str) or not msg.startswith("baton["):
            continue
        level = msg.split(": ", 2)[1] if msg.count(": ") >= 2 else ""
        if level not in LEVELS:
            failures.append(f"no level in {msg!r}")
            continue
        seen[level] = seen.get(level, 0) + 1
        if e.get("PRIORITY") != LEVELS[level]:
            failures.append(f"priority {e.get('PRIORITY')} for {msg!r}")
    for level in ("info", "error"):
        if not seen.get(level):
            failures.append(f"no {level} line of baton's in the journal: {entries!r}")
    for f in failures:
        print("FAIL:", f)
    if not failures:
        print(f"ok: {sum(seen.values())} lines of baton's, by level {seen}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[2] == "--inside":
        sys.exit(inside(sys.argv[1]))
    if len(sys.argv) != 2:
        print("usage: journald_test.py BATON", file=sys.stderr)
        sys.exit(2)
    sys.exit(outside(sys.argv[1]))
