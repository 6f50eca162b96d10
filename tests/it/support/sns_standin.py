"""SNS's side of an HTTPS delivery, for the alarm tests: serves a signing certificate over
HTTPS (from a CA made for the test) and signs messages exactly as SNS does.

Writes ca.pem (the CA of the HTTPS endpoint) into the directory given as argv[1], prints the
HTTPS port and a plain HTTP port for the test's own requests, then serves until killed:
  GET  /SimpleNotificationService-test.pem   (HTTPS) the signing certificate (RSA 2048)
  POST /sign?version=1|2[&key=forger]        (HTTP) the JSON envelope in the body, with
                                             SignatureVersion, SigningCertURL and Signature
                                             added (by the forger's key: a forgery)
Uses `cryptography`, which moto already installs.
"""
import base64
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import sys
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)


def name(text):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def builder(subject, issuer, key):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


ca_key = ec.generate_private_key(ec.SECP256R1())
ca_cert = (
    builder(name("drbot SNS test CA"), name("drbot SNS test CA"), ca_key)
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
    .sign(ca_key, hashes.SHA256())
)
tls_key = ec.generate_private_key(ec.SECP256R1())
tls_cert = (
    builder(name("localhost"), ca_cert.subject, tls_key)
    .add_extension(
        x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        critical=False,
    )
    .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .sign(ca_key, hashes.SHA256())
)
# SNS's signing certificate, and a forger's key.
sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
sns_cert = builder(name("sns.us-east-1.amazonaws.com"), name("sns.us-east-1.amazonaws.com"), sns_key).sign(sns_key, hashes.SHA256())
forger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


key_pem = tls_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
for file, data in {"ca.pem": pem(ca_cert), "tls.pem": pem(tls_cert), "tls.key": key_pem}.items():
    with open(os.path.join(out, file), "wb") as f:
        f.write(data)

NOTIFICATION = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
CONFIRMATION = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]


def string_to_sign(message):
    keys = NOTIFICATION if message["Type"] == "Notification" else CONFIRMATION
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/SimpleNotificationService-test.pem":
            self.answer(200, pem(sns_cert), "application/x-pem-file")
        else:
            self.answer(404, b"no such certificate")

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        message = json.loads(self.rfile.read(int(self.headers["content-length"])))
        version = query.get("version", ["1"])[0]
        key = forger_key if query.get("key", [""])[0] == "forger" else sns_key
        message["SignatureVersion"] = version
        message.setdefault("SigningCertURL", f"https://localhost:{port}/SimpleNotificationService-test.pem")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = key.sign(string_to_sign(message).encode(), padding.PKCS1v15(), digest)
        message["Signature"] = base64.b64encode(signature).decode()
        self.answer(200, json.dumps(message).encode())


import threading

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join(out, "tls.pem"), os.path.join(out, "tls.key"))
server.socket = context.wrap_socket(server.socket, server_side=True)
plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print(port, plain.server_address[1], flush=True)
server.serve_forever()
