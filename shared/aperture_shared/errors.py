"""Job failures, classified once. A worker raises these; the runtime turns them into a JobFailed event
whose error class drives the coordinator's retry policy.

Code that knows what went wrong raises the class that says so (CorruptInput where a table cannot be read,
NoVisibilities where a selection is empty, ...). What nobody caught by name (an exception out of CASA or a
library) is classified where it is caught, by `classify_unexpected`: one rule per class, in order, on the
exception's type and message; what no rule claims is a bug (internal).
"""

import re
from dataclasses import dataclass

from aperture_contracts.enums import ErrorClass


class JobError(Exception):
    """A failure with a class and a message for a person: what is wrong and what to do."""

    error_class: ErrorClass = ErrorClass.INTERNAL

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        # The largest resident memory the failing CASA step reached (MB), when one was measured: the run
        # ledger keeps it, so that an out-of-memory failure says how much more a retry would need.
        self.peak_memory_mb: float | None = None


class BadInput(JobError):
    error_class = ErrorClass.BAD_INPUT


class CorruptInput(BadInput):
    """Damaged data: another attempt reads the same bytes, so it is never retried."""

    error_class = ErrorClass.CORRUPT_INPUT


class NoVisibilities(BadInput):
    error_class = ErrorClass.NO_VISIBILITIES


class ProductTooLarge(BadInput):
    error_class = ErrorClass.PRODUCT_TOO_LARGE


class StorageError(JobError):
    error_class = ErrorClass.STORAGE


class IntegrityError(JobError):
    error_class = ErrorClass.INTEGRITY


class CasaTimeout(JobError):
    error_class = ErrorClass.TIMEOUT


class CasaOutOfMemory(JobError):
    error_class = ErrorClass.OUT_OF_MEMORY


class CasaCrashed(JobError):
    error_class = ErrorClass.CASA_CRASH


class JobCancelled(JobError):
    error_class = ErrorClass.CANCELLED


@dataclass(frozen=True)
class FailureRule:
    """An exception whose message matches `pattern` (or whose type is one of `types`) is of `error_class`;
    `advice` says what to do about it."""

    error_class: ErrorClass
    advice: str
    pattern: re.Pattern[str] | None = None
    types: tuple[type[BaseException], ...] = ()

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.types) or (self.pattern is not None and bool(self.pattern.search(str(error))))


# CASA's and casacore's own words for these failures (as its tasks and tables raise them).
FAILURE_RULES: tuple[FailureRule, ...] = (
    FailureRule(
        ErrorClass.OUT_OF_MEMORY, "run it on a worker with more memory (APERTURE_CASA_MEMORY_LIMIT_MB)",
        types=(MemoryError,), pattern=re.compile(r"std::bad_alloc|cannot allocate memory", re.IGNORECASE),
    ),
    FailureRule(
        ErrorClass.NO_VISIBILITIES,
        "the data selection matched no visibilities: check the field, spw and intent names against the data",
        pattern=re.compile(
            r"selection.{0,40}(empty|no rows|0 rows|zero rows)|no (valid|selected) (rows|data|visibilities)"
            r"|data selection.{0,40}(failed|error)|ended with 0 rows|MSSelectionNullSelection",
            re.IGNORECASE,
        ),
    ),
    FailureRule(
        ErrorClass.CORRUPT_INPUT,
        "the data are damaged (a table or file cut short): make or download them again and resubmit",
        pattern=re.compile(
            r"Table DataManager error|TableInvalidError|Invalid Table|BucketFile|table .{0,80} does not exist"
            r"|not a (valid )?table|unexpected end of (file|data)|file could not be opened|TiledStMan",
            re.IGNORECASE,
        ),
    ),
)


def classify_unexpected(error: BaseException, where: str) -> JobError:
    """The JobError for an exception no code caught by name: the first rule that claims it, else a bug.
    `where` names what raised it (a CASA step, a handler), for the message."""
    summary = f"{where} raised {type(error).__name__}: {str(error).strip()[:500]}"
    for rule in FAILURE_RULES:
        if rule.matches(error):
            classified = JobError(f"{summary}; {rule.advice}")
            classified.error_class = rule.error_class
            return classified
    return JobError(f"{summary} (a bug in Aperture or CASA; it is logged, please report it)")
