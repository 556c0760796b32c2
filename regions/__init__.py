"""Region topology, routing and storage.

The only package that chooses a database: the router maps a tenant's home region to the engine of
the cluster that holds it, and every transaction runs through ``regions.txn.run_txn``.
"""
