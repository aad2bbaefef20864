"""parse() must survive anything a serial console can produce."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oops_golden import GOLDEN_DIR, SYZ_CORPUS, read

from harness.oops import parse
from harness.oops.parser import parse_strict

FRAGMENTS = [
    "BUG: ",
    "WARNING:",
    "INFO: ",
    "Kernel panic - not syncing: ",
    "Call Trace:",
    "Call trace:",
    " ? foo+0x1/0x2",
    " foo+0x10/0x20 (P)",
    " f from g+0x1/0x2",
    "[<c0101010>] (f) from [<c0202020>] (g+0x4/0x8)",
    "PC is at ",
    "pc : [<c019d7c0>]    lr : [<c01a0c84>]    psr: 20000193",
    "RIP: 0010:",
    "RIP: e030:x+0x1/0x2",
    "CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G      D  6.12 #1",
    "(XEN) ",
    "(XEN) Panic on CPU 0:",
    "(XEN) Xen BUG at a.c:1",
    "(XEN) ----[ Xen-4.17  x86_64  debug=n  Not tainted ]----",
    "(XEN) Hardware Dom0 crashed",
    "Unable to handle kernel NULL pointer dereference at virtual address 0",
    "[   1.000000] ",
    "[   2.5][T12] ",
    "[   3.5][C1] ",
    "<4>",
    "** replaying previous printk message **",
    "kernel BUG at mm/x.c:1!",
    "Oops: invalid opcode: 0000 [#1]",
    "Internal error: Oops: 5 [#1]",
    "---[ end trace 0 ]---",
    "==================================================================",
    "BUG: KASAN: use-after-free in f+0x1/0x2",
    "Read of size 8 at addr ffff",
    "rust_kernel: panicked at x",
    "_RNvMs3_NtCs_11rust_binder7processNtB5_7Process10update_ref+0x1/0x2",
    "\r",
    "\t",
    "\x00",
    "\u00e9",
    "INFO: task a:1 blocked for more than 1 seconds.",
    "rcu: INFO: rcu_preempt self-detected stall on CPU",
    "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [a:1]",
    "Sending NMI from CPU 0 to CPUs 1:",
]


def _check(text: str) -> None:
    reports = parse_strict(text)
    for rep in reports:
        assert 0 <= rep.start <= rep.end <= len(text)
        assert len(rep.title.encode()) <= 120 and rep.title.isascii()
        json.dumps(rep.to_dict())
    titles = [r.title for r in reports]
    assert [r.title for r in parse(text, merge=False)] == titles
    merged = parse(text)
    assert [r.title for r in merged] == list(dict.fromkeys(titles))
    assert sum(r.count for r in merged) == len(reports)


lines = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=60)), max_size=40)
logs = lines.map(lambda parts: "\n".join(parts))
logs_with_prefix = st.lists(
    st.tuples(st.sampled_from(FRAGMENTS[20:26] + [""]), st.sampled_from(FRAGMENTS))
).map(lambda rows: "\n".join(p + f for p, f in rows))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(logs, logs_with_prefix))
def test_oops_like_fragments(text: str) -> None:
    _check(text)


def _real_logs() -> list[str]:
    texts = [read(p).log for p in sorted(GOLDEN_DIR.glob("*.txt")) if read(p).title]
    if SYZ_CORPUS.is_dir():
        corpus = sorted(p for p in SYZ_CORPUS.iterdir() if p.name.isdigit())
        texts += [read(p).log for p in corpus[::9]]
    return texts


REAL = _real_logs()


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(REAL))
    rows = text.split("\n")
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["cut", "drop", "dup", "insert", "swap", "chop"]))
        i = draw(st.integers(0, max(0, len(rows) - 1)))
        if op == "cut":
            rows = rows[:i]
        elif op == "drop":
            del rows[i : i + draw(st.integers(1, 20))]
        elif op == "dup":
            rows[i:i] = rows[i : i + draw(st.integers(1, 30))]
        elif op == "insert":
            rows.insert(i, draw(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=80))))
        elif op == "swap" and rows:
            j = draw(st.integers(0, len(rows) - 1))
            rows[i], rows[j] = rows[j], rows[i]
        elif op == "chop" and rows:
            rows[i] = rows[i][: draw(st.integers(0, len(rows[i])))]
    joined = "\n".join(rows)
    return joined[: draw(st.integers(0, len(joined)))] if draw(st.booleans()) else joined


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_logs(text: str) -> None:
    _check(text)
