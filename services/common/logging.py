"""structlog JSON logs; every line names the service, and consumer lines carry
topic, partition, offset, command_id and correlation_id (bound per message)."""

import logging
import sys

import structlog

_configured = False


def configure_logging(service: str, level: str = "INFO") -> None:
    global _configured
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            # Drop a line below the level before any processor formats it: the
            # send path writes a DEBUG line per record.
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Library logs (aiokafka, faststream, uvicorn) become JSON lines too.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    # No caller, thread or process lookups per record: the JSON lines carry none of
    # them (the logging module's documented optimisations; findCaller walks the stack).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "pymongo", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)
    _configured = True


def get_logger(name: str = "im") -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
