from collections.abc import Callable, Sequence
from typing import Any

KINDS: dict[str, int]
REASONS: dict[str, int]
SOURCES: dict[str, int]

def encode(
    messages: list[Any],
    plan: tuple[Sequence[Any], ...],
    fallback: Callable[[int, Any], bytes | None],
) -> bytes | tuple[int, int, int | ValueError]: ...
