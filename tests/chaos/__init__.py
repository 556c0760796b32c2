"""The bank test under faults (in the spirit of Jepsen's bank workload), over the real HTTP
GraphQL API: ``python -m tests.chaos`` (``__main__``), and the short CI version in
``tests/integration/test_chaos_bank.py``. How to run it and what it checks:
``docs/reliability.md``."""
