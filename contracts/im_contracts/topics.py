"""Kafka topic names of the suite (DESIGN §4). Fixed: never rename."""

SEND_REQUESTED = "im.send.requested"
SEND_SCREENED = "im.send.screened"
SEND_ADMITTED = "im.send.admitted"
SEND_DELIVERED = "im.send.delivered"
SEND_REJECTED = "im.send.rejected"
BULK_REQUESTED = "im.bulk.requested"
BULK_COMPLETED = "im.bulk.completed"
MODERATION_COMMANDS = "im.moderation.commands"
MODERATION_EVENTS = "im.moderation.events"
INBOX_COMMANDS = "im.inbox.commands"
COLLABORATION_COMMANDS = "im.collaboration.commands"
COLLABORATION_EVENTS = "im.collaboration.events"
DIRECTORY_EVENTS = "im.directory.events"
QUOTA_EVENTS = "im.quota.events"
DLQ = "im.dlq"

INTERNAL_TOPICS = (SEND_SCREENED, SEND_ADMITTED)
"""Hops inside the send pipeline; their shape may change without notice to upstream teams."""

ALL_TOPICS = (
    SEND_REQUESTED,
    SEND_SCREENED,
    SEND_ADMITTED,
    SEND_DELIVERED,
    SEND_REJECTED,
    BULK_REQUESTED,
    BULK_COMPLETED,
    MODERATION_COMMANDS,
    MODERATION_EVENTS,
    INBOX_COMMANDS,
    COLLABORATION_COMMANDS,
    COLLABORATION_EVENTS,
    DIRECTORY_EVENTS,
    QUOTA_EVENTS,
    DLQ,
)

PUBLIC_TOPICS = tuple(topic for topic in ALL_TOPICS if topic not in INTERNAL_TOPICS)
