"""gandapt.plugins_trt: the ``gandapt::ModulatedConv2d`` TensorRT plugin (kernel and registration).

TensorRT, triton and torch are imported lazily by the functions that need them (extras ``[trt]``,
``[kernels]``): importing this package costs nothing.
"""

from __future__ import annotations

from typing import Iterable, Optional

from gandapt.errors import GandaptError

PLUGINS = {"gandapt::ModulatedConv2d": "gandapt.plugins_trt.modulated_conv"}


def check_plugins(plugins: Iterable[str]) -> None:
    """Refuse plugin nodes this library does not provide, or provides at another version.

    Args:
        plugins: ``"domain::op"`` or ``"domain::op@version"`` entries (from a graph or an engine's metadata).

    Raises:
        GandaptError: an unknown plugin, or a version other than the library's.
    """
    from gandapt.plugins_trt.modulated_conv.spec import check_version

    for entry in plugins:
        name, _, version = entry.partition("@")
        if name not in PLUGINS:
            raise GandaptError(f"the graph has a {name} node, which gandapt does not provide; known plugins: "
                               f"{', '.join(PLUGINS)}")
        if version:
            check_version(version)


def register_plugins(plugins: Optional[Iterable[str]] = None) -> None:
    """Register gandapt's plugins with TensorRT's global plugin registry (``tensorrt.plugin``).

    Args:
        plugins: the entries the graph or engine needs (see :func:`check_plugins`), checked first; None
            registers every plugin.

    Raises:
        GandaptError: unknown plugin or version mismatch; TensorRT missing or too old.
    """
    if plugins is not None:
        check_plugins(plugins)
    from gandapt.plugins_trt.modulated_conv.trt_plugin import register

    register()
