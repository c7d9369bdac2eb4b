"""The live loop: capture → crop → encode (camera) or map (latent walk) → synthesize → output.

Three threads so a slow camera or display never stalls inference:

* **capture** iterates the source into a small queue; a live camera drops the oldest frame when
  inference falls behind (stale frames are useless), a file source blocks so every frame is used;
* **inference** crops and encodes a camera frame (or maps a latent), updates the bound ``domain``
  input in place when the controller's version changed, and synthesises;
* **output** (the main thread, where OpenCV's GUI must live) draws the overlay, shows/records,
  polls hotkeys and feeds actions back to the controller.

No session or engine is ever created after start-up; :func:`run` returns the per-stage timings.
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from gandapt.errors import GandaptError
from gandapt.io import check_writable
from gandapt.runtime.controller import DomainController
from gandapt.runtime.stats import StageStats

_END = object()  # end-of-stream marker on the queues


@dataclass(frozen=True)
class RunOptions:
    """Everything ``gandapt-run`` takes (see its --help)."""

    bundle: str
    domain: Optional[str] = None
    blend: Optional[str] = None
    switch_every: int = 0
    source: str = "webcam"
    backend: str = "auto"
    output: Optional[str] = None
    frames: Optional[int] = None
    size: int = 256
    crop: Optional[str] = None        # face | center | none; None: center for the sample clip, else face
    window: Optional[bool] = None     # None: open one when a display exists and nothing is recorded
    overlay: bool = True
    stats: Optional[str] = None
    truncation: float = 0.7
    seed: int = 0
    loop: bool = False
    threads: Optional[int] = None
    force: bool = False
    domain_images: Tuple[str, ...] = ()  # IMAGE or NAME=IMAGE: new domains made by the domain encoder
    domain_encoder: Optional[str] = None   # None: the shipped one (fits the shipped base model only)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """[1, 3, R, R] in [-1, 1] → uint8 RGB [R, R, 3]."""
    x = np.clip((img[0].transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255)
    return x.astype(np.uint8)


class _Inference:
    """The inference stage: owns every backend (only this thread touches them)."""

    def __init__(self, bundle, options: RunOptions, controller: DomainController, stats: StageStats):
        from gandapt.runtime.backends import open_backend

        self.bundle, self.options, self.controller, self.stats = bundle, options, controller, stats
        self.camera = options.source != "latent"
        self.synth = open_backend(options.backend, bundle, "synthesis", threads=options.threads)
        self.encoder = open_backend(options.backend, bundle, "encoder", threads=options.threads) if self.camera else None
        self.mapping = None if self.camera else open_backend(options.backend, bundle, "mapping", threads=options.threads)
        self.resolution = int(bundle.manifest.config["img_resolution"])
        self.version = -1
        self.has_domain = bundle.domain_size > 0
        if self.has_domain:
            vec, self.version = controller.vector()
            self.synth.bind("domain", vec[None])
        if self.mapping is not None:
            self.mapping.bind("truncation_psi", np.full([1], options.truncation, np.float32))
        self.instance_ids = self._ids()
        from gandapt.runtime.crop import FaceTracker

        self.tracker = FaceTracker() if options.crop == "face" else None

    def _ids(self):
        return tuple(b.instance_id for b in (self.synth, self.encoder, self.mapping) if b is not None)

    def process(self, frame) -> Dict[str, Any]:
        from gandapt.runtime.crop import crop, to_input

        result: Dict[str, Any] = {"index": frame.index, "t_capture": frame.t_capture}
        if self.camera:
            t = time.perf_counter()
            if self.tracker is not None:
                face, mode = self.tracker.crop(frame.image, size=self.resolution)
            else:
                face, mode = crop(frame.image, mode=self.options.crop, size=self.resolution)
            self.stats.add("crop", (time.perf_counter() - t) * 1e3)
            result["input"], result["crop_mode"] = face, mode
            t = time.perf_counter()
            ws = self.encoder.infer({"image": to_input(face)})["ws"]           # [1, num_ws, w_dim]
            self.stats.add("encode", (time.perf_counter() - t) * 1e3)
        else:
            t = time.perf_counter()
            ws = self.mapping.infer({"z": frame.z[None].astype(np.float32)})["ws"]
            self.stats.add("map", (time.perf_counter() - t) * 1e3)
        self.controller.on_frame(frame.index)
        if self.has_domain:
            vec, version = self.controller.vector()
            if version != self.version:  # a switch: one in-place copy into the bound input
                self.synth.update("domain", vec[None])
                self.version = version
                self.stats.count("switches")
        t = time.perf_counter()
        img = self.synth.infer({"ws": ws})["img"]                               # [1, 3, R, R]
        self.stats.add("synthesize", (time.perf_counter() - t) * 1e3)
        result["image"], result["label"] = _to_uint8(img), self.controller.label
        return result

    def close(self) -> None:
        for b in (self.synth, self.encoder, self.mapping):
            if b is not None:
                b.close()


def _compose(result: Dict[str, Any], size: int, overlay: bool, fps: float, latency_ms: float) -> np.ndarray:
    """The frame shown/recorded: [input crop | output] for the camera path, the output alone otherwise."""
    import cv2

    out = cv2.resize(result["image"], (size, size), interpolation=cv2.INTER_CUBIC)
    if "input" in result:
        inp = cv2.resize(result["input"], (size, size), interpolation=cv2.INTER_CUBIC)
        out = np.concatenate([inp, out], axis=1)
    if overlay:
        from gandapt.runtime.overlay import draw_overlay

        out = draw_overlay(out, [result["label"], f"{fps:5.1f} FPS  {latency_ms:6.1f} ms"])
    return out


def run(options: RunOptions, on_frame=None) -> Dict[str, Any]:
    """Run a bundle on a source until it ends, ``options.frames`` are done, or the user quits.

    Args:
        options: the run's settings.
        on_frame: called with each output frame (uint8 RGB) — tests and embedding applications.

    Returns:
        The stats summary (also written to ``options.stats``), plus ``instance_ids_constant``.
    """
    from gandapt.runtime.bundle import open_bundle, parse_blend
    from gandapt.runtime.sinks import check_output, open_sink
    from gandapt.runtime.sources import open_source

    if options.crop is None:  # the shipped clip is framed like the training avatars already
        options = dataclasses.replace(options, crop="center" if options.source == "sample" else "face")
    bundle = open_bundle(options.bundle)
    if options.source != "latent" and not bundle.has_graph("encoder"):
        raise GandaptError(f"bundle {bundle.path} has no encoder graph, so it cannot run on camera or video "
                           "frames; use --source latent, or re-export with --encoder")
    if options.blend and options.domain:
        raise GandaptError("give either --domain (a start domain to switch from) or --blend (one fixed mix), not both")
    start = options.domain
    if options.domain_images:  # without --domain-encoder the shipped one, if it fits the bundle's base model
        from gandapt.runtime.domain_image import add_image_domains

        made = add_image_domains(bundle, options.domain_encoder, options.domain_images)
        start = start or made[0]  # start on the first new domain unless --domain says otherwise
    elif options.domain_encoder:
        raise GandaptError("--domain-encoder makes domains from --domain-image files; give at least one "
                           "--domain-image")
    blend = parse_blend(options.blend) if options.blend else None
    controller = DomainController(bundle, start=start, blend=blend, switch_every=options.switch_every)
    camera = options.source != "latent"
    width = options.size * (2 if camera else 1)
    window = _want_window(options)
    sink = None
    if options.output:  # refuse a bad or existing output before any work
        check_output(options.output, options.force)
    if options.stats:
        check_writable(options.stats, options.force)
    stats = StageStats()
    z_dim = int(bundle.manifest.config["z_dim"])
    source = open_source(options.source, z_dim=z_dim, seed=options.seed, max_frames=options.frames, loop=options.loop)
    infer = _Inference(bundle, options, controller, stats)
    sink = open_sink(options.output, fps=source.fps or 15.0, size=(width, options.size), force=options.force)
    win = None
    if window:
        from gandapt.runtime.display import Window

        win = Window(scale=max(1, 512 // max(width, options.size)))
    frames_q: "queue.Queue" = queue.Queue(maxsize=2)
    results_q: "queue.Queue" = queue.Queue(maxsize=2)
    stop = threading.Event()
    errors: list = []

    def capture() -> None:
        try:
            it = iter(source)
            while not stop.is_set():
                t = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                stats.add("capture", (time.perf_counter() - t) * 1e3)
                stats.count("frames_in")
                if source.live:
                    while True:  # keep only the newest frames: drop the stalest one when full
                        try:
                            frames_q.put_nowait(frame)
                            break
                        except queue.Full:
                            try:
                                frames_q.get_nowait()
                                stats.count("dropped")
                            except queue.Empty:
                                pass
                else:
                    _put(frames_q, frame, stop)
        except Exception as err:  # noqa: BLE001 (reported by the main thread)
            errors.append(err)
        finally:
            _put(frames_q, _END, stop, force=True)

    def inference() -> None:
        try:
            while not stop.is_set():
                frame = frames_q.get()
                if frame is _END:
                    break
                _put(results_q, infer.process(frame), stop)
        except Exception as err:  # noqa: BLE001
            errors.append(err)
        finally:
            _put(results_q, _END, stop, force=True)

    threads = [threading.Thread(target=capture, name="gandapt-capture", daemon=True),
               threading.Thread(target=inference, name="gandapt-inference", daemon=True)]
    stats.start()
    for th in threads:
        th.start()
    done, last = 0, time.perf_counter()
    interrupted = False
    rss_first = None
    fps = 0.0
    try:
        while True:
            result = results_q.get()
            if result is _END:
                break
            t = time.perf_counter()
            fps = 0.9 * fps + 0.1 / max(t - last, 1e-6) if done else 0.0
            last = t
            frame = _compose(result, options.size, options.overlay, fps, (t - result["t_capture"]) * 1e3)
            if sink is not None:
                sink.write(frame)
            if win is not None:
                win.show(frame)
                action = win.poll()
                if action == "pause":  # hold this frame until pause/quit; hotkeys still work
                    action = _paused(win, controller)
                if action == "save":
                    print(f"saved {_save(frame, result['index'])}", file=sys.stderr)
                if action == "quit":
                    break
                controller.handle(action)
            if on_frame is not None:
                on_frame(frame)
            stats.add("output", (time.perf_counter() - t) * 1e3)
            stats.count("frames_out")
            done += 1
            if done == 1:
                rss_first = _rss_mb()
            if options.frames and done >= options.frames:
                break
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: finishing the recording", file=sys.stderr)
    finally:
        stop.set()
        stats.stop()
        for q in (frames_q, results_q):  # unblock producers waiting on a full queue
            _drain(q)
        for th in threads:
            th.join(timeout=5)
        if sink is not None:
            sink.close()
        if win is not None:
            win.close()
        source.close()
        constant = infer._ids() == infer.instance_ids
        infer.close()
    if errors:
        raise errors[0]
    if done == 0 and not interrupted:
        raise GandaptError(f"no frame came out of --source {options.source} (every frame was unreadable or the "
                           "source is empty; see the warnings above), so nothing was written")
    rss = {"first_frame": rss_first, "end": _rss_mb()}
    summary = {**stats.summary(), "rss_mb": rss, "instance_ids_constant": constant, "backend": infer.synth.name,
               "source": source.description, "output": str(sink.path) if sink is not None and sink.path else None}
    for line in stats.lines():
        print(line, file=sys.stderr)
    if options.stats:
        stats.write(options.stats, {"bundle": str(bundle.path), "backend": infer.synth.name,
                                    "source": source.description, "instance_ids_constant": constant, "rss_mb": rss})
    return summary


def _rss_mb() -> Optional[float]:
    """Resident memory of this process in MiB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os

        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _paused(win, controller: DomainController) -> Optional[str]:
    while True:
        action = win.poll(50)
        if action in ("pause", "quit"):
            return None if action == "pause" else action
        if action == "save":
            return action
        controller.handle(action)


def _save(frame: np.ndarray, index: int) -> str:
    import cv2

    from gandapt.io import atomic_write_bytes

    path = f"gandapt-frame-{index:06d}.png"
    ok, buf = cv2.imencode(".png", frame[:, :, ::-1])
    atomic_write_bytes(path, buf.tobytes(), force=True)
    return path


def _want_window(options: RunOptions) -> bool:
    from gandapt.runtime.display import display_available

    if options.window is False:
        return False
    ok, reason = display_available()
    if options.window and not ok:
        raise GandaptError(f"cannot open a window: {reason}; record instead with --output out.mp4")
    if options.window is None and not ok and not options.output:
        raise GandaptError(f"no display ({reason}) and nothing to record; pass --output out.mp4 (or a folder)")
    return ok if options.window is None and not options.output else bool(options.window)


def _put(q: "queue.Queue", item, stop: threading.Event, force: bool = False) -> None:
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                if force:
                    _drain(q)
                    continue
                return


def _drain(q: "queue.Queue") -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
