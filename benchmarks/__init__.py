"""gandapt.benchmarks: latency, domain-switch, memory-scaling and backend-comparison benchmarks.

The command-line entry point is ``gandapt-bench`` (:mod:`gandapt.benchmarks.cli`).
"""
