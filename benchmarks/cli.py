"""``gandapt-bench``: measure the generator's backends and forms (arrives with issue #10)."""

from __future__ import annotations

from gandapt.cli.errors import pending_command

main = pending_command(
    "issue #10",
    "BUNDLE_OR_MODEL",
    help="""Benchmark latency, domain switching, memory scaling and backends.

    Arrives with issue #10. Planned form: gandapt-bench BUNDLE_OR_MODEL [OPTIONS], comparing
    alternatives side by side in one run (torch, onnxruntime, TensorRT; the reference, decomposed,
    grouped and plugin forms of the modulated convolution) and writing JSON with the device,
    versions, config, p50/p90/p99 latency, FPS, memory and the ratios between them.
    """,
)

if __name__ == "__main__":
    main()
