"""Crash report data model: what the rest of the harness consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Frame:
    """One call-trace entry, as printed by the kernel (and later symbolised)."""

    function: str
    offset: int | None = None
    size: int | None = None
    module: str | None = None
    reliable: bool = True
    address: str | None = None
    file: str | None = None
    line: int | None = None
    # Inlined callees reported by addr2line -i, innermost first:
    # [{"function": ..., "file": ..., "line": ...}, ...]
    inlined: list[dict[str, Any]] = field(default_factory=list)
    # arm64 (P)/(L)/(C) and Xen R/F/S/C/E markers, kept for humans.
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Frame:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def location(self) -> str:
        """Render `func+0xoff/0xsize [module]` the way the kernel prints it."""
        text = self.function
        if self.offset is not None:
            text += f"+{self.offset:#x}"
            if self.size is not None:
                text += f"/{self.size:#x}"
        if self.module:
            text += f" [{self.module}]"
        return text


@dataclass
class Report:
    """One crash report found in a console log (syzkaller-style title + fields)."""

    title: str
    alt_titles: list[str] = field(default_factory=list)
    type: str = "UNKNOWN"
    frame: str = ""
    corrupted: bool = False
    corrupted_reason: str = ""
    panicked: bool = False
    start: int = 0
    end: int = 0
    text: str = ""
    version: str | None = None
    cpu: int | None = None
    pid: int | None = None
    comm: str | None = None
    tainted: str | None = None
    hardware: str | None = None
    fault_address: str | None = None
    registers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    frames: list[Frame] = field(default_factory=list)
    arch: str | None = None
    # Symbolic faulting / link-register locations ("PC is at", "RIP:", "pc :").
    pc: str | None = None
    lr: str | None = None
    # Extra lines worth keeping, e.g. "(XEN) Hardware Dom0 crashed: ...".
    notes: list[str] = field(default_factory=list)
    # Reports with this title in the log (repeats merged into the first, see parse()),
    # and where the later ones start.
    count: int = 1
    repeats: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict with every field (frames as dicts)."""
        data = asdict(self)
        data["frames"] = [f.to_dict() for f in self.frames]
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """A Report read back from reports.json (keys it does not know, such as
        known_issue, are left out)."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in d.items() if k in known}
        data["frames"] = [Frame.from_dict(f) for f in d.get("frames") or []]
        return cls(**data)
