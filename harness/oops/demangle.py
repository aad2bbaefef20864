"""Minimal Rust v0 symbol demangler for kernel frames (`_RNv...`).

Rust code in the kernel prints mangled names in call traces; titles and skip
rules need the readable path (`<rust_binder::process::Process>::update_ref`).
Generic arguments are dropped, as with syzkaller's "no params" demangling.
Anything unexpected returns the input unchanged.
"""

from __future__ import annotations

_BASIC = {
    "a": "i8",
    "b": "bool",
    "c": "char",
    "d": "f64",
    "e": "str",
    "f": "f32",
    "h": "u8",
    "i": "isize",
    "j": "usize",
    "l": "i32",
    "m": "u32",
    "n": "i128",
    "o": "u128",
    "s": "i16",
    "t": "u16",
    "u": "()",
    "v": "...",
    "x": "i64",
    "y": "u64",
    "z": "!",
    "p": "_",
}


class _Error(Exception):
    pass


class _Parser:
    def __init__(self, sym: str) -> None:
        self.s = sym
        self.pos = 0
        self.depth = 0

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        if not ch:
            raise _Error
        self.pos += 1
        return ch

    def base62(self) -> int:
        if self.peek() == "_":
            self.pos += 1
            return 0
        value = 0
        while True:
            ch = self.next()
            if ch == "_":
                return value + 1
            if ch.isdigit():
                digit = ord(ch) - 48
            elif ch.islower():
                digit = ord(ch) - 87
            elif ch.isupper():
                digit = ord(ch) - 29
            else:
                raise _Error
            value = value * 62 + digit

    def disambiguator(self) -> None:
        if self.peek() == "s":
            self.pos += 1
            self.base62()

    def ident(self) -> str:
        self.disambiguator()
        if self.peek() == "u":
            raise _Error  # punycode: leave the symbol alone
        start = self.pos
        while self.peek().isdigit():
            self.pos += 1
        if start == self.pos:
            raise _Error
        length = int(self.s[start : self.pos])
        if self.peek() == "_":
            self.pos += 1
        text = self.s[self.pos : self.pos + length]
        if len(text) != length:
            raise _Error
        self.pos += length
        return text

    def backref(self, parse):  # type: ignore[no-untyped-def]
        target = self.base62() + 2  # offsets count from after "_R"
        if target >= self.pos or self.depth > 64:
            raise _Error
        saved, self.pos = self.pos, target
        self.depth += 1
        try:
            return parse()
        finally:
            self.depth -= 1
            self.pos = saved

    def path(self) -> str:
        tag = self.next()
        if tag == "C":
            return self.ident()
        if tag == "N":
            ns = self.next()
            parent = self.path()
            name = self.ident()
            if ns.isupper():
                kind = {"C": "closure", "S": "shim"}.get(ns, ns)
                return f"{parent}::{{{kind}}}" if not name else f"{parent}::{{{kind}:{name}}}"
            return f"{parent}::{name}" if name else parent
        if tag == "M":
            self.disambiguator()
            self.path()
            return f"<{self.type()}>"
        if tag == "X":
            self.disambiguator()
            self.path()
            ty = self.type()
            return f"<{ty} as {self.path()}>"
        if tag == "Y":
            ty = self.type()
            return f"<{ty} as {self.path()}>"
        if tag == "I":
            base = self.path()
            while self.peek() != "E":
                self.generic_arg()
            self.pos += 1
            return base
        if tag == "B":
            return self.backref(self.path)
        raise _Error

    def generic_arg(self) -> None:
        if self.peek() == "L":
            self.pos += 1
            self.base62()
        elif self.peek() == "K":
            self.pos += 1
            self.const()
        else:
            self.type()

    def const(self) -> None:
        if self.peek() == "B":
            self.pos += 1
            self.backref(self.const)
            return
        self.type()
        if self.peek() == "p":
            self.pos += 1
            return
        if self.peek() == "n":
            self.pos += 1
        while self.next() != "_":
            pass

    def type(self) -> str:
        ch = self.peek()
        if ch in _BASIC:
            self.pos += 1
            return _BASIC[ch]
        if ch in "RQ":
            self.pos += 1
            if self.peek() == "L":
                self.pos += 1
                self.base62()
            return ("&" if ch == "R" else "&mut ") + self.type()
        if ch in "PO":
            self.pos += 1
            return ("*const " if ch == "P" else "*mut ") + self.type()
        if ch in "AS":
            self.pos += 1
            inner = self.type()
            if ch == "A":
                self.const()
            return f"[{inner}]"
        if ch == "T":
            self.pos += 1
            items = []
            while self.peek() != "E":
                items.append(self.type())
            self.pos += 1
            return "(" + ", ".join(items) + ")"
        if ch == "B":
            self.pos += 1
            return self.backref(self.type)
        if ch in "CNMXYI":
            return self.path()
        raise _Error


def demangle(name: str) -> str:
    """Return the demangled Rust v0 path for `_R...` names, else `name` itself."""
    if not name.startswith("_R"):
        return name
    parser = _Parser(name)
    parser.pos = 2
    while parser.peek().isdigit():  # encoding version
        parser.pos += 1
    try:
        return parser.path()
    except (_Error, ValueError, RecursionError):
        return name
