"""Benchmarks of Corridor's money paths. They report figures; they are not pass/fail tests.

``uv run python -m bench all`` starts what it needs, runs every scenario and writes
``bench/results/<date>.json`` and PNG plots. ``--smoke`` runs tiny sizes (CI uses it).
"""
