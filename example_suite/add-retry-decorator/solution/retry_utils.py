"""Retry a flaky call with exponential backoff."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def retry(
    attempts: int = 3,
    exceptions: tuple[type[BaseException], ...] = (Exception,),
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Call the decorated function up to ``attempts`` times.

    Only ``exceptions`` trigger a retry; before retry ``n`` (counting from 0)
    the wrapper waits ``base_delay * 2**n`` seconds. When every attempt fails,
    the last exception is re-raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except exceptions:
                    if attempt == attempts - 1:
                        raise
                    sleep(base_delay * 2**attempt)
            raise AssertionError("unreachable")

        return wrapper

    return decorator
