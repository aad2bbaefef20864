#!/usr/bin/env python3
"""A stand-in for qemu-system-* that boots what the harness really built.

It reads -kernel (the small tree's image: an oops if it carries the canary's mark) and
-initrd (the harness's real initramfs: the nonce and the scenario's steps from /init),
then prints a console as the kernel and the harness init would. Modes, from
$FAKE_QEMU_MODE: boot (default), flood (print without end), crlf (CR-only line ends and
NUL bytes), hang (print the start, then nothing).
"""

import gzip
import os
import re
import sys
import time

args = sys.argv[1:]
kernel = args[args.index("-kernel") + 1]
initrd = args[args.index("-initrd") + 1].split(",")[-1]
mode = os.environ.get("FAKE_QEMU_MODE", "boot")
step_pause = float(os.environ.get("FAKE_QEMU_STEP_SECONDS", "0.6"))
oops_file = os.environ.get("FAKE_QEMU_OOPS", "")

init = gzip.decompress(open(initrd, "rb").read())
nonce = re.search(rb"HARNESS_NONCE=(\w+)", init).group(1).decode()
steps = [
    (int(i), int(n), name.decode())
    for i, n, name in re.findall(rb'HARNESS: STEP (\d+)/(\d+) BEGIN ([^"]+)"', init)
]
buggy = b"CANARY_BUG_ACTIVE" in open(kernel, "rb").read()
end = "\r" if mode == "crlf" else "\n"


def say(line: str) -> None:
    if mode == "crlf":
        line = line.replace("HARNESS", "\0HARNESS")
    sys.stdout.write(line + end)
    sys.stdout.flush()


say("Booting Linux on physical CPU 0x0")
say("Linux version 6.12.117 (small tree) #1 SMP PREEMPT")
say("Run /init as init process")
if mode == "flood":
    line = "x" * 1023
    while True:
        sys.stdout.write(line + "\n")
if mode == "hang":
    while True:
        time.sleep(1)
if buggy:
    for line in open(oops_file).read().splitlines():
        say(line)
    time.sleep(0.2)
    sys.exit(0)  # -no-reboot with panic=-1: QEMU exits after the panic
say(f"HARNESS: START {nonce} scenario=x kernel=6.12.117")
for i, n, name in steps:
    say(f"HARNESS: STEP {i}/{n} BEGIN {name}")
    time.sleep(step_pause)
    say(f"{name}: ok")
    say(f"HARNESS: STEP {i}/{n} END {name} rc=0")
say(f"HARNESS: DONE {nonce} failed=0")
say("reboot: Power down")
sys.exit(0)
