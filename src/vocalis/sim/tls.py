"""A self-signed certificate for the loopback addresses, so local servers can speak TLS.

Why it exists: some clients only speak ``wss://`` (google-genai's ``AsyncLive.connect`` turns
any base URL into ``wss``), so a local test server must offer TLS, and a user must be able to
trust it without a CA. On first use :func:`ensure_local_certificate` writes one certificate
valid for ``127.0.0.1``, ``::1`` and ``localhost`` into a per-user cache folder; every later
run reuses it, so the trust line a user pasted once keeps working. :func:`trust_instructions`
prints exactly what to paste. Both dialects of ``vocalis sim-server`` use this module.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "localhost-cert.pem"
KEY_FILE = "localhost-key.pem"
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_IPS = ("127.0.0.1", "::1")
VALID_DAYS = 825  # the longest validity Apple clients accept for a TLS server certificate
RENEW_BEFORE = datetime.timedelta(days=7)


class CertificateError(Exception):
    """A certificate or key file that cannot be used (missing, unreadable, not a pair)."""


@dataclass(frozen=True, slots=True)
class LocalCertificate:
    """A PEM certificate and its private key on disk."""

    cert_path: Path
    key_path: Path


def default_certificate_dir() -> Path:
    """The per-user cache folder for the generated certificate (XDG on Linux)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "vocalis" / "tls"


def _still_valid(cert_path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return False
    now = datetime.datetime.now(datetime.UTC)
    return cert.not_valid_after_utc - RENEW_BEFORE > now


def _generate(cert_path: Path, key_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vocalis local sim-server")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in LOOPBACK_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in LOOPBACK_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        # A self-signed leaf that is its own trust anchor: CA:TRUE lets OpenSSL accept it from
        # SSL_CERT_FILE / cafile; the key usages keep it a server certificate only.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key is written owner-only and both files replace atomically, so two servers starting
    # at once never read a half-written pair.
    for path, data, mode in (
        (key_path, key_pem, 0o600),
        (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644),
    ):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)


def ensure_local_certificate(directory: Path | None = None) -> LocalCertificate:
    """The loopback certificate in ``directory`` (default: the user cache), made if needed.

    A missing, unreadable or nearly expired certificate is (re)generated; a valid one is reused.
    """
    folder = directory if directory is not None else default_certificate_dir()
    folder.mkdir(parents=True, exist_ok=True)
    cert = LocalCertificate(folder / CERT_FILE, folder / KEY_FILE)
    if not (cert.key_path.is_file() and _still_valid(cert.cert_path)):
        _generate(cert.cert_path, cert.key_path)
    return cert


def load_certificate(cert_path: str | Path, key_path: str | Path) -> LocalCertificate:
    """A user-supplied certificate and key (``--cert/--key``), checked to load as a pair."""
    cert = LocalCertificate(Path(cert_path), Path(key_path))
    server_ssl_context(cert)
    return cert


def server_ssl_context(cert: LocalCertificate) -> ssl.SSLContext:
    """A TLS server context serving ``cert`` (raises :class:`CertificateError` if unusable)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert.cert_path, cert.key_path)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(
            f"cannot use certificate {cert.cert_path} with key {cert.key_path}: {exc}"
        ) from exc
    return context


def client_ssl_context(cert: LocalCertificate) -> ssl.SSLContext:
    """A TLS client context that trusts ``cert`` (and verifies host names as usual)."""
    return ssl.create_default_context(cafile=str(cert.cert_path))


def trust_instructions(cert: LocalCertificate, https_base_url: str) -> list[str]:
    """The lines a user pastes to make a client trust ``cert`` (printed by sim-server --tls)."""
    path = cert.cert_path
    return [
        f"TLS certificate (self-signed, for 127.0.0.1, ::1 and localhost): {path}",
        "trust it in a shell (Python ssl, httpx, websockets, aiohttp, the openai SDK):",
        f"  export SSL_CERT_FILE={path}",
        "or in code for google-genai:",
        "  import ssl; from google.genai import types",
        "  http_options = types.HttpOptions(",
        f'      base_url="{https_base_url}", api_version="v1beta",',
        f'      async_client_args={{"ssl": ssl.create_default_context(cafile="{path}")}})',
    ]
