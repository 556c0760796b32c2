"""Corridor's domain core: money, currencies, identifiers and the double-entry ledger.

Pure Python with no I/O: nothing here imports a web framework, a database driver or a broker.
Storage maps onto these types from ``regions/``.
"""
