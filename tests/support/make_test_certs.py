#!/usr/bin/python3
"""Writes a test CA and three server certificates it signed into DIR, for the TLS tests:
ca.pem; good.pem/good.key (localhost, 127.0.0.1; valid now); wrong_host.pem/.key (other.example only);
expired.pem/.key (localhost, 127.0.0.1; valid in 2020 only)."""
import datetime, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out = sys.argv[1]
now = datetime.datetime.utcnow()


def key():
    return ec.generate_private_key(ec.SECP256R1())


def write(name, cert, private):
    with open(f"{out}/{name}.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    if private is not None:
        with open(f"{out}/{name}.key", "wb") as f:
            f.write(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


ca_key = key()
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "profagent test CA")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
      .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
      .not_valid_after(now + datetime.timedelta(days=30))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .sign(ca_key, hashes.SHA256()))
write("ca", ca, None)


def server(name, names, ips, start, end):
    private = key()
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    write(name, cert, private)


day = datetime.timedelta(days=1)
server("good", ["localhost"], ["127.0.0.1"], now - day, now + 30 * day)
server("wrong_host", ["other.example"], [], now - day, now + 30 * day)
server("expired", ["localhost"], ["127.0.0.1"], datetime.datetime(2020, 1, 1), datetime.datetime(2020, 2, 1))
