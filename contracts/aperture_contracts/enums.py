"""States and kinds shared by the coordinator, the workers and the clients."""

from enum import StrEnum


class Stage(StrEnum):
    """A processing stage; each has its own worker service and work queue."""

    INGEST = "ingest"
    CALIBRATION = "calibration"
    FINDCONT = "findcont"
    IMAGING = "imaging"
    PREVIEWS = "previews"
    FOOTPRINT = "footprint"
    EXPORT = "export"


class ImagingKind(StrEnum):
    """What an imaging-stage job makes (continuum subtraction runs in the imaging service)."""

    CONTSUB = "contsub"  # uv-plane continuum subtraction of one target
    MFS = "mfs"  # continuum image of one spw
    CONT = "cont"  # aggregate continuum over all spws of a target
    CUBE = "cube"  # line cube of one spw (or, when it was planned in channel chunks, the join of them)
    CUBE_CHUNK = "cube_chunk"  # one contiguous channel range of a cube: an intermediate, joined by the cube job


class JobState(StrEnum):
    """A job's life. Terminal: succeeded, failed, cancelled, superseded."""

    PLANNED = "planned"  # inputs not ready yet
    WAITING_FOR_SERVICE = "waiting_for_service"  # inputs ready, but the stage's service is not deployed
    RETRY_WAIT = "retry_wait"  # a transient failure; re-dispatched with a new attempt after a backoff
    DISPATCHED = "dispatched"  # a job message is in the outbox or on the queue
    RUNNING = "running"  # a worker has started it
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"  # replaced by a re-run of the MOUS

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATES


TERMINAL_JOB_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.SUPERSEDED}
)


class MousState(StrEnum):
    """An MOUS's state, derived from its jobs'."""

    RECEIVED = "received"  # submitted; its ingest job is planned or dispatched
    INGESTING = "ingesting"
    PROCESSING = "processing"  # jobs after ingest are queued or running
    WAITING_FOR_SERVICE = "waiting_for_service"  # all it can do is done; the rest needs stages not deployed
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Recipe(StrEnum):
    """What a run of an MOUS makes."""

    FULL = "full"  # everything: continuum images, continuum subtraction and cubes, previews, footprints, export
    # Continuum only (per-spw mfs and the aggregate, with previews and the export): a campaign's first pass
    # over its holdings, or a test's, at a fraction of the cost (no continuum subtraction, no cubes).
    QUICKLOOK = "quicklook"


class MemoryClass(StrEnum):
    """A size of worker: each stage has one queue per class, and workers of a class take only its jobs.

    Listed from the smallest: the coordinator sends a job to the smallest deployed class whose memory fits
    its estimate, and after an attempt that ran out of memory once more to the next larger one.
    """

    STANDARD = "standard"
    LARGE = "large"

    def larger(self) -> "MemoryClass | None":
        order = list(MemoryClass)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


class ErrorClass(StrEnum):
    """Why a job failed. The coordinator's retry policy is keyed on it."""

    BAD_INPUT = "bad_input"  # the data cannot be processed as given (not an MS, no DATA column, ...)
    CORRUPT_INPUT = "corrupt_input"  # the data are damaged: a table that cannot be read, a truncated file
    NO_VISIBILITIES = "no_visibilities"  # nothing to work on: an empty MS, a selection that matches no rows
    PRODUCT_TOO_LARGE = "product_too_large"  # the product stays over the hard size limit after mitigation
    STORAGE = "storage"  # object storage unreachable or an object missing
    INTEGRITY = "integrity"  # a checksum mismatch on read
    TIMEOUT = "timeout"  # CASA ran past its time limit
    OUT_OF_MEMORY = "out_of_memory"  # CASA went past its memory limit
    CASA_CRASH = "casa_crash"  # the CASA process died (signal, core dump)
    POISON = "poison"  # a message that cannot be decoded or keeps killing workers
    CANCELLED = "cancelled"
    INTERNAL = "internal"  # a bug in Aperture


# The classes worth another attempt; the rest fail the job at once.
TRANSIENT_ERROR_CLASSES = frozenset({ErrorClass.STORAGE, ErrorClass.TIMEOUT, ErrorClass.CASA_CRASH})
