"""One module per scenario; each exposes ``name`` and ``run(env, plan) -> list[dict]``."""
