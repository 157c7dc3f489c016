"""sim-server over TLS: the loopback certificate, wss:// and https:// on every endpoint."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from websockets.asyncio.client import connect

from vocalis.sim.server import SimServer
from vocalis.sim.tls import (
    CertificateError,
    client_ssl_context,
    ensure_local_certificate,
    load_certificate,
)

REPO = Path(__file__).resolve().parents[2]


def test_certificate_is_made_once_for_the_loopback_names(tmp_path: Path) -> None:
    cert = ensure_local_certificate(tmp_path)
    pem = cert.cert_path.read_bytes()
    parsed = x509.load_pem_x509_certificate(pem)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert cert.key_path.stat().st_mode & 0o077 == 0  # the key is owner-only
    assert ensure_local_certificate(tmp_path).cert_path.read_bytes() == pem  # reused
    cert.cert_path.write_text("not a certificate")
    assert ensure_local_certificate(tmp_path).cert_path.read_bytes() != pem  # remade


def test_a_mismatched_pair_is_a_clear_error(tmp_path: Path) -> None:
    one = ensure_local_certificate(tmp_path / "one")
    two = ensure_local_certificate(tmp_path / "two")
    with pytest.raises(CertificateError, match="cannot use certificate"):
        load_certificate(one.cert_path, two.key_path)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_wss_and_https_with_the_trusted_certificate(tmp_path: Path, host: str) -> None:
    cert = ensure_local_certificate(tmp_path)
    context = client_ssl_context(cert)
    async with SimServer(host="127.0.0.1", tls=cert) as server:
        url = server.url.replace("127.0.0.1", host)
        assert url.startswith("wss://")
        async with connect(url, ssl=context, additional_headers={"api-key": "k"}) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
        base = server.base_url.replace("127.0.0.1", host)
        async with httpx.AsyncClient(verify=context) as http:
            response = await http.post(base + "/v1/nothing-here", json={})
        assert response.status_code == 404
        # An untrusted client is refused by TLS, not silently served.
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(url, ssl=ssl.create_default_context()):
                pass


def test_cli_tls_prints_the_url_and_how_to_trust_it(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "vocalis.cli", "sim-server", "--port", "0", "--tls"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        lines = [process.stdout.readline().rstrip("\n") for _ in range(8)]
        cert_file = tmp_path / "vocalis" / "tls" / "localhost-cert.pem"
        assert url.startswith("wss://127.0.0.1:")
        assert f"  export SSL_CERT_FILE={cert_file}" in lines
        assert any("HttpOptions(" in line for line in lines)
        assert any(f'cafile="{cert_file}"' in line for line in lines)

        async def talk() -> str:
            context = ssl.create_default_context(cafile=str(cert_file))
            async with connect(url, ssl=context, additional_headers={"api-key": "k"}) as ws:
                return str(json.loads(await ws.recv())["type"])

        assert asyncio.run(talk()) == "session.created"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cert", "c.pem", "--key", "k.pem"], "--cert and --key need --tls"),
        (["--tls", "--cert", "c.pem"], "--cert and --key go together"),
        (["--tls", "--cert", "c.pem", "--key", "k.pem"], "cannot use certificate c.pem"),
    ],
)
def test_cli_tls_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    command = [sys.executable, "-m", "vocalis.cli", "sim-server", "--port", "0", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
