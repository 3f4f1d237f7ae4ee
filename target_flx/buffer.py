"""A stream's RECORD lines waiting to become a batch, with their input line numbers.

A line refused before decoding (see `StreamLoader.refuse`) keeps its place as an empty line: its number
holds the STATE after it back until its quarantine row commits with the batch it falls in.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from target_flx.batch import Reject


@dataclass
class Taken:
    """The lines a batch is made of, and the refused lines among them."""

    lines: list[bytes]
    numbers: list[int]
    nbytes: int  # of the lines as buffered
    rejects: list[Reject]


@dataclass
class LineBuffer:
    max_rows: int
    max_bytes: int
    lines: list[bytes] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    nbytes: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return len(self.lines) >= self.max_rows or self.nbytes >= self.max_bytes

    @property
    def first(self) -> int | None:
        """The first buffered input line (None: nothing is buffered)."""
        return self.numbers[0] if self.numbers else None

    def add(self, line: bytes, number: int) -> None:
        self.lines.append(line)
        self.numbers.append(number)
        self.nbytes += len(line)

    def extend(self, lines: list[bytes], first: int) -> int:
        """Take consecutive lines (numbered from `first`) up to the row bound; how many were taken, or 0
        when the byte bound falls among them (then add them one by one, checking `full`)."""
        take = lines[: max(1, self.max_rows - len(self.lines))]
        size = sum(map(len, take))
        if self.nbytes + size >= self.max_bytes:
            return 0
        self.lines += take
        self.numbers += range(first, first + len(take))
        self.nbytes += size
        return len(take)

    def hold(self, reject: Reject) -> None:
        """A line refused before decoding: it goes with the batch its line number falls in."""
        self.rejects.append(reject)
        self.add(b"", reject.line)

    def count_below(self, below: int | None) -> int:
        """How many buffered lines come before input line `below` (all of them for None)."""
        return len(self.lines) if below is None else bisect.bisect_left(self.numbers, below)

    def take(self, count: int) -> Taken:
        """The first `count` lines, out of the buffer; the refused ones are left out of `lines`."""
        lines, numbers = self.lines[:count], self.numbers[:count]
        if count == len(self.lines):
            self.lines, self.numbers = [], []
        else:
            del self.lines[:count], self.numbers[:count]
        nbytes = sum(map(len, lines))
        self.nbytes -= nbytes
        last = numbers[-1]
        rejects = [r for r in self.rejects if r.line <= last]
        if rejects:
            self.rejects = [r for r in self.rejects if r.line > last]
            keep = [i for i, line in enumerate(lines) if line]
            lines, numbers = [lines[i] for i in keep], [numbers[i] for i in keep]
        return Taken(lines, numbers, nbytes, rejects)
