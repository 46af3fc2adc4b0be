"""Prometheus metrics of one service, on its own registry (scrapers add the
job/instance labels, so the service name is not repeated in every series)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "im_messages_handled_total",
            "Messages consumed, by topic, body type and result (ok, dead_letter, error: left uncommitted).",
            ["topic", "type", "result"],
            registry=self.registry,
        )
        self.transient_retries = Counter(
            "im_transient_retries_total",
            "Handler attempts that met an outage (broker or database) and were retried.",
            ["topic"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "im_outcomes_total",
            "Decisions made by this service, by outcome (replays not counted).",
            ["outcome"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "im_dead_letters_total",
            "Messages sent to im.dlq, by source topic.",
            ["topic"],
            registry=self.registry,
        )
        self.redeliveries = Counter(
            "im_redeliveries_total",
            "Records this process was handed again (same consumer, partition and offset, or an earlier one).",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letter_failures = Counter(
            "im_dead_letter_failures_total",
            "Dead letters that failed for a non-transient reason, by stage (publish: retried with backoff; "
            "invalid_input_hook: the letter is out, the answer to the sender is not).",
            ["topic", "stage"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "im_handler_seconds",
            "Time to handle one message, retries included.",
            ["topic"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_records = Histogram(
            "im_batch_records",
            "Records per batch handled by a batch (send-path) subscriber.",
            ["topic"],
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.database_commands = Counter(
            "im_database_commands_total",
            "Database commands this process sent, by command and collection (bench.profile divides them by the messages).",
            ["command", "collection"],
            registry=self.registry,
        )
        self.database_seconds = Counter(
            "im_database_command_seconds_total",
            "Time from sending a database command to its answer, by command and collection.",
            ["command", "collection"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "im_consumer_lag",
            "Messages behind the log end, per subscribed partition.",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
