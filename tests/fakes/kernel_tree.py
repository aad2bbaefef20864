"""A fake kernel tree: just enough Makefile and merge_config.sh for the build stage.

olddefconfig keeps only options listed in Kconfig.allowed, so a fragment that asks for an
option the 'kernel' cannot give is dropped, as real Kconfig drops unmet dependencies.
"""

from __future__ import annotations

import stat
from pathlib import Path

MAKEFILE = r"""VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 117
O ?= .
.PHONY: tinyconfig olddefconfig zImage broken
tinyconfig:
	@echo "  HOSTCC  scripts/kconfig/conf"
	@printf 'CONFIG_BASE=y\n# CONFIG_HIGHMEM is not set\n' > $(O)/.config
olddefconfig:
	@grep -E "^($$(paste -sd'|' $(CURDIR)/Kconfig.allowed))=" $(O)/.config \
		> $(O)/.config.new || true
	@mv $(O)/.config.new $(O)/.config
zImage:
	@mkdir -p $(O)/arch/arm/boot
	@for f in $(CURDIR)/mm/*.c; do echo "  CC      mm/$$(basename $$f .c).o"; done
	@if grep -q BREAK_BUILD $(CURDIR)/mm/*.c; then echo "mm/a.c:1: error: broken" >&2; exit 2; fi
	@cat $(CURDIR)/mm/*.c > $(O)/arch/arm/boot/zImage
	@echo "  LD      vmlinux"
	@cp $(O)/arch/arm/boot/zImage $(O)/vmlinux
"""

MERGE = r"""#!/bin/sh
# fake merge_config.sh -m -O DIR BASE FRAGMENTS...: later fragments win
shift; shift; out=$1; shift; base=$1; shift
for f in "$@"; do
  for opt in $(sed -n 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/\1/p' "$f"); do
    grep -v "^$opt=" "$out/.config" | grep -v "^# $opt is not set" > "$out/.config.tmp" || true
    mv "$out/.config.tmp" "$out/.config"
  done
  grep '^CONFIG_' "$f" >> "$out/.config"
done
"""


def make_fake_tree(root: Path, allowed: list[str]) -> Path:
    (root / "mm").mkdir(parents=True)
    (root / "scripts" / "kconfig").mkdir(parents=True)
    (root / "Makefile").write_text(MAKEFILE)
    (root / "Kconfig.allowed").write_text("\n".join(allowed) + "\n")
    (root / "mm" / "a.c").write_text("int a;\n")
    merge = root / "scripts" / "kconfig" / "merge_config.sh"
    merge.write_text(MERGE)
    merge.chmod(merge.stat().st_mode | stat.S_IXUSR)
    return root
