"""Every canary on every Debian kernel it was ported to (6.1, 7.2), on its CI-sized target.

On demand (`tox -e ports`, marker `ports`), not in CI: each kernel version is a cold
build per target (6.1 and 7.2 for arm32, arm64 and x86 add about 40 minutes on 2
cores), which CI's 90 minutes cannot hold next to the 6.12 and 7.3 suite. CI covers the
same machinery (variant choice, exact application, stale and not-applicable statuses) on
6.12, 7.3 and the linux-next fixture.

Each cell reads its expectation from the scenario's own variant for that kernel, so a
port that changes its expected title is checked against what it says: caught with a
matching title and its clean twin passing, or "not applicable" with the variant's reason.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.ports]

CELLS = [
    ("arm32-highmem-ci", "pte-lockptr-highpte", "debian-6.1"),
    ("arm32-highmem-ci", "pte-lockptr-highpte", "debian-7.2"),
    ("x86-xen-pv-ci", "xen-lazy-mmu-nesting", "debian-6.1"),
    ("x86-xen-pv-ci", "xen-lazy-mmu-nesting", "debian-7.2"),
    ("arm64-bbml2-ci", "cow-without-bbm", "debian-6.1"),
    ("arm64-bbml2-ci", "cow-without-bbm", "debian-7.2"),
    ("arm64-bbml2-ci", "khugepaged-ptl-nesting", "debian-6.1"),
    ("arm64-bbml2-ci", "khugepaged-ptl-nesting", "debian-7.2"),
    ("arm64-bbml2-ci", "bbml2-lockless-split", "debian-6.1"),
    ("arm64-bbml2-ci", "bbml2-lockless-split", "debian-7.2"),
]
VERSIONS = {"debian-6.1": (6, 1, 999), "debian-7.2": (7, 2, 999)}


@pytest.mark.parametrize(("target", "canary", "kernel"), CELLS, ids=lambda v: v)
def test_canary_on_ported_kernel(harness, target, canary, kernel):
    from harness.config import load_scenario

    variant = load_scenario(canary).variant_for(VERSIONS[kernel])
    assert variant is not None, f"{canary} has no variant for {kernel}"
    r = harness("run", target, "-s", canary, "--kernel", kernel, timeout=3600)
    if variant.not_applicable:
        assert r.meta["verdict"] == "not-applicable", r.stdout + r.stderr
        assert r.code == 0, r.stdout
        return
    assert r.code == 1, r.stdout + r.stderr
    assert r.meta["verdict"] == "fail", r.meta
    expect = variant.expect
    assert expect is not None, f"{canary} {variant.versions}: a canary variant expects a title"
    titles = [rep["title"] for rep in r.reports]
    if expect.title:
        assert titles[0] == expect.title, titles
    else:
        assert expect.title_regex and re.search(expect.title_regex, titles[0]), titles
    assert r.meta["kernel"]["version"].startswith(kernel.removeprefix("debian-") + ".")
    twin = harness("run", target, "-s", canary, "--kernel", kernel, "--clean", timeout=3600)
    assert twin.code == 0, twin.stdout + twin.stderr
    assert twin.meta["verdict"] == "pass"
