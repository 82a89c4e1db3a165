"""The retry policy: transient failures back off exponentially with jitter, up to a bound (pure)."""

import random
from datetime import timedelta

import pytest
from aperture_contracts.enums import TRANSIENT_ERROR_CLASSES, ErrorClass
from aperture_coordinator.retries import RetryPolicy

POLICY = RetryPolicy(max_attempts=5, backoff_base_s=5.0, backoff_cap_s=30.0, jitter_fraction=0.2)


def test_delays_double_per_attempt_within_the_jitter() -> None:
    rng = random.Random(1)
    for next_attempt, nominal in ((2, 5.0), (3, 10.0), (4, 20.0)):
        for _ in range(50):
            delay = POLICY.delay_before(next_attempt, rng).total_seconds()
            assert nominal * 0.8 <= delay <= nominal * 1.2


def test_jitter_spreads_the_delays() -> None:
    rng = random.Random(2)
    delays = {POLICY.delay_before(3, rng) for _ in range(20)}
    assert len(delays) > 10


def test_delays_never_exceed_the_cap() -> None:
    rng = random.Random(3)
    assert all(POLICY.delay_before(n, rng) <= timedelta(seconds=30) for n in range(2, 30))


@pytest.mark.parametrize("error_class", sorted(TRANSIENT_ERROR_CLASSES))
def test_transient_failures_are_retried_until_the_last_attempt(error_class: ErrorClass) -> None:
    rng = random.Random(4)
    assert [POLICY.decide(error_class, attempt, rng).retry for attempt in range(1, 6)] == [True] * 4 + [False]
    assert POLICY.decide(error_class, 5, rng).why == "all 5 attempts failed"


# Out of memory is retried on a larger worker class only (test_memory_classes.py).
@pytest.mark.parametrize("error_class", sorted(set(ErrorClass) - TRANSIENT_ERROR_CLASSES - {ErrorClass.OUT_OF_MEMORY}))
def test_permanent_failures_are_never_retried(error_class: ErrorClass) -> None:
    decision = POLICY.decide(error_class, 1, random.Random(5))
    assert not decision.retry
    assert decision.why == f"{error_class.value} is not a transient failure"
