"""The benchmark harness: ``python -m benchmarks`` (``make bench``, ``make bench-quick``)."""
