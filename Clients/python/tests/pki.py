"""A throwaway PKI for the unit tests (mirrors what `gridnode ca issue` produces)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str, ou: Optional[str] = None, district: Optional[str] = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    if district:
        attrs.append(x509.NameAttribute(NameOID.LOCALITY_NAME, district))
    attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "GridLedger"))
    return x509.Name(attrs)


def _write(path: str, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path


class CA:
    def __init__(self, directory: str, name: str = "GridLedger Test CA") -> None:
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        subject = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = _write(os.path.join(directory, "ca.crt"),
                              self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, role: str, district: Optional[str] = None):
        """Returns (cert_path, key_path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name, role, district)).issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if role == "node":
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName(name), x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path = _write(os.path.join(self.dir, f"{name}.crt"),
                           cert.public_bytes(serialization.Encoding.PEM))
        key_path = _write(os.path.join(self.dir, f"{name}.key"), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return cert_path, key_path
