"""A small real tree the harness can patch, build and boot in seconds, for kill tests.

It is built by real make with the target's real cross compiler (one object per mm/*.c,
each taking a moment, so a kill can land mid-build), linked into a "kernel" whose bytes
carry the strings of the sources. The fake QEMU (qemu_from_image.py) reads that image:
a kernel built with the canary patch in it oopses, a clean one boots and runs the
scenario's steps. A tree left patched by a killed run therefore shows up as a wrong
verdict, not only as a byte difference.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from kernel_tree import MERGE

BUG_MARK = "CANARY_BUG_ACTIVE"
N_FILES = 12

MAKEFILE = r"""VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 117
O ?= .
SRC := $(CURDIR)
OBJS := $(patsubst $(SRC)/mm/%.c,$(O)/mm/%.o,$(sort $(wildcard $(SRC)/mm/*.c)))
.PHONY: tinyconfig olddefconfig zImage
tinyconfig:
	@echo "  HOSTCC  scripts/kconfig/conf"
	@printf 'CONFIG_BASE=y\n' > $(O)/.config
olddefconfig:
	@grep -E "^($$(paste -sd'|' $(SRC)/Kconfig.allowed))=" $(O)/.config > $(O)/.config.new || true
	@mv $(O)/.config.new $(O)/.config
$(O)/mm/%.o: $(SRC)/mm/%.c
	@mkdir -p $(O)/mm
	@echo "  CC      mm/$*.o"
	@sleep 0.25
	@$(CC) -c -O1 -o $@ $<
zImage: $(OBJS)
	@mkdir -p $(O)/arch/arm/boot
	@echo "  LD      vmlinux"
	@$(CROSS_COMPILE)ld -r -o $(O)/vmlinux $(OBJS)
	@cp $(O)/vmlinux $(O)/arch/arm/boot/zImage.tmp
	@mv $(O)/arch/arm/boot/zImage.tmp $(O)/arch/arm/boot/zImage
"""


def source_file(i: int) -> str:
    state = "clean"
    return (
        f"/* mm/f{i:02d}.c: part {i} of a small tree */\n"
        f'const char *part{i}_name = "mm part {i}";\n'
        + (f'const char *kernel_state = "{state}";\n' if i == 0 else "")
        + f"int part{i}(int x)\n{{\n\treturn x + {i};\n}}\n"
    )


def make_small_linux(root: Path, allowed: list[str]) -> Path:
    """Write the tree under root (a folder of its own) and return it."""
    (root / "mm").mkdir(parents=True)
    (root / "scripts" / "kconfig").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE)
    (root / "Kconfig.allowed").write_text("\n".join(sorted(set(allowed))) + "\n")
    for i in range(N_FILES):
        (root / "mm" / f"f{i:02d}.c").write_text(source_file(i))
    merge = root / "scripts" / "kconfig" / "merge_config.sh"
    merge.write_text(MERGE)
    merge.chmod(merge.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return root


def unified(rel: str, old: str, new: str, tmp: Path) -> str:
    """A -p1 unified diff of one file's change, as diff(1) writes it."""
    a, b = tmp / "a" / rel, tmp / "b" / rel
    a.parent.mkdir(parents=True, exist_ok=True)
    b.parent.mkdir(parents=True, exist_ok=True)
    a.write_text(old)
    b.write_text(new)
    out = subprocess.run(
        ["diff", "-u", "--label", f"a/{rel}", "--label", f"b/{rel}", str(a), str(b)],
        capture_output=True,
        text=True,
    ).stdout
    return out


def bug_patch(tmp: Path) -> str:
    """The 'canary': the image then carries BUG_MARK and the fake QEMU oopses."""
    old = source_file(0)
    return unified("mm/f00.c", old, old.replace('"clean"', f'"{BUG_MARK}"'), tmp / "bug")


def second_patch(tmp: Path, i: int = 5) -> str:
    """A harmless change to another file (a second patch, to kill between two)."""
    old = source_file(i)
    new = old.replace(f'"mm part {i}"', f'"mm part {i} (patched)"')
    return unified(f"mm/f{i:02d}.c", old, new, tmp / "second")
