"""Throughput, latency and memory benchmarks of a node's JSON-RPC (``bench/tps.py``)."""
