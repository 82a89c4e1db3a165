"""When a failed job attempt is worth another one, and how long to wait before it.

Only transient error classes (storage unreachable, a CASA timeout or crash) are retried, at most
`max_attempts` attempts in all, after an exponentially growing delay with jitter so that many jobs that
failed together (the object store was down) do not all come back in the same second. A job that ran out of
memory is tried again on the next larger worker class when one is deployed (memory_classes.py), and fails
for good on the largest. Everything else (bad input, an integrity failure, a bug) fails the job at once:
another attempt would fail the same way.
"""

import random
from dataclasses import dataclass
from datetime import timedelta

from aperture_contracts.enums import TRANSIENT_ERROR_CLASSES, ErrorClass


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay: timedelta = timedelta(0)
    why: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    jitter_fraction: float = 0.2

    def delay_before(self, next_attempt: int, rng: random.Random) -> timedelta:
        """The wait before attempt `next_attempt` (2, 3, ...): base · 2^(n-2), spread by ± the jitter
        fraction, never above the cap."""
        nominal = self.backoff_base_s * 2 ** max(0, next_attempt - 2)
        spread = 1.0 + rng.uniform(-self.jitter_fraction, self.jitter_fraction)
        return timedelta(seconds=min(self.backoff_cap_s, nominal * spread))

    def decide(
        self, error_class: ErrorClass, failed_attempt: int, rng: random.Random, *, larger_class: str | None = None
    ) -> RetryDecision:
        """larger_class: the worker class an out-of-memory job would move to (None: it ran on the largest)."""
        if error_class is ErrorClass.OUT_OF_MEMORY:
            if larger_class is None:
                return RetryDecision(False, why="it ran out of memory on the largest worker class")
            # Bounded without max_attempts: each such retry moves to a strictly larger class.
            return RetryDecision(True, self.delay_before(2, rng), why=f"out of memory: retry on {larger_class}")
        if error_class not in TRANSIENT_ERROR_CLASSES:
            return RetryDecision(False, why=f"{error_class.value} is not a transient failure")
        if failed_attempt >= self.max_attempts:
            return RetryDecision(False, why=f"all {self.max_attempts} attempts failed")
        return RetryDecision(True, self.delay_before(failed_attempt + 1, rng), why="transient failure")
