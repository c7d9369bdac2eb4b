"""``gandapt-run``: run a bundle on a camera, a video, an image folder or a latent walk, switching
domains live. A thin layer over :func:`gandapt.runtime.pipeline.run`; imports no torch (DESIGN §1).
"""

from __future__ import annotations

import json
from typing import Optional

import click

from gandapt.cli.errors import user_errors
from gandapt.cli.types import PSI

_CTX = {"help_option_names": ["-h", "--help"], "show_default": True}


def default_bundle() -> str:
    """The shipped bundle, or a one-line error saying what to pass."""
    from gandapt.errors import GandaptError
    from gandapt.samples import bundle

    try:
        return str(bundle())
    except GandaptError as err:
        raise GandaptError(f"no BUNDLE given and {err}; or pass a bundle folder written by "
                           "gandapt-export MODEL --out BUNDLE") from None


@click.command("run", context_settings=_CTX)
@click.argument("bundle", required=False, type=click.Path())
@click.option("--domain", default=None, help="Domain to start with [default: the bundle's first].")
@click.option("--blend", default=None, help="A fixed blend, e.g. sketch:0.7,ink:0.3.")
@click.option("--switch-every", type=click.IntRange(min=0), default=0, help="Cycle domains every N frames (0: never).")
@click.option("--source", default="webcam",
              help="webcam | camera index | VIDEO file | IMAGE_DIR | sample (the shipped clip) | latent (a walk in W).")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "tensorrt", "torch"]), default="auto")
@click.option("--output", type=click.Path(), default=None, help="Record to FILE.mp4 or a folder of PNGs (headless).")
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Stop after N frames.")
@click.option("--size", type=click.IntRange(min=16), default=256, help="Side of the shown/recorded image.")
@click.option("--crop", type=click.Choice(["face", "center", "none"]), default=None,
              help="How frames are cropped: a tracked face square, the centre square or the whole frame "
                   "[default: center for --source sample (framed like the training avatars), else face].")
@click.option("--window/--no-window", default=None, help="Force the window on or off [default: when a display exists and nothing is recorded].")
@click.option("--overlay/--no-overlay", default=True, help="Domain name, FPS and latency on the frame.")
@click.option("--stats", type=click.Path(), default=None, help="Write per-stage timings as JSON.")
@click.option("--truncation", type=PSI, default=0.7, help="Truncation psi of the latent walk.")
@click.option("--seed", type=int, default=0, help="Seed of the latent walk.")
@click.option("--loop", is_flag=True, help="Restart a video or image source at its end.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Inference threads.")
@click.option("--force", is_flag=True, help="Overwrite --output.")
@click.option("--domain-image", "domain_images", multiple=True, metavar="[NAME=]IMAGE",
              help="IMAGE or NAME=IMAGE: a new domain made from a reference image by the domain encoder, in one "
                   "forward pass (repeatable; the run starts on the first unless --domain says otherwise).")
@click.option("--domain-encoder", type=click.Path(), default=None,
              help="A DEGAN domain encoder exported with gandapt-train degan ... --onnx FILE.onnx, for the "
                   "bundle's base model [default: the shipped one, which fits bundles of the shipped avatar model].")
@click.option("--json", "as_json", is_flag=True, help="Print the run's stats as JSON on exit.")
def main(bundle: Optional[str], as_json: bool, **kwargs) -> None:
    """Run an exported bundle live and switch domains on the fly.

    \b
    Examples:
      gandapt-run --source sample --output out.mp4 --switch-every 15
      gandapt-run bundle/ --domain sketch                 # webcam, with a window
      gandapt-run bundle/ --source latent --frames 300 --output walk.mp4
      gandapt-run --source sample --domain-image warm=ref.png    # a domain from a picture (shipped encoder)
      gandapt-run bundle/ --domain-encoder enc.onnx --domain-image warm=ref.png   # your model's encoder

    \b
    Hotkeys in the window: n / right: next domain, p / left: previous, 1-9: select,
    b: blend on/off, + / -: blend weight, s: save frame, space: pause, q / Esc: quit.
    """
    from gandapt.runtime.pipeline import RunOptions, run

    import signal

    # SIGTERM ends a run like Ctrl-C, so the recording is finalised and stays playable.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with user_errors():
        summary = run(RunOptions(bundle=bundle or default_bundle(), **kwargs))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif summary.get("output"):
        click.echo(f"wrote {summary['output']}")


if __name__ == "__main__":
    main()
