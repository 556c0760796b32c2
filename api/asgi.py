"""ASGI entry point for ``corridor serve`` and any ASGI server: ``api.asgi:app``."""

from api.app import create_app
from api.settings import from_env

app = create_app(from_env())
