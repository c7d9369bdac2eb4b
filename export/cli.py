"""``gandapt-export``: turn model.pt into a deployable bundle (arrives with issue #7)."""

from __future__ import annotations

from gandapt.cli.errors import pending_command

main = pending_command(
    "issue #7",
    "MODEL OUT_DIR",
    help="""Export model.pt to a bundle directory the runtime can load.

    Arrives with issue #7. Planned form: gandapt-export MODEL.pt OUT_DIR, writing mapping.onnx
    (z to ws), synthesis.onnx (ws and domain to image), an optional encoder.onnx,
    domains.safetensors and manifest.json. Every graph is re-run in onnxruntime against torch
    before the bundle is written. Options will add a TensorRT engine (--engine, fp32 or fp16,
    with or without the gandapt::ModulatedConv2d plugin) and a Triton Inference Server model
    repository (--triton-repo).
    """,
)

if __name__ == "__main__":
    main()
