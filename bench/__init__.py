"""Benchmarks of the running suite against a raw Kafka relay (``make bench``).

See bench/README.md for what is measured and how to read the results."""
