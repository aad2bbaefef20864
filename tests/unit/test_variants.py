"""Variants for kernels the canaries were never ported to: nearest first, exact or stale."""

from pathlib import Path

import pytest

from harness import patches, variants
from harness.config import Scenario, Variant
from harness.errors import ConfigError, NotApplicable, StaleError


def _v(spec: str, *patch_names: str, na: str = "", enablers=()) -> Variant:
    return Variant(
        spec, tuple(Path(f"/p/{n}") for n in patch_names), None, not_applicable=na,
        enablers=tuple(enablers),
    )  # fmt: skip


def _scenario(*vs: Variant, canary: bool = True) -> Scenario:
    return Scenario(
        name="c", path=Path("/s/c/scenario.yaml"), description="", canary=canary, steps=(),
        workloads=(), patches=(), variants=vs, cmdline="", requires_config=(),
        not_applicable_hint="",
    )  # fmt: skip


V61, V612, V72, V73 = (
    _v(">=6.1,<6.2", "a-6.1.patch"),
    _v(">=6.12,<6.13", "a-6.12.patch"),
    _v(">=7.2,<7.3", "a-7.2.patch"),
    _v(">=7.3,<7.4", "a-7.3.patch"),
)


def test_exact_variant_first_then_nearest_outwards():
    s = _scenario(V61, V612, V73, V72)
    got = variants.candidates(s, (7, 5, 0))
    assert [c.variant.versions for c in got] == [V73.versions, V72.versions, V612.versions,
                                                 V61.versions]  # fmt: skip
    assert not any(c.exact for c in got)
    got = variants.candidates(s, (6, 12, 117))
    assert got[0].variant is V612 and got[0].exact
    assert [c.variant for c in got[1:]] == [V61, V72, V73]


def test_open_ended_range_is_exact():
    s = _scenario(V612, _v(">=7.3", "a-7.3.patch"))
    (first, second) = variants.candidates(s, (7, 5, 0))
    assert first.exact and first.variant.versions == ">=7.3" and not second.exact


def test_not_applicable_only_where_it_is_exact():
    s = _scenario(V612, _v(">=7.0", na="nesting is legal"))
    with pytest.raises(NotApplicable, match="nesting is legal"):
        variants.candidates(s, (7, 5, 0))
    s = _scenario(_v(">=6.12,<6.18", na="no BBML2"), V73)
    assert [c.variant for c in variants.candidates(s, (7, 5, 0))] == [V73]


def test_a_variant_without_patches_is_never_a_fallback():
    plain = _v(">=6.12,<6.13")
    s = _scenario(plain, canary=False)
    with pytest.raises(ConfigError, match="none with patches to try"):
        variants.candidates(s, (7, 5, 0))
    assert variants.candidates(s, (6, 12, 1))[0].variant is plain


def test_clean_twin_keeps_only_enablers():
    s = _scenario(_v(">=7.3,<7.4", "enable.patch", "bug.patch", enablers=["enable.patch"]))
    (c,) = variants.candidates(s, (7, 3, 4), clean=True)
    assert [p.name for p in c.patches] == ["enable.patch"]


def test_stale_message_names_the_port_and_the_nearest_hunk():
    s = _scenario(V612, V73)
    cands = variants.candidates(s, (7, 5, 0))
    err = variants.stale(s, "7.5.0-rc1", (7, 5, 0), [
        (cands[0], patches.PatchError("patch a-7.3.patch does not apply\nmm/x.c, hunk #2")),
        (cands[1], patches.PatchError("patch a-6.12.patch does not apply")),
    ])  # fmt: skip
    assert isinstance(err, StaleError) and err.exit_code == 5
    text = str(err)
    assert text.startswith("canary stale: c needs a port to 7.5 (kernel 7.5.0-rc1;")
    assert "tried >=7.3,<7.4; >=6.12,<6.13" in text and "mm/x.c, hunk #2" in text


def _tree(tmp_path):
    t = tmp_path / "tree"
    t.mkdir()
    (t / "f.c").write_text("one\ntwo\nthree\n")
    return t


def _patch(tmp_path, name, old, new):
    p = tmp_path / name
    p.write_text(f"--- a/f.c\n+++ b/f.c\n@@ -1,3 +1,3 @@\n one\n-{old}\n+{new}\n three\n")
    return p


def test_applied_takes_the_first_alternative_that_applies(tmp_path):
    tree = _tree(tmp_path)
    stale = _patch(tmp_path, "stale.patch", "TWO", "2")
    good = _patch(tmp_path, "good.patch", "two", "2")
    with patches.applied(tree, [], tmp_path / "rec", alternatives=[[stale], [good]]) as done:
        assert done.alternative == 1 and [i for i, _ in done.failures] == [0]
        assert (tree / "f.c").read_text() == "one\n2\nthree\n"
        assert [p.name for p in (tmp_path / "rec").iterdir()] == ["01-good.patch"]
    assert (tree / "f.c").read_text() == "one\ntwo\nthree\n"


def test_applied_with_no_alternative_that_fits(tmp_path):
    tree = _tree(tmp_path)
    a = _patch(tmp_path, "a.patch", "TWO", "2")
    b = _patch(tmp_path, "b.patch", "zwei", "2")
    with pytest.raises(patches.NoAlternativeApplies) as e:
        with patches.applied(tree, [], alternatives=[[a], [b]]):
            pass
    assert [i for i, _ in e.value.failures] == [0, 1]
    assert (tree / "f.c").read_text() == "one\ntwo\nthree\n"


def test_an_alternative_already_in_the_tree_is_said_so_not_stale(tmp_path):
    tree = _tree(tmp_path)
    (tree / "f.c").write_text("one\n2\nthree\n")
    a = _patch(tmp_path, "a.patch", "two", "2")
    with pytest.raises(patches.PatchError) as e:
        with patches.applied(tree, [], alternatives=[[a]]):
            pass
    assert e.value.reason == patches.ALREADY_APPLIED
