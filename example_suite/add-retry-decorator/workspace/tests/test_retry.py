import pytest

from errors import PermanentError, TransientError
from retry_utils import retry


class FakeSleep:
    """Records requested delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Flaky:
    """A callable that raises ``error`` on its first ``failures`` calls, then returns "ok"."""

    def __init__(self, failures: int, error: type[Exception] = TransientError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "ok"


def test_success_on_first_try_does_not_sleep() -> None:
    sleep = FakeSleep()
    fetch = Flaky(0)
    assert retry(attempts=3, sleep=sleep)(fetch)() == "ok"
    assert fetch.calls == 1
    assert sleep.delays == []


def test_retries_with_exponential_backoff() -> None:
    sleep = FakeSleep()
    fetch = Flaky(2)
    wrapped = retry(attempts=3, exceptions=(TransientError,), base_delay=0.1, sleep=sleep)(fetch)
    assert wrapped() == "ok"
    assert fetch.calls == 3
    assert sleep.delays == pytest.approx([0.1, 0.2])


def test_gives_up_after_the_last_attempt() -> None:
    sleep = FakeSleep()
    fetch = Flaky(10)
    wrapped = retry(attempts=4, exceptions=(TransientError,), base_delay=1, sleep=sleep)(fetch)
    with pytest.raises(TransientError, match="failure 4"):
        wrapped()
    assert fetch.calls == 4
    assert sleep.delays == [1, 2, 4]  # no sleep after the final failure


def test_other_exceptions_are_not_retried() -> None:
    sleep = FakeSleep()
    fetch = Flaky(1, error=PermanentError)
    wrapped = retry(attempts=3, exceptions=(TransientError,), sleep=sleep)(fetch)
    with pytest.raises(PermanentError):
        wrapped()
    assert fetch.calls == 1
    assert sleep.delays == []


def test_default_retries_any_exception_three_times() -> None:
    sleep = FakeSleep()
    fetch = Flaky(2, error=ValueError)
    assert retry(sleep=sleep)(fetch)() == "ok"
    assert sleep.delays == pytest.approx([0.5, 1.0])


def test_passes_arguments_and_keeps_metadata() -> None:
    @retry(attempts=2, sleep=FakeSleep())
    def add(a: int, b: int = 0) -> int:
        """Add two numbers."""
        return a + b

    assert add(2, b=3) == 5
    assert add.__name__ == "add"
    assert add.__doc__ == "Add two numbers."


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        retry(attempts=0)
