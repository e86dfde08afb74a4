"""Showing text from files (class names, paths, error messages) as plain text in Qt, never as markup."""

from __future__ import annotations

import html


def plain_tooltip(text: str) -> str:
    """A tooltip that shows ``text`` literally: Qt would render a tooltip that looks like HTML as HTML."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"
