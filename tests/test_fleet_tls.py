"""TLS between the fleet's processes: a scheduler and an agent that speak TLS only (their own
CA and certificate, made here), a dispatcher that connects with the same files and runs a plan
there; without the files, or over plain TCP, nothing gets through."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from wattbench.domain.errors import BadInputError, FleetError
from wattbench.service.fleet import FleetRun
from wattbench.service.fleet_link import Fleet, TlsFiles
from wattbench.service.queue import ItemState
from wattbench.service.workbench import Workbench

from tests.fleet_fixtures import start_fleet
from tests.test_fleet import _plan


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls_files(folder: Path) -> TlsFiles:
    """A CA and one certificate it signed (for 127.0.0.1), as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("wattbench test CA"))
        .issuer_name(_name("wattbench test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("wattbench fleet"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(cert.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TlsFiles(str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem"))


def test_a_tls_fleet_runs_a_plan_and_refuses_plain_tcp(fake_plugins: Path, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    args = ("--tls-ca", tls.ca, "--tls-cert", tls.cert, "--tls-key", tls.key)
    fleet = start_fleet(tmp_path, ("epyc",), tls_args=args)
    try:
        assert fleet.address.startswith("tls://127.0.0.1:")
        with pytest.raises(BadInputError, match="speaks TLS"):
            Fleet.connect(fleet.address, None)
        plain = fleet.address.replace("tls://", "tcp://")
        with pytest.raises(FleetError, match="cannot be reached"):
            Fleet.connect(plain, None, timeout_s=3.0)
        wb = Workbench.open(str(tmp_path / "tls.db"))
        with Fleet.connect(fleet.address, tls) as client:
            assert [h.name for h in client.hosts(fresh=True)] == ["epyc"]
            assert client.hosts()[0].address.startswith("tls://")
            run = FleetRun(client, ["epyc"], wb)
            run.submit(_plan())
            (item,) = run.run_all()
        assert item.state is ItemState.DONE and item.stored, item.reason
        assert wb.get_run(item.run_id, with_arrays=False).spec.host == "epyc"
        wb.close()
    finally:
        fleet.stop()
