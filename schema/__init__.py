"""Corridor's GraphQL schema (Strawberry): one module per feature.

Resolvers translate between GraphQL and the domain; business rules live in ``payments`` and the
transaction bodies in ``regions``.
"""
