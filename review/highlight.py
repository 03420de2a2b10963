"""Highlighting claims in hostile text, safely. Pure.

The text is a seller's: every piece of it is escaped first, and only our own `<mark>` tags are added
around the escaped pieces, so nothing in the title can open or close a tag. The claims were read from
the *cleaned* text (matching.normalise.clean: NFKC, Thai digits to Arabic, invisible characters
removed, spaces collapsed); each original character is cleaned on its own and mapped back, so a claim
written `มอก.๑๖๖-๒๕๔๙` or with a zero-width space inside is still found and marked in the original.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape

from matching.normalise import clean

_CHAR: dict[str, str] = {}  # clean() of one character: the same few hundred characters, over and over


def _clean_char(ch: str) -> str:
    c = _CHAR.get(ch)
    if c is None:
        c = clean(ch)
        if len(_CHAR) < 20_000:  # hostile text may use any code point: keep the table bounded
            _CHAR[ch] = c
    return c


def _mapped(text: str) -> tuple[str, list[int]]:
    """The text cleaned character by character (spaces kept), and for each output character the
    index of the original character it came from."""
    out: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        c = ch if ch.isspace() else _clean_char(ch)
        if len(c) == 1:
            out.append(c)
            idx.append(i)
            continue
        for x in c:
            out.append(x)
            idx.append(i)
    return "".join(out), idx


def spans(text: str, needles: Iterable[str]) -> list[tuple[int, int]]:
    """Where the needles occur in `text` (original indexes), merged and sorted."""
    if not text:
        return []
    mapped, idx = _mapped(text)
    found: list[tuple[int, int]] = []
    for n in needles:
        n = clean(n)
        if not n:
            continue
        rx = re.compile(r"\s+".join(re.escape(p) for p in n.split(" ")), re.IGNORECASE)
        for m in rx.finditer(mapped):
            if m.end() > m.start():
                found.append((idx[m.start()], idx[m.end() - 1] + 1))
    found.sort()
    merged: list[tuple[int, int]] = []
    for a, b in found:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def highlight(text: str | None, needles: Iterable[str], cls: str = "claim") -> Markup:
    """`text` escaped, with each needle wrapped in <mark class="cls">."""
    text = text or ""
    needles = [n for n in needles if n]
    if not needles:
        return escape(text)
    parts: list[str] = []
    pos = 0
    for a, b in spans(text, needles):
        parts.append(str(escape(text[pos:a])))
        parts.append(f'<mark class="{escape(cls)}">{escape(text[a:b])}</mark>')
        pos = b
    parts.append(str(escape(text[pos:])))
    return Markup("".join(parts))
