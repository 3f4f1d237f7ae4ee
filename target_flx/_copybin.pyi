from collections.abc import Callable, Sequence
from typing import Any

def encode(
    messages: list[Any],
    plan: tuple[Sequence[Any], ...],
    fallback: Callable[[int, Any], bytes | None],
) -> bytes | tuple[int, int, str]: ...
