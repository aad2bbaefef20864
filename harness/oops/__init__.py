"""Oops parser: console logs to structured, syzkaller-style crash reports."""

from .model import Frame, Report
from .parser import parse

__all__ = ["Frame", "Report", "parse"]
