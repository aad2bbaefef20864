import gzip
import shutil
import stat
import subprocess

import pytest

from harness import rootfs
from harness.config import Step


def test_newc_archive_lists_with_real_cpio(tmp_path):
    if not shutil.which("cpio"):
        pytest.skip("cpio not installed")
    entries = [
        rootfs.Entry("dev", stat.S_IFDIR | 0o755),
        rootfs.Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        rootfs.Entry("bin", stat.S_IFDIR | 0o755),
        rootfs.Entry("bin/hello", stat.S_IFREG | 0o755, b"hi there\n"),
        rootfs.Entry("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
    ]
    data = rootfs.write_newc(entries)
    assert len(data) % 4 == 0
    out = subprocess.run(
        ["cpio", "-itv", "--quiet"], input=data, capture_output=True, check=True
    ).stdout.decode()
    lines = out.splitlines()
    console = next(ln for ln in lines if ln.endswith("dev/console"))
    assert console.startswith("crw-------") and "5,   1" in console.replace("  5,", "  5,")
    assert any(ln.startswith("lrwxrwxrwx") and ln.endswith("bin/sh -> busybox") for ln in lines)
    # contents survive extraction
    subprocess.run(
        ["cpio", "-idm", "--quiet", "--no-absolute-filenames", "bin/hello"],
        input=data,
        cwd=tmp_path,
        check=True,
    )
    assert (tmp_path / "bin/hello").read_bytes() == b"hi there\n"


def test_archive_is_reproducible():
    e = [rootfs.Entry("a", stat.S_IFREG | 0o644, b"x")]
    assert rootfs.write_newc(e) == rootfs.write_newc(e)


def test_init_script_markers_and_never_exits():
    steps = (Step("churn", "/usr/bin/mm-churn 5"), Step("opt", "false", may_fail=True, timeout=9))
    s = rootfs.init_script("boot", steps, "abc123")
    assert s.startswith("#!/bin/sh\n")
    assert 'echo "HARNESS: START abc123 scenario=boot' in s
    assert "HARNESS: STEP 1/2 BEGIN churn" in s and "HARNESS: STEP 2/2 END opt rc=$rc" in s
    assert "setsid sh -c false </dev/null &" in s and "( sleep 9; " in s
    # a may_fail step does not count as a failure; a normal one does
    assert s.count("failed=$((failed+1))") == 1
    tail = s.strip().splitlines()[-3:]
    assert tail == ["sync", "poweroff -f", "while :; do sleep 1000; done"]


def test_init_script_runs_under_a_real_shell(tmp_path):
    """Run the generated steps section with the host's sh to check the marker protocol."""
    steps = (Step("ok", "true"), Step("bad", "exit 3"), Step("skip", "exit 77"))
    script = rootfs.init_script("t", steps, "n1")
    # keep only the marker/step lines, not mounts or poweroff
    start = script.index("failed=0")
    end = script.index("sync\n")
    snippet = script[start:end]
    out = subprocess.run(["sh", "-c", snippet], capture_output=True, text=True).stdout
    assert "HARNESS: STEP 1/3 END ok rc=0" in out
    assert "HARNESS: STEP 2/3 END bad rc=3" in out
    assert "HARNESS: STEP 3/3 END skip rc=77" in out
    assert out.strip().endswith("HARNESS: DONE n1 failed=1")


def test_gzip_is_deterministic(tmp_path):
    a = gzip.compress(b"abc", mtime=0)
    assert a == gzip.compress(b"abc", mtime=0)


def test_busybox_of_another_arch_is_refused(tmp_path):
    """An armhf busybox in an amd64 initramfs only says 'No working init found'."""
    from harness.errors import InfraError

    elf = bytearray(b"\x7fELF" + b"\0" * 60)
    elf[18:20] = (40).to_bytes(2, "little")  # EM_ARM
    p = tmp_path / "busybox"
    p.write_bytes(bytes(elf))
    rootfs.check_elf_machine(p, "armhf")
    with pytest.raises(InfraError, match="machine 40, not amd64"):
        rootfs.check_elf_machine(p, "amd64")


def test_download_picks_this_arch_deb(tmp_path, monkeypatch):
    from harness import debian

    for arch in ("armhf", "amd64"):
        (tmp_path / f"busybox-static_1%3a1.35_{arch}.deb").write_bytes(b"")
    got = debian.download_deb("busybox-static:amd64", suites=["x"], arch="amd64", cache=tmp_path)
    assert got.name.endswith("_amd64.deb")
