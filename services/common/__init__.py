"""Runtime shared by every service: settings, logging, MongoDB, idempotency,
dead letters, seller access, HTTP health and metrics. Written once, used five times."""
