"""Fault tests (issue 7): the suite's delivery guarantees I1–I5 under SIGKILL,
SIGTERM, broker and database restarts and poison, on real infrastructure."""
