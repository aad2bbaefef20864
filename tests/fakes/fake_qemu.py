#!/usr/bin/env python3
"""A stand-in for qemu-system-*: replays a recorded console, then ends as told.

usage: fake_qemu.py CONSOLE_FILE END [NONCE]
END: exit (exit 0 after the log), hang (print nothing more, never exit),
     chatter (keep printing forever), pidfile=PATH:hang (write own pid first)
Lines containing @NONCE@ get the nonce substituted, so markers match the run; a line
"@SLEEP S@" is not printed: the console pauses S seconds there (a kernel that goes on
printing a while after a report, Xen's crash trailer).
"""

import os
import sys
import time

log, end = sys.argv[1], sys.argv[2]
nonce = sys.argv[3] if len(sys.argv) > 3 else "n0"
if end.startswith("pidfile="):
    path, end = end[len("pidfile=") :].split(":")
    with open(path, "w") as fh:
        fh.write(str(os.getpid()))
with open(log) as fh:
    for line in fh:
        if line.startswith("@SLEEP ") and line.rstrip().endswith("@"):
            time.sleep(float(line.strip()[7:-1]))
            continue
        sys.stdout.write(line.replace("@NONCE@", nonce))
        sys.stdout.flush()
        time.sleep(0.001)
if end == "exit":
    sys.exit(0)
if end == "chatter":
    while True:
        print("tick", flush=True)
        time.sleep(0.05)
while True:
    time.sleep(1)
