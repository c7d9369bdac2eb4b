"""Command-line entry points: thin click layers over importable functions (DESIGN §1).

Nothing here imports torch: ``gandapt-run`` on an edge box goes through this package.
"""
