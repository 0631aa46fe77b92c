"""How a spreadsheet saved the file: its encoding, Excel's `sep=` line, and the delimiter.

Excel writes `;` where the decimal separator is a comma (much of Europe), tab for "Unicode Text"
(UTF-16), and may start the file with `sep=;` to say so; Entra ID and Google Admin write UTF-8
with commas. The delimiter is read off the header line: whichever of `,` `;` tab it holds most.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

DELIMITERS = (",", ";", "\t")
_SEP_LINE = re.compile(r'"?sep=(?P<char>.)"?[,;\t]*\r?\n?', re.IGNORECASE)


class NotText(ValueError):
    """The bytes are not text this reader knows (UTF-8 or UTF-16 with its byte-order mark)."""

    def __init__(self, line: int) -> None:
        super().__init__("the file is not UTF-8 text; save it as CSV UTF-8")
        self.line = line


def decode(data: bytes) -> str:
    """The file's text: UTF-16 when it starts with that byte-order mark (Excel's "Unicode Text"), else UTF-8."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise NotText(data[: error.start].count(b"\n\x00") + 1) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise NotText(data[: error.start].count(b"\n") + 1) from None


@dataclass(frozen=True, slots=True)
class Dialect:
    """The delimiter, and how many lines went before the CSV proper (Excel's `sep=` line)."""

    delimiter: str
    skipped_lines: int


def sniff(text: str) -> tuple[str, Dialect]:
    """The text without a leading `sep=` line, and the dialect it is written in."""
    text = text.removeprefix("\ufeff")
    declared = _SEP_LINE.match(text)
    if declared is not None and declared.group("char") in (*DELIMITERS, "|"):
        return text[declared.end() :], Dialect(declared.group("char"), 1)
    header = next((line for line in text.splitlines() if line.strip()), "")
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # ties: the first, a comma
    return text, Dialect(best if counts[best] else ",", 0)
