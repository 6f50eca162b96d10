"""A real SMTP server for the notify tests (aiosmtpd): STARTTLS required (a certificate for
localhost from a CA made here, written to <dir>/ca.pem), AUTH PLAIN/LOGIN required after
TLS with the user and password given, every message taken recorded as one JSON line in
<dir>/mail.jsonl (envelope sender, recipients, the raw message, whether it came over TLS).
With a fourth argument `implicit`, TLS starts with the connection (smtps) instead.

A file <dir>/fail holding "N CODE" makes the next N messages answer CODE to DATA (451 or
554, say). Prints the port, then serves until killed:
  smtp_standin.py DIR USER PASSWORD [implicit]
"""
import asyncio
import datetime
import ipaddress
import json
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
implicit = sys.argv[4:] == ["implicit"]
now = datetime.datetime.now(datetime.timezone.utc)


def issued(subject, issuer, key, signer):
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (
    issued("drbot SMTP test CA", "drbot SMTP test CA", ca_key, ca_key)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    .sign(ca_key, hashes.SHA256())
)
key = ec.generate_private_key(ec.SECP256R1())
cert = (
    issued("localhost", "drbot SMTP test CA", key, ca_key)
    .add_extension(
        x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        critical=False,
    )
    .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .sign(ca_key, hashes.SHA256())
)
files = {
    "ca.pem": ca.public_bytes(serialization.Encoding.PEM),
    "smtp.pem": cert.public_bytes(serialization.Encoding.PEM),
    "smtp.key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
}
for name, data in files.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(os.path.join(out, "smtp.pem"), os.path.join(out, "smtp.key"))


def failing():
    path = os.path.join(out, "fail")
    try:
        with open(path) as f:
            left, code = f.read().split()
    except (OSError, ValueError):
        return None
    left = int(left)
    if left <= 0:
        return None
    with open(path, "w") as f:
        f.write(f"{left - 1} {code}")
    return code


class Recorder:
    async def handle_DATA(self, server, session, envelope):
        code = failing()
        if code:
            return f"{code} the stand-in was told to refuse this one"
        with open(os.path.join(out, "mail.jsonl"), "a") as f:
            f.write(json.dumps({
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                "authenticated": bool(session.authenticated),
            }) + "\n")
        return "250 2.0.0 OK queued"


def authenticate(server, session, envelope, mechanism, auth_data):
    good = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=good)


probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
# aiosmtpd counts only STARTTLS as TLS for `auth_require_tls`; smtps is TLS from the start.
tls = (
    {"ssl_context": context, "auth_require_tls": False}
    if implicit
    else {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
)
controller = Controller(
    Recorder(),
    hostname="127.0.0.1",
    port=port,
    authenticator=authenticate,
    auth_required=True,
    **tls,
)
controller.start()
print(port, flush=True)
try:
    asyncio.new_event_loop().run_forever()
finally:
    controller.stop()
