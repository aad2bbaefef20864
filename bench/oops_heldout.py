"""Score the oops parser on syzkaller-format report files it was not tuned on.

    python3 bench/oops_heldout.py [DIR ...] [--quiet]

Every file under each DIR (recursively) that is in syzkaller's test format
(`TITLE:`/`TYPE:`/`CORRUPTED:`... header, blank line, console log) is parsed
and the first report compared with the header, the way
tests/oops/test_syzkaller_corpus.py does (same header reader).  Prints, per
directory and per sub-directory: exact-title ratio, type and corrupted
agreement on crash files, false positives on clean logs (empty `TITLE:`),
and the list of mismatches (file, expected, got).

The default DIR is ~/.cache/harness/oops-heldout: files copied from
google/syzkaller's pkg/report/testdata/linux/report (Apache-2.0) that are
not in shared/oops-corpus/syzkaller.  They stay outside the repository.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "oops"))

from oops_golden import KNOWN_KEYS, Golden, read  # noqa: E402

from harness.oops.parser import parse_strict  # noqa: E402

DEFAULT_DIR = Path.home() / ".cache" / "harness" / "oops-heldout"


@dataclass
class Outcome:
    """Expected values of one file and what the parser made of its log."""

    path: Path
    golden: Golden
    title: str = ""
    type: str = "UNKNOWN"
    corrupted: bool = False
    reports: int = 0
    error: str = ""

    @property
    def clean(self) -> bool:
        return not self.golden.title

    @property
    def title_ok(self) -> bool:
        return not self.error and self.title == self.golden.title

    @property
    def type_known(self) -> bool:
        return not self.clean and "TYPE" in self.golden.headers

    @property
    def legacy(self) -> bool:
        """A crash file without TYPE: is an old version of a syzkaller test.

        syzkaller added TYPE: to every crash file whose type is known; a copy
        without it predates that and its expected title may follow rules that
        syzkaller itself has changed since (e.g. `in corrupted` frames).
        """
        return not self.clean and not self.type_known

    @property
    def type_ok(self) -> bool:
        return self.type == self.golden.type

    @property
    def corrupted_ok(self) -> bool:
        return self.corrupted == self.golden.corrupted

    @property
    def passed(self) -> bool:
        """The corpus test's criterion: title, and type/corrupted for crashes."""
        if not self.title_ok:
            return False
        if self.clean:
            return True
        return (self.type_ok or not self.type_known) and self.corrupted_ok


def looks_syzkaller(path: Path) -> bool:
    """A header line, a `#` comment or (clean logs) an empty header first: not a README."""
    try:
        with path.open("rb") as f:
            first = f.readline().decode("utf-8", "replace")
    except OSError:
        return False
    if first.startswith("#") or (first and not first.strip("\r\n")):
        return True
    key, sep, _ = first.partition(":")
    return bool(sep) and key in KNOWN_KEYS


def files_under(directory: Path) -> list[Path]:
    def order(p: Path) -> tuple:
        rel = p.relative_to(directory)
        return (rel.parent.parts, int(p.name) if p.name.isdigit() else 1 << 62, p.name)

    found = [
        p
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".") and looks_syzkaller(p)
    ]
    return sorted(found, key=order)


def score(path: Path) -> Outcome:
    try:
        golden = read(path)
    except ValueError as exc:
        return Outcome(path, Golden(path), error=f"unreadable header: {exc}")
    out = Outcome(path, golden)
    try:
        reports = parse_strict(golden.log)
    except Exception as exc:  # a parser bug is a result too
        out.error = f"parser raised {type(exc).__name__}: {exc}"
        return out
    out.reports = len(reports)
    if reports:
        first = reports[0]
        out.title, out.type, out.corrupted = first.title, first.type, first.corrupted
    return out


@dataclass
class Summary:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def lines(self) -> list[str]:
        outs = self.outcomes
        crashes = [o for o in outs if not o.clean]
        clean = [o for o in outs if o.clean]
        typed = [o for o in crashes if o.type_known]
        found = [o for o in crashes if o.reports]

        def ratio(num: int, den: int) -> str:
            return f"{num}/{den} = {num / den:.3f}" if den else f"{num}/0"

        current = [o for o in outs if not o.legacy]
        return [
            f"{self.name}: {len(outs)} files ({len(crashes)} crashes, {len(clean)} clean logs)",
            f"  exact titles         {ratio(sum(o.title_ok for o in outs), len(outs))}",
            f"    on crash files     {ratio(sum(o.title_ok for o in crashes), len(crashes))}",
            f"  crash found at all   {ratio(len(found), len(crashes))}",
            f"  type agreement       {ratio(sum(o.type_ok for o in typed), len(typed))}"
            f"  (files with a TYPE: header)",
            f"  corrupted agreement  {ratio(sum(o.corrupted_ok for o in crashes), len(crashes))}",
            f"  clean-log false pos. {sum(1 for o in clean if o.reports)}/{len(clean)}",
            f"  full pass (corpus test criterion) {ratio(sum(o.passed for o in outs), len(outs))}",
            f"  current-format files (TYPE: header or clean log): exact titles "
            f"{ratio(sum(o.title_ok for o in current), len(current))}, full pass "
            f"{ratio(sum(o.passed for o in current), len(current))}",
        ]


def _rel(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def mismatch_lines(outcomes: Iterable[Outcome], base: Path) -> list[str]:
    out = []
    for o in outcomes:
        name = _rel(o.path, base) + (" (legacy header)" if o.legacy else "")
        if o.error:
            out.append(f"  {name}: {o.error}")
            continue
        if not o.title_ok:
            out.append(f"  {name}\n      expected: {o.golden.title!r}\n      got:      {o.title!r}")
            continue
        problems = []
        if not o.clean and o.type_known and not o.type_ok:
            problems.append(f"type {o.type} != {o.golden.type}")
        if not o.clean and not o.corrupted_ok:
            problems.append(
                f"corrupted {'Y' if o.corrupted else 'N'} != {'Y' if o.golden.corrupted else 'N'}"
            )
        if problems:
            out.append(f"  {name} [{o.title}]: " + "; ".join(problems))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path, default=[DEFAULT_DIR])
    ap.add_argument("--quiet", action="store_true", help="summaries only, no mismatch list")
    args = ap.parse_args(argv)
    status = 0
    for directory in args.dirs:
        directory = directory.expanduser()
        if not directory.is_dir():
            print(f"{directory}: not a directory", file=sys.stderr)
            status = 2
            continue
        files = files_under(directory)
        if not files:
            print(f"{directory}: no syzkaller-format files", file=sys.stderr)
            status = 2
            continue
        started = time.perf_counter()
        outcomes = [score(p) for p in files]
        elapsed = time.perf_counter() - started
        groups: dict[str, Summary] = {}
        for o in outcomes:
            sub = o.path.parent.relative_to(directory).parts
            key = sub[0] if sub else "."
            groups.setdefault(key, Summary(key)).outcomes.append(o)
        total = Summary(str(directory), outcomes)
        if len(groups) > 1:
            for group in groups.values():
                print("\n".join(group.lines()))
        print("\n".join(total.lines()))
        print(f"  parsed in {elapsed:.2f} s")
        if not args.quiet:
            mism = mismatch_lines(outcomes, directory)
            print(f"mismatches ({len(mism)}):" if mism else "mismatches: none")
            if mism:
                print("\n".join(mism))
    return status


if __name__ == "__main__":
    sys.exit(main())
