"""``gandapt-run``: run a bundle on a camera, a video or a latent walk (arrives with issue #9).

Imports no torch (DESIGN §1).
"""

from __future__ import annotations

from gandapt.cli.errors import pending_command

main = pending_command(
    "issue #9",
    "BUNDLE",
    help="""Run an exported bundle live and switch domains on the fly.

    Arrives with issue #9. Planned form: gandapt-run BUNDLE [OPTIONS], reading frames from a
    webcam, a video file, an image folder or a latent walk, on onnxruntime (CPU, CUDA or the
    TensorRT execution provider), TensorRT or torch. Output goes to an OpenCV window with hotkeys
    (next or previous domain, blend, save frame) or, headless, to a video or an image folder;
    per-stage timings are printed on exit. Switching a domain never rebuilds the session.
    """,
)

if __name__ == "__main__":
    main()
