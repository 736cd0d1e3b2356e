"""Positions of transform-mode output mapped back to the TypeScript source (source map v3).

Transform mode reprints the code, so the runtime's ``<code>:LINE:COLUMN`` positions refer to
the printed JavaScript; SWC's source map for the same call (``sourceMap: true``) maps them
back. Lines are 1-based, columns 1-based (as the sandbox reports them); the wrapper's first
line is accounted for by the caller's ``head_out``/``head_in`` lengths.
"""

from __future__ import annotations

import bisect
import json
import re

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64 = {c: i for i, c in enumerate(_ALPHABET)}
_POSITION = re.compile(r"<code>:(\d+):(\d+)")
MAX_MAP_CHARS = 4 << 20


def _vlq(segment: str) -> list[int]:
    values: list[int] = []
    shift = value = 0
    for char in segment:
        digit = _B64[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        shift = value = 0
    return values


class SourceMap:
    """Generated (line, column) -> original (line, column), both 0-based inside."""

    def __init__(self, text: str) -> None:
        if len(text) > MAX_MAP_CHARS:
            raise ValueError("source map too large")
        mappings = json.loads(text).get("mappings", "")
        if not isinstance(mappings, str):
            raise ValueError("source map without mappings")
        self._lines: list[tuple[list[int], list[tuple[int, int]]]] = []
        src_line = src_col = 0
        for line in mappings.split(";"):
            columns: list[int] = []
            targets: list[tuple[int, int]] = []
            col = 0
            for segment in line.split(","):
                if not segment:
                    continue
                fields = _vlq(segment)
                col += fields[0]
                if len(fields) >= 4:
                    src_line += fields[2]
                    src_col += fields[3]
                    columns.append(col)
                    targets.append((src_line, src_col))
            self._lines.append((columns, targets))

    def original(self, line: int, column: int) -> tuple[int, int] | None:
        """The source position of generated ``(line, column)`` (0-based), if mapped."""
        if not 0 <= line < len(self._lines):
            return None
        columns, targets = self._lines[line]
        if not columns:
            return None
        i = bisect.bisect_right(columns, column) - 1
        return targets[max(i, 0)]


def remap(text: str, source_map: SourceMap, head_out: int, head_in: int) -> str:
    """``text`` with every ``<code>:LINE:COLUMN`` of the printed code moved to the source."""

    def move(match: re.Match[str]) -> str:
        line, column = int(match.group(1)), int(match.group(2))
        gen_col = column - 1 + (head_out if line == 1 else 0)
        found = source_map.original(line - 1, gen_col)
        if found is None:
            return match.group(0)
        src_line, src_col = found
        if src_line == 0:
            src_col = max(0, src_col - head_in)
        return f"<code>:{src_line + 1}:{src_col + 1}"

    return _POSITION.sub(move, text)
