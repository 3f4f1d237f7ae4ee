"""A stream's input lines between its buffer and the database: what is not known committed yet.

A `Segment` is opened for a batch's lines *before* anything is done with them and leaves only when the
batch's transaction has committed, so an exception at any point (a bad record, a refused COMMIT, a lost
connection, a signal) leaves the segment behind, and with it the floor that keeps later STATEs back.
"""

from __future__ import annotations

import concurrent.futures
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

R = TypeVar("R")


@dataclass
class Segment(Generic[R]):
    first_line: int
    last_line: int
    nbytes: int
    future: concurrent.futures.Future[R] | None = None  # None: not sent (being built, or refused)


class CommitPipeline(Generic[R]):
    def __init__(self, max_in_flight: int) -> None:
        self.max_in_flight = max_in_flight
        self._segments: deque[Segment[R]] = deque()

    def open(self, first_line: int, last_line: int, nbytes: int) -> Segment[R]:
        segment: Segment[R] = Segment(first_line, last_line, nbytes)
        self._segments.append(segment)
        return segment

    def split(self, segment: Segment[R], at_line: int) -> Segment[R]:
        """Lines from `at_line` on leave `segment` for a new, unsent segment after it (which it returns)."""
        tail: Segment[R] = Segment(at_line, segment.last_line, 0)
        segment.last_line = at_line - 1
        self._segments.insert(self._segments.index(segment) + 1, tail)
        return tail

    def discard(self, segment: Segment[R]) -> None:
        """A segment with no lines left in it (everything moved to the tail by `split`)."""
        assert segment.future is None
        self._segments.remove(segment)

    def floor(self) -> int | None:
        """The first input line not known committed, or None."""
        return self._segments[0].first_line if self._segments else None

    @property
    def in_flight(self) -> int:
        return sum(1 for s in self._segments if s.future is not None and not s.future.done())

    @property
    def sent(self) -> bool:
        return any(s.future is not None for s in self._segments)

    def settled(self, *, wait: bool) -> Iterator[tuple[Segment[R], R]]:
        """Committed batches, oldest first, each leaving the pipeline once its result is in hand.

        A failed batch raises its error and stays; an unsent segment at the head stops the iteration."""
        while self._segments:
            head = self._segments[0]
            if head.future is None or not (wait or head.future.done()):
                return
            result = head.future.result()
            self._segments.popleft()
            yield head, result

    def wait_for_room(self) -> Iterator[tuple[Segment[R], R]]:
        """Settle the oldest batches until no more than `max_in_flight` are in the database."""
        while self.in_flight > self.max_in_flight:
            head = self._segments[0]
            if head.future is None:
                return
            result = head.future.result()
            self._segments.popleft()
            yield head, result
