"""Which domain the next frame uses: selection, cycling, blending — shared by hotkeys and the
inference thread. Only the inference thread touches the backend; it asks for the vector when the
version changed, so a switch is one in-place copy into the bound ``domain`` input."""

from __future__ import annotations

import threading
from typing import Dict, List, Optional, Tuple

import numpy as np



class DomainController:
    """Thread-safe current-domain state.

    Args:
        bundle: the opened bundle (vectors, blend).
        names: the domains to cycle through (default: all, then ``base``).
        start: initial domain name.
        blend: fixed blend weights (``--blend``), or None.
        switch_every: advance to the next domain every N frames (0: never).
    """

    def __init__(self, bundle, names: Optional[List[str]] = None, start: Optional[str] = None,
                 blend: Optional[Dict[str, float]] = None, switch_every: int = 0):
        self.bundle = bundle
        self.names = list(names or bundle.domain_names) or ["base"]
        for n in self.names + ([start] if start else []) + list(blend or {}):
            bundle.vector(n)  # unknown names fail now, listing the available ones
        self.index = self.names.index(start) if start in self.names else 0
        if start and start not in self.names:
            self.names.insert(0, start)
            self.index = 0
        self.fixed_blend = dict(blend) if blend else None
        self.blending, self.weight = False, 0.5
        self.switch_every = int(switch_every)
        self.version = 0
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        with self._lock:
            if self.fixed_blend:
                return "+".join(f"{n}:{w:g}" for n, w in self.fixed_blend.items())
            name = self.names[self.index]
            if self.blending and len(self.names) > 1:
                nxt = self.names[(self.index + 1) % len(self.names)]
                return f"{name}:{1 - self.weight:.2f}+{nxt}:{self.weight:.2f}"
            return name

    def vector(self) -> Tuple[np.ndarray, int]:
        """(current domain [D] float32, version)."""
        with self._lock:
            if self.fixed_blend:
                vec = self.bundle.blend(self.fixed_blend)
            elif self.blending and len(self.names) > 1:
                a, b = self.names[self.index], self.names[(self.index + 1) % len(self.names)]
                vec = self.bundle.blend({a: 1 - self.weight, b: self.weight})
            else:
                vec = self.bundle.vector(self.names[self.index])
            return vec, self.version

    def on_frame(self, frame_number: int) -> None:
        """Called per processed frame: cycles the domain every ``switch_every`` frames."""
        if self.switch_every and frame_number > 0 and frame_number % self.switch_every == 0:
            self.step(1)

    def step(self, delta: int) -> None:
        with self._lock:
            self.index = (self.index + delta) % len(self.names)
            self.version += 1

    def select(self, k: int) -> None:
        with self._lock:
            if 0 <= k < len(self.names):
                self.index = k
                self.version += 1

    def toggle_blend(self) -> None:
        with self._lock:
            self.blending = not self.blending
            self.version += 1

    def nudge(self, delta: float) -> None:
        with self._lock:
            self.weight = float(np.clip(self.weight + delta, 0.0, 1.0))
            self.version += 1

    def handle(self, action: Optional[str]) -> None:
        """Apply a hotkey action from :meth:`gandapt.runtime.display.Window.poll`."""
        if action == "next":
            self.step(1)
        elif action == "prev":
            self.step(-1)
        elif action and action.startswith("select:"):
            self.select(int(action.split(":", 1)[1]))
        elif action == "blend":
            self.toggle_blend()
        elif action == "blend+":
            self.nudge(0.1)
        elif action == "blend-":
            self.nudge(-0.1)

