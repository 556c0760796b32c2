"""Jurisdiction policies: one module per jurisdiction (eu, uk, us, sg, hk, cn) of pure rules
over plain data, the engine that asks every jurisdiction an operation involves
(``policies.engine.evaluate``), parameter declarations with cited defaults, sanctions list
parsers and name screening. Nothing here does I/O: ``regions.policy_gate`` gathers what the
rules need and ``regions.policy_store`` keeps the versions."""
