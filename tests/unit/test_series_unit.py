"""`harness series` pieces on a small real git repository: reading an mbox, git am, the
reply mail and the A/B rule. The whole flow on a real kernel is an integration test."""

from __future__ import annotations

import email
import email.policy
import stat
import subprocess
from pathlib import Path

import pytest
from gitutil import git_env

from harness.errors import ConfigError, PatchError
from harness.series import core, mbox, reply
from harness.verdict import Kind

AUTHOR = "Ada Author <ada@example.org>"


def _repo(tmp_path: Path) -> tuple[Path, str, list[str]]:
    repo = tmp_path / "tree"
    (repo / "mm").mkdir(parents=True)
    for name in ("a", "b", "c"):
        (repo / "mm" / f"{name}.c").write_text("".join(f"line {i} of {name}\n" for i in range(30)))
    git_env(repo, "init", "-q", "-b", "master")
    git_env(repo, "add", "-A")
    git_env(repo, "commit", "-q", "-m", "base")
    base = git_env(repo, "rev-parse", "HEAD")
    commits = []
    for n, name in enumerate(("a", "b", "c"), 1):
        p = repo / "mm" / f"{name}.c"
        p.write_text(p.read_text().replace("line 10 ", f"line ten (patch {n}) "))
        git_env(repo, "commit", "-q", "-a", "--author", AUTHOR, "-m", f"mm/{name}: change {n}")
        commits.append(git_env(repo, "rev-parse", "HEAD"))
    return repo, base, commits


def _mbox(repo: Path, base: str, out: Path, *extra: str) -> Path:
    text = git_env(repo, "format-patch", "--stdout", "--thread", "--cover-letter", f"--base={base}",
                   "--to=linux-mm@kvack.org", "--cc=Rev Iewer <rev@example.org>",
                   *extra, f"{base}..HEAD")  # fmt: skip
    out.write_text(text + "\n")
    return out


@pytest.fixture
def series_repo(tmp_path):
    repo, base, commits = _repo(tmp_path)
    box = _mbox(repo, base, tmp_path / "series.mbox")
    git_env(repo, "checkout", "-q", "--detach", base)
    return repo, base, commits, box


def test_reads_cover_patches_and_base(series_repo):
    repo, base, commits, box = series_repo
    s = mbox.read_series(box)
    assert s.cover is not None and s.cover.label == "0/3"
    assert [p.label for p in s.patches] == ["1/3", "2/3", "3/3"]
    assert [p.title for p in s.patches] == ["mm/a: change 1", "mm/b: change 2", "mm/c: change 3"]
    assert s.base_commit == base
    assert s.first is s.cover and s.cover.message_id.startswith("<")
    assert "linux-mm@kvack.org" in s.cover.to and "Rev Iewer <rev@example.org>" in s.cover.cc


def test_replies_are_left_out_and_a_folder_works(series_repo, tmp_path):
    repo, base, commits, box = series_repo
    cover = mbox.read_series(box).cover
    assert cover
    box.write_text(box.read_text() + (
        f"From nobody Mon Sep 17 00:00:00 2001\nFrom: {AUTHOR}\n"
        f"Subject: Re: [PATCH 2/3] mm/b: change 2\nIn-Reply-To: {cover.message_id}\n\nLooks good.\n"
    ))  # fmt: skip
    s = mbox.read_series(box)
    assert len(s.patches) == 3 and any("a reply" in k for k in s.skipped)
    folder = tmp_path / "dir"
    git_env(
        repo, "format-patch", "-q", "-o", str(folder), "--cover-letter", f"{base}..{commits[-1]}"
    )
    assert [p.label for p in mbox.read_series(folder).patches] == ["1/3", "2/3", "3/3"]


def test_gaps_and_mixed_versions_are_refused(series_repo, tmp_path):
    repo, base, commits, box = series_repo
    msgs = box.read_text().split("\nFrom ")
    gap = tmp_path / "gap.mbox"
    gap.write_text("\nFrom ".join(m for m in msgs if "[PATCH 2/3]" not in m))
    with pytest.raises(ConfigError, match=r"patch 2/3 is missing"):
        mbox.read_series(gap)
    git_env(repo, "checkout", "-q", "--detach", commits[-1])
    v2 = _mbox(repo, base, tmp_path / "v2.mbox", "-v2")
    mixed = tmp_path / "mixed.mbox"
    mixed.write_text(box.read_text() + v2.read_text().replace("[PATCH v2 0/3]", "[PATCH v2 0/3 x]"))
    with pytest.raises(ConfigError, match=r"2 messages are patch 1/3 .*pass one version"):
        mbox.read_series(mixed)
    empty = tmp_path / "empty.mbox"
    empty.write_text("From x Mon Sep 17 00:00:00 2001\nSubject: hello\n\nno diff\n")
    with pytest.raises(ConfigError, match="no patches"):
        mbox.read_series(empty)


def test_git_am_applies_exactly_or_names_the_hunk(series_repo, tmp_path):
    repo, base, commits, box = series_repo
    s = mbox.read_series(box)
    files = []
    for m in s.patches:
        f = tmp_path / f"{m.index}.patch"
        f.write_bytes(m.mbox_bytes)
        files.append(f)
    got = core.apply_series(repo, s, files, base)
    # the same trees as the commits the series was made from, and reproducible hashes
    assert [git_env(repo, "rev-parse", f"{c}^{{tree}}") for c in got] == [
        git_env(repo, "rev-parse", f"{c}^{{tree}}") for c in commits
    ]
    assert git_env(repo, "log", "-1", "--format=%an <%ae>", got[0]) == AUTHOR
    git_env(repo, "checkout", "-q", "--detach", base)
    assert core.apply_series(repo, s, files, base) == got
    # a base where patch 2's context moved: nothing half-applied, the hunk is named
    git_env(repo, "checkout", "-q", "-B", "moved", base)
    p = repo / "mm" / "b.c"
    p.write_text(p.read_text().replace("line 9 of b", "line nine of b"))
    git_env(repo, "commit", "-q", "-a", "-m", "moved")
    moved = git_env(repo, "rev-parse", "HEAD")
    git_env(repo, "checkout", "-q", "--detach", moved)
    with pytest.raises(PatchError) as e:
        core.apply_series(repo, s, files, moved)
    msg = str(e.value)
    assert "patch 2/3 (mm/b: change 2) does not apply" in msg
    assert "mm/b.c, hunk #1" in msg and "-line 10 of b" in msg
    assert not msg.rstrip().endswith("2.39.5") and "\n-- \n" not in msg  # no mail signature
    assert git_env(repo, "rev-parse", "HEAD") == moved
    assert git_env(repo, "status", "--porcelain") == ""
    assert not core._am_in_progress(repo)


def test_reply_threads_under_the_cover_letter(series_repo):
    repo, base, commits, box = series_repo
    s = mbox.read_series(box)
    assert s.cover
    to = reply.unique([s.patches[1].author, s.first.author])
    cc = reply.unique([*s.first.to, *s.first.cc, "Ada Author <ADA@example.org>"], without=to)
    msg = reply.build(s, "Tess Ter <tess@example.org>", to, cc, "Tested-by: Tess\n")
    back = email.message_from_bytes(bytes(msg), policy=email.policy.default)
    assert not back.defects
    assert back["Subject"] == f"Re: {s.cover.subject}"
    assert back["In-Reply-To"] == s.cover.message_id
    assert back["References"].split()[-1] == s.cover.message_id
    assert back["To"] == f"{AUTHOR}, Harness Test <harness@example.invalid>"
    assert [a.addr_spec for a in back["Cc"].addresses] == ["linux-mm@kvack.org", "rev@example.org"]
    assert back["Message-ID"].endswith("@example.org>") and back["Date"]
    assert back.get_content() == "Tested-by: Tess\n"


def test_get_maintainer_from_the_tree(tmp_path):
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    assert reply.maintainers(tree, [])[1].endswith("has no scripts/get_maintainer.pl")
    script = tree / "scripts" / "get_maintainer.pl"
    script.write_text(
        'print "Andrew Morton <akpm\\@linux-foundation.org>\\nlinux-mm\\@kvack.org\\n"; '
        'print STDERR join(" ", @ARGV), "\\n";\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    found, note = reply.maintainers(tree, [tmp_path / "x.patch"])
    assert found == ["Andrew Morton <akpm@linux-foundation.org>", "linux-mm@kvack.org"]
    assert note == ""
    script.write_text('die "no MAINTAINERS\\n";\n')
    assert reply.maintainers(tree, [])[1].startswith("get_maintainer.pl exited")


def test_sender_prefers_flag_then_env_then_git(tmp_path, monkeypatch):
    repo = tmp_path / "r"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    git_env(repo, "config", "user.name", "Git Person")
    git_env(repo, "config", "user.email", "git@example.org")
    monkeypatch.delenv(reply.SENDER_ENV, raising=False)
    assert reply.sender(repo) == "Git Person <git@example.org>"
    monkeypatch.setenv(reply.SENDER_ENV, "Env <env@example.org>")
    assert reply.sender(repo) == "Env <env@example.org>"
    assert reply.sender(repo, "Flag <flag@example.org>") == "Flag <flag@example.org>"


@pytest.mark.parametrize(
    ("base", "tip", "status"),
    [
        ([Kind.PASS], [Kind.PASS], core.PASS),
        ([Kind.PASS], [Kind.FAIL, Kind.FAIL], core.REGRESSION),
        ([Kind.PASS], [Kind.BUILD_ERROR], core.REGRESSION),
        ([Kind.PASS], [Kind.CANARY_MISSED], core.REGRESSION),
        ([Kind.FAIL, Kind.FAIL], [Kind.FAIL, Kind.FAIL], core.PRE_EXISTING),
        ([Kind.FAIL, Kind.FAIL], [Kind.PASS], core.FIXED),
        ([Kind.PASS], [Kind.FAIL, Kind.PASS], core.FLAKY),
        ([Kind.PASS], [Kind.INFRA_ERROR, Kind.INFRA_ERROR], core.ERROR),
        ([Kind.NOT_APPLICABLE], [Kind.NOT_APPLICABLE], core.SKIPPED),
    ],
)
def test_a_cell_is_judged_base_against_tip(base, tip, status):
    def side(verdicts):
        return core.Side(verdicts[-1], verdicts=list(verdicts))

    assert core.status_of(side(base), side(tip)) == status


def test_a_canary_whose_bug_the_series_brings_is_in_series():
    base = core.Side(Kind.PASS, verdicts=[Kind.PASS])
    tip = core.Side(Kind.PATCH_ERROR, verdicts=[Kind.PATCH_ERROR], cause="already applied")
    assert core.status_of(base, tip) == core.IN_SERIES
    tip.cause = "does not apply"
    assert core.status_of(base, tip) == core.ERROR


def test_first_compiler_error_is_relative_to_the_tree():
    log = (
        "  CC      mm/util.o\n"
        "../../../worktrees/git-linux-6.12-7a4af038/mm/memory.c:6512:9: error: implicit "
        "declaration of function ‘pte_lock_sanity_check’ [-Werror=implicit-function-declaration]\n"
        "../../../worktrees/git-linux-6.12-7a4af038/mm/memory.c:6513:1: error: second\n"
    )
    tree = Path("/cache/worktrees/git-linux-6.12-7a4af038")
    assert core.first_compiler_error(log, tree) == (
        "mm/memory.c:6512:9: error: implicit declaration of function 'pte_lock_sanity_check' "
        "[-Werror=implicit-function-declaration]"
    )
    assert core.first_compiler_error("make: *** [Makefile:224: __sub-make] Error 2\n", tree) == ""


def test_where_functions_are_defined(tmp_path):
    tree = tmp_path / "k"
    (tree / "mm").mkdir(parents=True)
    (tree / "include/linux").mkdir(parents=True)
    (tree / "include/linux/mm.h").write_text(
        "extern int handle_mm_fault(int a,\n\t\tint b);\n"
        "static inline int *pte_lockptr(int *pte)\n{\n\treturn pte;\n}\n"
    )
    (tree / "mm/memory.c").write_text(
        "int x;\n\nint handle_mm_fault(int a,\n\t\tint b)\n{\n\treturn pte_lockptr(&a) != 0;\n}\n"
    )
    git_env(tree, "init", "-q")
    git_env(tree, "add", "-A")
    git_env(tree, "commit", "-q", "-m", "t")
    got = core.where_defined(tree, ["handle_mm_fault", "pte_lockptr", "nowhere", "bad name"], "arm")
    assert got == {"handle_mm_fault": "mm/memory.c:3", "pte_lockptr": "include/linux/mm.h:3"}
    lines = core._trace_lines(
        [{"function": "pte_lockptr"}, {"function": "handle_mm_fault", "file": "mm/memory.c"}],
        tree,
        "arm",
    )
    assert "no debug info" in " ".join(lines)
    assert "  pte_lockptr      include/linux/mm.h:3" in lines
    sym = [{"function": "f", "file": "mm/a.c", "line": 7}]
    assert core._trace_lines(sym, tree, "arm")[-2:] == ["  f  mm/a.c:7", ""]


def test_a_series_killed_in_git_am_is_cleaned_up(series_repo, tmp_path):
    repo, base, commits, box = series_repo
    wt = tmp_path / "wt"
    git_env(repo, "worktree", "add", "-q", "--detach", str(wt), base)
    s = mbox.read_series(box)
    f = tmp_path / "2.patch"
    f.write_bytes(s.patches[1].mbox_bytes)
    (wt / "mm/b.c").write_text("changed under the patch\n")
    git_env(wt, "commit", "-q", "-a", "-m", "moved")
    assert core._git_am(wt, f).returncode != 0  # left mid-am, as a SIGKILL would leave it
    assert core._am_in_progress(wt)
    core.start_at(repo, wt, base)
    assert not core._am_in_progress(wt)
    assert git_env(wt, "rev-parse", "HEAD") == base
    assert git_env(wt, "status", "--porcelain") == ""
