"""Jurisdiction policy modules (eu, uk, us, sg, cn, ...), the policy engine and its versioned
parameter store. Not built yet: the foundation routes every tenant to the region that serves its
jurisdiction (``regions.tenants.choose_region``); the decision functions come with the
jurisdiction-policies work.
"""
