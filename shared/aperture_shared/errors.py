"""Job failures, classified once. A worker raises these; the runtime turns them into a JobFailed event
whose error class drives the coordinator's retry policy."""

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
