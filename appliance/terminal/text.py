"""Text for the terminal: other people's words made safe to print, measured in cells and wrapped."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Iterator

# Characters that reorder or hide text (Trojan Source and friends): shown as codes.
_INVISIBLE = frozenset(
    [0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)


def display_text(text: str, *, multiline: bool = False) -> str:
    """Text from other people made safe to print on a terminal.

    Control characters (C0, DEL, C1, so every escape sequence's introducer)
    are shown in caret or ``<U+XXXX>`` form instead of being sent to the
    terminal, as are bidirectional overrides. With ``multiline``, line
    breaks stay.
    """
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch == "\n" and multiline:
            out.append("\n")
        elif ch == "\t":
            out.append("  ")
        elif code < 0x20:
            out.append("^" + chr(code + 0x40))
        elif code == 0x7F:
            out.append("^?")
        elif 0x80 <= code < 0xA0 or code in _INVISIBLE:
            out.append(f"<U+{code:04X}>")
        elif 0xD800 <= code < 0xE000:
            out.append("\ufffd")  # a lone surrogate cannot be printed
        else:
            out.append(ch)
    return "".join(out)


def char_width(ch: str) -> int:
    """Terminal cells a character takes (0 for combining marks, 2 for wide ones)."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, with an ellipsis if it was longer."""
    if width <= 0:
        return ""
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = char_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """Greedy word wrap by terminal cells; long words are broken."""
    width = max(1, width)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0
        limit = width
        for word in _words(paragraph):
            w = text_width(word)
            if used + w <= limit:
                line, used = line + word, used + w
                continue
            if line.strip():
                lines.append(line.rstrip())
                limit = max(1, width - indent)
                line, used = "", 0
                word = word.lstrip(" ")
                w = text_width(word)
            while w > limit:
                part, pw = "", 0
                for ch in word:
                    if pw + char_width(ch) > limit:
                        break
                    part, pw = part + ch, pw + char_width(ch)
                if not part:
                    part, pw = word[0], char_width(word[0])
                lines.append(part)
                limit = max(1, width - indent)
                word, w = word[len(part):], w - pw
            line, used = word, w
        lines.append(line.rstrip())
    return lines


def _words(text: str) -> Iterator[str]:
    """Words with the spaces before them, so wrapping keeps spacing."""
    start = 0
    for i in range(1, len(text)):
        if text[i] == " " and text[i - 1] != " ":
            yield text[start:i]
            start = i
    if text:
        yield text[start:]


def format_time(ts_ms: int, now: float | None = None) -> str:
    t = time.localtime(ts_ms / 1000)
    today = time.localtime(now if now is not None else time.time())
    if (t.tm_year, t.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M", t)
    return time.strftime("%d %b %H:%M", t)
