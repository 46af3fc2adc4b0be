"""Which failures are worth waiting out and which are the message's own fault."""

from aiokafka import errors as kafka_errors
from pymongo import errors as mongo_errors


class PermanentMessageError(Exception):
    """The message can never be handled (bad bytes, bad schema, too large)."""


# An idempotent producer that lost a batch (it expired while the broker was
# away) answers every later send with one of these: it has to be replaced.
BROKEN_PRODUCER_ERRORS = (
    kafka_errors.OutOfOrderSequenceNumber,
    kafka_errors.UnknownProducerId,
    kafka_errors.ProducerFenced,
)


def is_broken_producer(exc: BaseException) -> bool:
    return isinstance(exc, BROKEN_PRODUCER_ERRORS)


def is_transient(exc: BaseException) -> bool:
    """True for outages and timeouts that a retry can outlive (I4)."""
    if isinstance(exc, mongo_errors.DuplicateKeyError):
        return False
    if isinstance(
        exc,
        mongo_errors.AutoReconnect
        | mongo_errors.ConnectionFailure
        | mongo_errors.ServerSelectionTimeoutError
        | mongo_errors.NetworkTimeout
        | mongo_errors.ExecutionTimeout
        | mongo_errors.WaitQueueTimeoutError,
    ):
        return True
    if isinstance(exc, mongo_errors.PyMongoError) and exc.has_error_label("RetryableWriteError"):
        return True
    if isinstance(exc, kafka_errors.KafkaError):
        return bool(getattr(exc, "retriable", False)) or isinstance(
            exc,
            kafka_errors.KafkaConnectionError
            | kafka_errors.KafkaTimeoutError
            | kafka_errors.NodeNotReadyError
            | kafka_errors.ProducerClosed,
        )
    return isinstance(exc, ConnectionError | TimeoutError | OSError)
