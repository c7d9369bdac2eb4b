"""Single-domain adapters that train a slice of the runtime domain layout of a frozen generator.

Each method here is exact in the layout (reference/methods.md §11.4), so the trainable parameters
*are* layout entries: training runs the same ``G.synthesis(ws, domain)`` the exported graph runs,
and the domain written to the pack is the trained vector itself.
"""
