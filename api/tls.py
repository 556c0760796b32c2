"""TLS for ``corridor serve``: a certificate and its key, and no protocol older than TLS 1.3.

uvicorn builds the server's ``SSLContext`` itself, in every worker process; ``context_factory``
is the hook it calls to do so. The files are checked once before that, in the parent process,
so that a bad certificate or key is one clear error rather than a traceback per worker.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import uvicorn

tls_version_min = ssl.TLSVersion.TLSv1_3


class TlsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert: Path
    key: Path


def tls_files(cert: Path | None, key: Path | None) -> TlsFiles | None:
    """Both files or neither (plain HTTP); given files are checked now, before anything starts."""
    if cert is None and key is None:
        return None
    if key is None:
        raise TlsError("--tls-cert needs --tls-key (give both, or neither for plain HTTP)")
    if cert is None:
        raise TlsError("--tls-key needs --tls-cert (give both, or neither for plain HTTP)")
    files = TlsFiles(cert=cert, key=key)
    check(files)
    return files


def check(files: TlsFiles) -> None:
    """Raises ``TlsError`` unless the files are a PEM certificate and its unencrypted key."""
    for flag, path in (("--tls-cert", files.cert), ("--tls-key", files.key)):
        try:
            path.read_bytes()
        except OSError as exc:
            raise TlsError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A password callback that refuses, because OpenSSL would otherwise prompt on the
        # terminal for an encrypted key, and a server started by a supervisor would hang.
        context.load_cert_chain(files.cert, files.key, password=_encrypted_key(files.key))
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsError(f"--tls-key {files.key} is not the private key of "
                           f"--tls-cert {files.cert}") from None
        raise TlsError(f"--tls-cert {files.cert} and --tls-key {files.key} must be a PEM "
                       f"certificate and its PEM private key ({exc})") from None


def _encrypted_key(key: Path) -> Callable[[], str]:
    def refuse() -> str:
        raise TlsError(f"--tls-key {key} is encrypted; give an unencrypted key "
                       "(Corridor takes no pass phrase; protect the file with its permissions)")

    return refuse


def context_factory(config: uvicorn.Config,
                    default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its own context (certificate, key, ALPN), TLS 1.3 up.

    A module-level function, because uvicorn pickles its config into the processes it spawns
    for ``--workers``, and each of them calls this to build its context.
    """
    context = default()
    context.minimum_version = tls_version_min
    return context
