"""Showing text from files (class names, paths, error messages) as plain text in Qt, never as markup."""

from __future__ import annotations

import html
import os
from pathlib import Path

ERROR_STYLE = "QLabel { color: #b00020; }"  # a label that reports what went wrong


def plain_tooltip(text: str) -> str:
    """A tooltip that shows ``text`` literally: Qt would render a tooltip that looks like HTML as HTML."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"


def display_path(text: str) -> str:
    """A path (or a message holding one) fit for a screen: undecodable bytes of a non-UTF-8 name
    (kept in ``str`` as surrogate escapes) shown as U+FFFD instead of being dropped by Qt."""
    return os.fsencode(text).decode("utf-8", "replace") if any("\udc80" <= c <= "\udcff" for c in text) else text


def display_name(path: str) -> str:
    return display_path(Path(path).name)


def short_name(path: str, limit: int = 40) -> str:
    """A file name for a status line: middle-elided past ``limit`` characters, so the line is never cut."""
    name = display_name(path)
    if len(name) <= limit:
        return name
    keep = (limit - 1) // 2
    return f"{name[:keep]}…{name[-keep:]}"
