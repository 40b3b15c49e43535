#!/usr/bin/env python3
"""Kafka's security features end to end: TLS (server auth, mutual TLS) and SASL (PLAIN,
SCRAM-SHA-256/512, OAUTHBEARER) with real clients, against a broker started from ONE Kafka-style
server.properties that this script writes (Kafka's keys only, printed with --show-config).

Brokers: `--kafka` runs Apache Kafka 3.9.2 in ZooKeeper mode (jars from compat-tests/kafka39/
pom.xml into target/kafka39-lib, a ZooKeeper from scripts/zookeeper.sh); `--broker PATH` runs
gregor as `gregor server.properties`, standalone, or with `--zookeeper` on a real ZooKeeper.

Certificates are made by the test with the openssl CLI: a CA; the broker's certificate (SAN
IP:127.0.0.1, DNS:localhost) in a PEM key store (unencrypted PKCS#8 key + chain; the MTLS
listener's copy holds the key encrypted, PKCS#8 PBE-SHA1-3DES, with ssl.key.password), in a
PKCS12 store (SASL_SSL) and, by keytool, in a JKS store (SSL; Kafka's default type), with the
CA in a JKS trust store for MTLS; alice's
client certificate signed by the CA; a self-signed "rogue" alice; an expired alice signed by the
CA (`openssl ca -startdate/-enddate` in 2020); a second CA nobody trusts.

Listeners, all on 127.0.0.1 (free ports), inter-broker over PLAINTEXT:
  PLAINTEXT       admin, SCRAM user creation (Kafka's ConfigCommand), the plaintext cells
  SSL             TLS, ssl.client.auth=none; its key store is JKS (ssl.key.password differs
                  from ssl.keystore.password)
  MTLS            a named listener mapped to SSL, ssl.client.auth=required; its trust store is JKS
  SASL_SSL        PLAIN, SCRAM-SHA-512, SCRAM-SHA-256 (from the broker-wide sasl.enabled.mechanisms);
                  its key store is PKCS12 (ssl.keystore.type=PKCS12, ssl.keystore.password)
  SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, OAUTHBEARER (listener.name.sasl_plaintext.sasl.enabled.
                  mechanisms; Kafka's default unsecured-JWS OAUTHBEARER validator)
  OAUTH           a named listener mapped to SASL_PLAINTEXT: OAUTHBEARER with signed tokens,
                  Kafka's OAuthBearerValidatorCallbackHandler with the JWKS of an identity
                  provider this script runs over https (IdentityProvider: RSA keys from
                  openssl, tokens signed RS256 here, GET /jwks.json, POST /token for
                  client_credentials logins), expected audience and issuer. The test CA is the
                  system trust of every process the script starts (JAVA_TOOL_OPTIONS'
                  javax.net.ssl.trustStore for the JVMs, SSL_CERT_FILE for gregor).

Positive cells (client x listener/mechanism): kcat (librdkafka 2.0.2), confluent-kafka (Python),
kafka-python, Java (Kafka 3.9's ConsoleProducer / ConsoleConsumer with PEM key and trust stores)
each produce 5 records with distinct keys and values and a header on a topic of their own, read
them back through the same listener and check offsets 0-4, keys, values and headers exactly; a
confluent-kafka reader on PLAINTEXT then checks the same bytes are in the log.

Negative cases, each run by every client and by "raw" (Python's socket/ssl modules and a
hand-made SaslHandshake v1 / SaslAuthenticate v1 exchange, PLAIN and SCRAM computed here, whose
control run with the right password must authenticate and, for SCRAM, check the server's
signature): wrong password (PLAIN, SCRAM-SHA-512/256), unknown user (PLAIN, SCRAM), a mechanism
the listener has not enabled, plaintext on the TLS port, TLS on the plaintext port, the rogue /
no / expired client certificate on MTLS, and a client that does not trust the CA. Each failure
must be reported within NEG_BOUND_S (10 s) and match the client's expected error (EXPECT); a
client that gets the required error but not Kafka's exact text or TLS alert is "pass~" (shown,
not a failure). After each, a good confluent-kafka client on the same listener writes a record
and reads it back.

Prints a matrix (client x cell: pass / FAIL / n/a with the reason); exit 1 on any FAIL.

usage: compat-tests/security_test.py (--kafka | --broker target/release/gregor [--zookeeper])
                                     [--only NAME,...] [--keep] [--show-config] [--observe]
                                     [--no-encrypted-key]
  NAME: a positive cell (plaintext, ssl, mtls, sasl_ssl-plain, ...) or negative case (neg-...),
  "positive" / "negative" (either half), or a client (kcat, confluent, kafka-python, java, raw);
  cells/cases and clients combine: --only negative,raw runs the raw negative checks.
  --observe prints every negative outcome in full; --show-config prints server.properties.

What Kafka 3.9.2 does, as observed by this test (the reference for gregor):
  Config
  - A PEM key store file (ssl.keystore.type=PEM, ssl.keystore.location) holds the private key
    and the certificate chain. An unencrypted PKCS#8 key needs no ssl.key.password. An encrypted
    one must be PKCS#8 with a PBE the JDK knows: openssl 3's default (PBES2, AES-256-CBC,
    PBKDF2-HMAC-SHA256) fails broker startup on JDK 17 with "Failed to load PEM SSL keystore ...
    Invalid PEM keystore configs / PBES2 SecretKeyFactory not available"; `openssl pkcs8 -topk8
    -v1 PBE-SHA1-3DES` works. ssl.keystore.password must NOT be set with PEM.
  - The broker sends its whole key-store chain (here leaf + CA): a client without the CA fails
    with X509 verify code 19 ("self-signed certificate in certificate chain"), not 20.
  - sasl.enabled.mechanisms is broker-wide; listener.name.<l>.sasl.enabled.mechanisms overrides
    it per listener. SaslHandshake's mechanism list is in the configured order. Every enabled
    mechanism needs listener.name.<l>.<mech>.sasl.jaas.config (SCRAM: ScramLoginModule required;).
  - ConfigCommand --alter --add-config 'SCRAM-SHA-512=[password=..],SCRAM-SHA-256=[iterations=
    8192,password=..]' over --bootstrap-server (AlterUserScramCredentials) works in ZooKeeper
    mode; --describe prints "SCRAM credential configs for user-principal 'alice' are
    SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096" (4096 is the default).
  SASL failures (on the wire, "raw")
  - Wrong password or unknown user, PLAIN: SaslAuthenticate error 58 (SASL_AUTHENTICATION_FAILED)
    "Authentication failed: Invalid username or password" - the same text for both.
  - SCRAM, wrong password: the client-first message succeeds, the client-final gets 58
    "Authentication failed during authentication due to invalid credentials with SASL mechanism
    SCRAM-SHA-512". SCRAM, unknown user: 58 with the same text, already on the client-first
    message (Kafka does not hide which users exist from a raw client).
  - A mechanism the listener does not enable: SaslHandshake error 33 (UNSUPPORTED_SASL_MECHANISM)
    with the listener's enabled mechanisms.
  - In every case Kafka answers ~0.3 s after the request (it delays failed-authentication
    answers, connection.failed.authentication.delay.ms, default 100 ms; the rest presumably its
    processor's polling) and closes the connection right after sending the answer.
  - Unsecured OAUTHBEARER: Kafka's default validator accepts {"alg":"none"} tokens with sub,
    iat and exp (kcat's enable.sasl.oauthbearer.unsecure.jwt, our own JWS in confluent-kafka's
    oauth_cb and kafka-python's token provider, Java's unsecuredLoginStringClaim_sub).
  - Signed OAUTHBEARER (OAUTH listener): the tokens come from the provider's token endpoint
    (kcat's sasl.oauthbearer.method=oidc, Java's OAuthBearerLoginCallbackHandler with
    sasl.oauthbearer.token.endpoint.url) or are signed here (confluent-kafka's oauth_cb,
    kafka-python's token provider). A refused token (expired, signed by a key not in the JWKS,
    another audience, alg none) is answered as RFC 7628 says: SaslAuthenticate error 0 with the
    challenge {"status":"invalid_token"}, then, on the client's %x01, error 58 with that same
    text. A token whose key id the JWKS lacks makes the broker fetch the JWKS again at once: once
    the provider publishes the key, the next attempt succeeds.
  TLS failures
  - Plaintext on a TLS port: Kafka writes a fatal TLS alert record (15 03 03 00 02 02 50:
    internal_error) and closes at once. Clients: librdkafka logs "Disconnected while requesting
    ApiVersion: might be caused by incorrect security.protocol" (kcat) / "connection closed by
    peer" (confluent-kafka's librdkafka 2.16, with error_cb _ALL_BROKERS_DOWN) and retries;
    kafka-python reads the alert as a frame length ("InvalidReceiveError: Invalid frame length:
    352518912") or, in some runs, just sees the close; the Java client does the same and dies with OutOfMemoryError: Java heap space
    in its network thread, then TimeoutException after max.block.ms.
  - TLS on the PLAINTEXT port: Kafka reads the ClientHello as a request of absurd size and closes
    the connection without a byte: clients see EOF during the handshake (Python: SSLEOFError
    UNEXPECTED_EOF_WHILE_READING; librdkafka "SSL handshake failed"/"SSL connection closed by
    peer"); the Java client just retries (TimeoutException after max.block.ms, no SSL error).
  - MTLS (ssl.client.auth=required): TLS 1.3 is negotiated, so every client's handshake
    "succeeds" and the failure arrives on its first read as an alert from Kafka (JDK 17):
    no certificate -> bad_certificate (42); expired -> certificate_unknown (46); the rogue
    self-signed cert -> certificate_unknown (46) for Python's ssl, kcat and kafka-python, but
    bad_certificate (42) for confluent-kafka 2.16 and the Java client (why: not investigated). Java reports "SslAuthenticationException: Failed to process
    post-handshake messages" caused by "Received fatal alert: ...". TLS 1.2 gives the same alerts.
  - Client reporting: librdkafka reports SASL failures as _AUTHENTICATION ("SASL authentication
    error: <Kafka's message>") and TLS alerts as _TRANSPORT ("Receive failed: ... SSL alert
    number N"), certificate verification as _SSL; kcat prints the same as %3|FAIL| log lines and
    keeps retrying until -m. The Java console producer exits 0 after logging
    SaslAuthenticationException / UnsupportedSaslMechanismException ("Client SASL mechanism 'X'
    not enabled in the server, enabled mechanisms are [..]") / SslAuthenticationException.
    kafka-python 3.0.12 keeps retrying its bootstrap (then KafkaTimeoutError "Unable to
    bootstrap") and only logs the cause; after a SASL failure it mostly logs just "socket
    disconnected" (probably Kafka's close racing its reading of the error response).
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from compat.broker import free_port  # noqa: E402
from compat.kafka39 import KAFKA_LIB, fetch_kafka  # noqa: E402

N = 5                   # records per cell
NEG_BOUND_S = 10.0      # a refused client must be told within this
JAVA = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-Xmx256m"]

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
KEY_PASSWORD = "broker-key-secret"
STORE_PASSWORD = "broker-store-secret"

LISTENERS = {  # name -> security protocol
    "PLAINTEXT": "PLAINTEXT",
    "SSL": "SSL",
    "MTLS": "SSL",
    "SASL_SSL": "SASL_SSL",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "OAUTH": "SASL_PLAINTEXT",
}

# Positive cells: name -> (listener, SASL mechanism or None, client certificate?)
CELLS = {
    "plaintext": ("PLAINTEXT", None, False),
    "ssl": ("SSL", None, False),
    "mtls": ("MTLS", None, True),
    "sasl_ssl-plain": ("SASL_SSL", "PLAIN", False),
    "sasl_ssl-scram-sha-512": ("SASL_SSL", "SCRAM-SHA-512", False),
    "sasl_ssl-scram-sha-256": ("SASL_SSL", "SCRAM-SHA-256", False),
    "sasl_plaintext-plain": ("SASL_PLAINTEXT", "PLAIN", False),
    "sasl_plaintext-scram-sha-256": ("SASL_PLAINTEXT", "SCRAM-SHA-256", False),
    "sasl_plaintext-oauthbearer": ("SASL_PLAINTEXT", "OAUTHBEARER", False),
    "oauth-jwks": ("OAUTH", "OAUTHBEARER", False),
}
CLIENTS = ["kcat", "confluent", "kafka-python", "java"]


class Fail(AssertionError):
    pass


class NotApplicable(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eventually(what, timeout, fn, interval=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise Fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------------------------------------
# Certificates


OPENSSL_CNF = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ selfsigned ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[ ca ]
default_ca = testca
[ testca ]
database = {d}/index.txt
new_certs_dir = {d}/newcerts
serial = {d}/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
"""


class Certs:
    """All PEM files in `d`: ca.pem; broker.pem (key + chain), broker-enc.pem (encrypted key +
    chain); alice.{key,crt,pem}, rogue.{key,crt,pem}, expired.{key,crt,pem}; other-ca.pem."""

    def __init__(self, d):
        self.d = d
        os.makedirs(os.path.join(d, "newcerts"))
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        self.cnf = self.p("openssl.cnf")
        with open(self.cnf, "w") as f:
            f.write(OPENSSL_CNF.replace("{d}", d))
        self.ssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.p("ca.key"),
                 "-out", self.p("ca.pem"), "-days", "30", "-subj", "/CN=gregor-test-ca",
                 "-config", self.cnf, "-extensions", "v3_ca")
        self.ssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.p("other-ca.key"),
                 "-out", self.p("other-ca.pem"), "-days", "30", "-subj", "/CN=nobody-trusts-this-ca",
                 "-config", self.cnf, "-extensions", "v3_ca")
        self.signed("broker", "/CN=localhost", "server")
        self.signed("alice", "/CN=alice", "client")
        # The rogue: alice's name, self-signed.
        self.ssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.p("rogue.key"),
                 "-out", self.p("rogue.crt"), "-days", "30", "-subj", "/CN=alice",
                 "-config", self.cnf, "-extensions", "selfsigned")
        # Expired: signed by the CA, valid January 2020 only.
        self.ssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.p("expired.key"),
                 "-out", self.p("expired.csr"), "-subj", "/CN=alice", "-config", self.cnf)
        self.ssl("ca", "-batch", "-config", self.cnf, "-in", self.p("expired.csr"), "-out", self.p("expired.crt"),
                 "-cert", self.p("ca.pem"), "-keyfile", self.p("ca.key"), "-notext",
                 "-startdate", "20200101000000Z", "-enddate", "20200201000000Z", "-extensions", "client")
        for name in ("broker", "alice", "rogue", "expired"):
            self.cat(f"{name}.pem", f"{name}.key", f"{name}.crt", *(["ca.pem"] if name != "rogue" else []))
        # The same key and chain as a PKCS12 keystore (openssl 3's default PBES2 / AES-256), as
        # keytool makes them: the SASL_SSL listener reads this one.
        self.ssl("pkcs12", "-export", "-in", self.p("broker.crt"), "-inkey", self.p("broker.key"),
                 "-certfile", self.p("ca.pem"), "-name", "broker", "-out", self.p("broker.p12"),
                 "-passout", f"pass:{STORE_PASSWORD}")
        # The broker's key encrypted, PKCS#8 with pbeWithSHA1And3-KeyTripleDES-CBC: Kafka 3.9 on
        # JDK 17 cannot read openssl 3's default (PBES2: "PBES2 SecretKeyFactory not available").
        self.ssl("pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", self.p("broker.key"), "-out", self.p("broker-enc.key"),
                 "-passout", f"pass:{KEY_PASSWORD}")
        self.cat("broker-enc.pem", "broker-enc.key", "broker.crt", "ca.pem")
        # JKS stores, Kafka's default type, made by keytool: the broker's key and chain (key
        # password other than the store's) for the SSL listener, the CA for MTLS's trust.
        self.keytool("-importkeystore", "-srckeystore", self.p("broker.p12"), "-srcstoretype", "PKCS12",
                     "-srcstorepass", STORE_PASSWORD, "-destkeystore", self.p("broker.jks"),
                     "-deststoretype", "JKS", "-deststorepass", STORE_PASSWORD, "-destkeypass", KEY_PASSWORD,
                     "-srcalias", "broker", "-destalias", "broker")
        self.keytool("-importcert", "-noprompt", "-alias", "ca", "-file", self.p("ca.pem"),
                     "-keystore", self.p("ca-trust.jks"), "-storetype", "JKS", "-storepass", STORE_PASSWORD)
        out = self.ssl("x509", "-in", self.p("expired.crt"), "-noout", "-enddate")
        check("2020" in out, f"expired cert end date: {out}")

    def p(self, name):
        return os.path.join(self.d, name)

    def signed(self, name, subject, extensions):
        """name.key (unencrypted PKCS#8) and name.crt signed by the CA."""
        self.ssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", self.p(f"{name}.key"),
                 "-out", self.p(f"{name}.csr"), "-subj", subject, "-config", self.cnf)
        self.ssl("x509", "-req", "-in", self.p(f"{name}.csr"), "-CA", self.p("ca.pem"), "-CAkey", self.p("ca.key"),
                 "-CAcreateserial", "-out", self.p(f"{name}.crt"), "-days", "30", "-sha256",
                 "-extfile", self.cnf, "-extensions", extensions)

    def ssl(self, *args):
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args[:3])}: {r.stderr}")
        return r.stdout

    def keytool(self, *args):
        r = subprocess.run(["keytool", *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"keytool {args[0]}: {r.stdout}{r.stderr}")

    def cat(self, out, *parts):
        with open(self.p(out), "w") as f:
            for part in parts:
                with open(self.p(part)) as src:
                    f.write(src.read())


# ---------------------------------------------------------------------------------------------
# The identity provider of the OAUTH listener


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class IdentityProvider:
    """An OAuth/OIDC provider in this process, over https with the broker's certificate (so
    signed by the test CA, which the brokers and Java clients trust as their system's: see
    `system_trust_env`). Keys k1, k2 and rogue (RSA 2048, openssl); the JWKS at GET /jwks.json
    publishes `self.published` (k1 at first); POST /token answers a client_credentials login
    (HTTP basic auth, as librdkafka's and Java's OIDC logins send it) with a token for the
    client id. A client id "<variant>.<user>" gets a bad token of that variant (see `token`),
    so that clients that fetch their own tokens can be given bad ones."""

    AUDIENCE = "gregor-test"

    def __init__(self, d, certs):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.keys = {}
        for kid in ("k1", "k2", "rogue"):
            path = os.path.join(d, f"{kid}.pem")
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", path], check=True, capture_output=True, timeout=60)
            out = subprocess.run(["openssl", "rsa", "-in", path, "-noout", "-modulus"], check=True,
                                 capture_output=True, text=True, timeout=60).stdout
            modulus = bytes.fromhex(out.strip().split("=", 1)[1])
            self.keys[kid] = (path, {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                                     "n": b64url(modulus), "e": "AQAB"})
        self.published = ["k1"]
        self.jwks_fetches = 0
        self.port = free_port()
        self.issuer = f"https://127.0.0.1:{self.port}"
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args):
                pass

            def reply(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/jwks.json":
                    return self.reply(404, {"error": "not_found"})
                idp.jwks_fetches += 1
                self.reply(200, {"keys": [idp.keys[k][1] for k in list(idp.published)]})

            def do_POST(self):
                from urllib.parse import parse_qs, unquote
                length = int(self.headers.get("Content-Length", 0))
                form = parse_qs(self.rfile.read(length).decode())
                auth = self.headers.get("Authorization", "")
                if self.path != "/token" or form.get("grant_type") != ["client_credentials"] \
                        or not auth.startswith("Basic "):
                    return self.reply(400, {"error": "invalid_request"})
                client_id = unquote(base64.b64decode(auth[6:]).decode().split(":", 1)[0])
                variant, _, user = client_id.rpartition(".")
                self.reply(200, {"access_token": idp.token(user, variant or "good"), "token_type": "Bearer",
                                 "expires_in": 3600})

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certs.p("broker.crt"), certs.p("broker.key"))
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub, variant="good"):
        """A token for `sub`. Variants: good (k1), expired (an hour ago, beyond any clock skew),
        rogue (signed by a key not in the JWKS, but naming k1), audience (for someone else),
        unsecured (alg none), k2 (signed by k2, published or not)."""
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "exp": now + 3600, "iss": self.issuer, "aud": self.AUDIENCE,
                  "scope": "kafka"}
        kid, key = "k1", "k1"
        if variant == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        elif variant == "rogue":
            key = "rogue"
        elif variant == "audience":
            claims["aud"] = "someone-else"
        elif variant == "k2":
            kid = key = "k2"
        elif variant == "unsecured":
            return f"{b64url(json.dumps({'alg': 'none'}))}.{b64url(json.dumps(claims))}."
        elif variant != "good":
            raise ValueError(variant)
        signing_input = f"{b64url(json.dumps({'alg': 'RS256', 'typ': 'JWT', 'kid': kid}))}." \
                        f"{b64url(json.dumps(claims))}"
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.keys[key][0]],
                                   input=signing_input.encode(), check=True, capture_output=True,
                                   timeout=60).stdout
        return f"{signing_input}.{b64url(signature)}"

    def close(self):
        self.server.shutdown()


IDP = None  # the IdentityProvider, once main has started it


def system_trust_env(certs):
    """Environment in which the test CA is the system's trust: the JDK's default trust store
    (Kafka's JWKS fetch, the Java clients' token endpoint logins) and rustls-native-certs'
    SSL_CERT_FILE (gregor's JWKS fetch)."""
    return {"JAVA_TOOL_OPTIONS": f"-Djavax.net.ssl.trustStore={certs.p('ca-trust.jks')} "
                                 f"-Djavax.net.ssl.trustStorePassword={STORE_PASSWORD}",
            "SSL_CERT_FILE": certs.p("ca.pem")}


# ---------------------------------------------------------------------------------------------
# The broker


LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.zookeeper=WARN
"""

CLIENT_LOG4J = """log4j.rootLogger=ERROR, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n
"""


def server_properties(root, certs, ports, zk, idp, encrypted_key=True):
    plain = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
             + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    oauth = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
    addr = ",".join(f"{n}://127.0.0.1:{ports[n]}" for n in LISTENERS)
    lines = [
        "broker.id=0",
        f"log.dirs={os.path.join(root, 'data')}",
        f"listeners={addr}",
        f"advertised.listeners={addr}",
        "listener.security.protocol.map=" + ",".join(f"{n}:{p}" for n, p in LISTENERS.items()),
        "inter.broker.listener.name=PLAINTEXT",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        # Broker-wide SASL mechanisms (what SASL_SSL uses); SASL_PLAINTEXT overrides them below.
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512,SCRAM-SHA-256",
    ]
    if zk:
        lines.append(f"zookeeper.connect={zk}")
    mtls_key = ("broker-enc.pem", KEY_PASSWORD) if encrypted_key else ("broker.pem", None)
    # Key stores: SSL's is JKS (its key under its own password), MTLS's an encrypted PEM key,
    # SASL_SSL's PKCS12. Trust stores: PEM, but MTLS's (which checks client certificates) JKS.
    stores = (("ssl", ("broker.jks", KEY_PASSWORD), "ca.pem"), ("mtls", mtls_key, "ca-trust.jks"),
              ("sasl_ssl", ("broker.p12", None), "ca.pem"))
    kinds = {".p12": "PKCS12", ".jks": "JKS", ".pem": "PEM"}
    for name, (key, password), trust in stores:
        key_kind, trust_kind = kinds[os.path.splitext(key)[1]], kinds[os.path.splitext(trust)[1]]
        lines += [
            f"listener.name.{name}.ssl.keystore.type={key_kind}",
            f"listener.name.{name}.ssl.keystore.location={certs.p(key)}",
            f"listener.name.{name}.ssl.truststore.type={trust_kind}",
            f"listener.name.{name}.ssl.truststore.location={certs.p(trust)}",
        ]
        if password:
            lines.append(f"listener.name.{name}.ssl.key.password={password}")
        if key_kind != "PEM":
            lines.append(f"listener.name.{name}.ssl.keystore.password={STORE_PASSWORD}")
        if trust_kind != "PEM":
            lines.append(f"listener.name.{name}.ssl.truststore.password={STORE_PASSWORD}")
    lines += [
        "listener.name.ssl.ssl.client.auth=none",
        "listener.name.mtls.ssl.client.auth=required",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain}",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
        f"listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={scram}",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,OAUTHBEARER",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={plain}",
        f"listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config={scram}",
        f"listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config={oauth}",
        # Signed tokens: Kafka's JWKS validator, its settings under the listener and mechanism.
        "listener.name.oauth.sasl.enabled.mechanisms=OAUTHBEARER",
        f"listener.name.oauth.oauthbearer.sasl.jaas.config={oauth}",
        "listener.name.oauth.oauthbearer.sasl.server.callback.handler.class="
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        f"listener.name.oauth.oauthbearer.sasl.oauthbearer.jwks.endpoint.url={idp.issuer}/jwks.json",
        f"listener.name.oauth.oauthbearer.sasl.oauthbearer.expected.audience={idp.AUDIENCE}",
        f"listener.name.oauth.oauthbearer.sasl.oauthbearer.expected.issuer={idp.issuer}",
    ]
    return "\n".join(lines) + "\n"


class Broker:
    """One broker (Kafka 3.9 or gregor) from one server.properties, and its ZooKeeper if any."""

    def __init__(self, args, root, certs, idp):
        self.root = root
        self.kind = "kafka" if args.kafka else "gregor"
        self.ports = {}
        taken = set()
        for n in LISTENERS:
            while True:
                p = free_port()
                if p not in taken:
                    taken.add(p)
                    self.ports[n] = p
                    break
        self.zk_dir = None
        self.proc = None
        self.log_path = os.path.join(root, f"{self.kind}.log")
        zk = None
        if args.kafka or args.zookeeper:
            self.zk_dir = os.path.join(root, "zk")
            env = dict(os.environ, ZK_TICK_MS="500", ZK_FORCE_SYNC="no", ZK_OWNER_PID=str(os.getpid()))
            out = subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "start", self.zk_dir],
                                 env=env, check=True, capture_output=True, text=True, timeout=60)
            zk = out.stdout.strip() + "/security"
        self.props = os.path.join(root, "server.properties")
        with open(self.props, "w") as f:
            f.write(server_properties(root, certs, self.ports, zk, idp, encrypted_key=not args.no_encrypted_key))
        if args.kafka:
            log4j = os.path.join(root, "log4j.properties")
            with open(log4j, "w") as f:
                f.write(LOG4J.format(path=self.log_path))
            cmd = ["java", "-Xmx512m", "-Xms128m", "-cp", os.path.join(KAFKA_LIB, "*"),
                   f"-Dlog4j.configuration=file:{log4j}", "kafka.Kafka", self.props]
            out = open(self.log_path + ".out", "w")
        else:
            # The same file, plus no metrics endpoint: its default port would collide with
            # other suites running beside this one.
            cmd = [os.path.abspath(args.broker), self.props, "--override", "metrics.port=0"]
            out = open(self.log_path, "w")
        env = dict(os.environ, NO_COLOR="1")
        env.setdefault("RUST_LOG", "info")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.t0 = time.time()

    def address(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def wait_ready(self, timeout=90):
        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.tail()}")
            for p in self.ports.values():
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
            md = AdminClient({"bootstrap.servers": self.address("PLAINTEXT")}).list_topics(timeout=5)
            return len(md.brokers) == 1
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if ready():
                    return time.time() - self.t0
            except RuntimeError:
                raise
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.3)
        raise RuntimeError(f"broker not serving on all listeners within {timeout}s:\n{self.tail()}")

    def tail(self, n=40):
        text = ""
        for path in (self.log_path, self.log_path + ".out"):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    # Without Rust backtrace frames, which would push the error itself out.
                    lines = [l for l in f if not re.match(r"\s+(\d+: |at /)", l)]
                    text += f"--- {path}\n" + "".join(lines[-n:])
        return text

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.zk_dir:
            subprocess.run([os.path.join(REPO, "scripts/zookeeper.sh"), "stop", self.zk_dir],
                           capture_output=True, timeout=60)


def create_topic(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker.address("PLAINTEXT")})  # alive until done
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)


def kafka_tool(main_class, *args, stdin=None, timeout=60, extra_jvm=()):
    return subprocess.run([*JAVA, *extra_jvm, "-cp", os.path.join(KAFKA_LIB, "*"), main_class, *args],
                          input=stdin, capture_output=True, text=True, timeout=timeout)


def create_scram_users(broker):
    """Kafka's kafka-configs.sh (ConfigCommand) over PLAINTEXT; --describe must list both."""
    notes = []
    for user, password in USERS.items():
        r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.address("PLAINTEXT"),
                       "--alter", "--add-config",
                       f"SCRAM-SHA-512=[password={password}],SCRAM-SHA-256=[iterations=8192,password={password}]",
                       "--entity-type", "users", "--entity-name", user)
        check(r.returncode == 0, f"ConfigCommand --alter {user}: {r.stdout}{r.stderr}")
        check(f"Completed updating config for user {user}." in r.stdout, f"ConfigCommand said: {r.stdout}")

    last = []

    def described():
        r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.address("PLAINTEXT"),
                       "--describe", "--entity-type", "users", "--entity-name", "alice")
        errors = [l.strip() for l in r.stderr.splitlines() if "Exception" in l or "Error" in l]
        last[:] = [f"exit {r.returncode}: {r.stdout.strip()} {' | '.join(errors[:4])[:800]}"]
        return r.stdout if r.returncode == 0 and "SCRAM-SHA-256" in r.stdout else None
    try:
        out = eventually("SCRAM credentials described", 20, described, 0.5)
    except Fail as e:
        raise Fail(f"{e}; ConfigCommand --describe said: {last}")
    want = "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=8192, " \
           "SCRAM-SHA-512=iterations=4096"
    check(want in out, f"ConfigCommand --describe: {out!r}")
    notes.append(want)
    return notes


# ---------------------------------------------------------------------------------------------
# Client configurations


def unsecured_jws(sub="alice", lifetime=3600):
    """An unsecured JWS (alg none) as Kafka's OAuthBearerUnsecuredJws accepts it."""
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return f"{b64({'alg': 'none'})}.{b64({'sub': sub, 'iat': now, 'exp': now + lifetime})}.", now + lifetime


class Identity:
    """What a client presents: TLS material and SASL credentials."""

    def __init__(self, certs, mechanism=None, user="alice", password=None, cert=None, ca="ca.pem",
                 protocol=None, token="good"):
        self.certs = certs
        self.mechanism = mechanism
        self.user = user
        self.password = USERS.get(user, "x") if password is None else password
        self.cert = cert          # "alice" / "rogue" / "expired" / None
        self.ca = certs.p(ca) if ca else None
        self.protocol = protocol  # overrides the listener's (for the wrong-protocol cases)
        self.token = token        # the OAUTH listener's token variant (IdentityProvider.token)

    def signed_token(self):
        return IDP.token(self.user, self.token)

    def oidc_client_id(self):
        """The client id that makes the provider's token endpoint issue this token variant."""
        return self.user if self.token == "good" else f"{self.token}.{self.user}"


def rdkafka_conf(broker, listener, ident, python=True):
    """librdkafka properties (confluent-kafka and kcat)."""
    proto = ident.protocol or LISTENERS[listener]
    c = {"bootstrap.servers": broker.address(listener), "security.protocol": proto.lower()}
    if "SSL" in proto:
        c["ssl.ca.location"] = ident.ca
        c["ssl.endpoint.identification.algorithm"] = "https"
        if ident.cert:
            c["ssl.certificate.location"] = ident.certs.p(f"{ident.cert}.crt")
            c["ssl.key.location"] = ident.certs.p(f"{ident.cert}.key")
    if ident.mechanism:
        c["sasl.mechanisms"] = ident.mechanism
        if ident.mechanism == "OAUTHBEARER" and listener == "OAUTH":
            if python:
                # confluent-kafka: a token signed here, from oauth_cb.
                c["oauth_cb"] = lambda _cfg: (ident.signed_token(), time.time() + 3600)
            else:
                # kcat: librdkafka's OIDC login against the provider's token endpoint.
                c["sasl.oauthbearer.method"] = "oidc"
                c["sasl.oauthbearer.client.id"] = ident.oidc_client_id()
                c["sasl.oauthbearer.client.secret"] = "not-checked"
                c["sasl.oauthbearer.token.endpoint.url"] = f"{IDP.issuer}/token"
        elif ident.mechanism == "OAUTHBEARER":
            if python:
                # confluent-kafka: the token comes from our own oauth_cb (the JWS built here).
                c["oauth_cb"] = lambda _cfg: unsecured_jws(ident.user)
            else:
                # kcat: librdkafka's own unsecured JWT builder.
                c["enable.sasl.oauthbearer.unsecure.jwt"] = "true"
                c["sasl.oauthbearer.config"] = f"principal={ident.user}"
        else:
            c["sasl.username"] = ident.user
            c["sasl.password"] = ident.password
    return c


def kafka_python_conf(broker, listener, ident):
    proto = ident.protocol or LISTENERS[listener]
    c = {"bootstrap_servers": broker.address(listener), "security_protocol": proto}
    if "SSL" in proto:
        c["ssl_cafile"] = ident.ca
        c["ssl_check_hostname"] = True
        if ident.cert:
            c["ssl_certfile"] = ident.certs.p(f"{ident.cert}.crt")
            c["ssl_keyfile"] = ident.certs.p(f"{ident.cert}.key")
    if ident.mechanism:
        c["sasl_mechanism"] = ident.mechanism
        if ident.mechanism == "OAUTHBEARER":
            from kafka.net.sasl.oauth import AbstractTokenProvider

            class Unsecured(AbstractTokenProvider):
                def token(self):
                    return unsecured_jws(ident.user)[0]

            class Signed(AbstractTokenProvider):
                def token(self):
                    return ident.signed_token()
            c["sasl_oauth_token_provider"] = Signed() if listener == "OAUTH" else Unsecured()
        else:
            c["sasl_plain_username"] = ident.user
            c["sasl_plain_password"] = ident.password
    return c


def java_conf(broker, listener, ident, path):
    proto = ident.protocol or LISTENERS[listener]
    lines = [f"security.protocol={proto}"]
    if "SSL" in proto:
        lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={ident.ca}"]
        if ident.cert:
            lines += ["ssl.keystore.type=PEM", f"ssl.keystore.location={ident.certs.p(ident.cert + '.pem')}"]
    if ident.mechanism:
        lines.append(f"sasl.mechanism={ident.mechanism}")
        if ident.mechanism == "OAUTHBEARER" and listener == "OAUTH":
            # Java's OIDC login: client_credentials at the provider's token endpoint.
            lines += ["sasl.login.callback.handler.class="
                      "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                      f"sasl.oauthbearer.token.endpoint.url={IDP.issuer}/token",
                      "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                      f'required clientId="{ident.oidc_client_id()}" clientSecret="not-checked";']
        elif ident.mechanism == "OAUTHBEARER":
            lines.append("sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
                         f'required unsecuredLoginStringClaim_sub="{ident.user}";')
        elif ident.mechanism == "PLAIN":
            lines.append("sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                         f'username="{ident.user}" password="{ident.password}";')
        else:
            lines.append("sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                         f'username="{ident.user}" password="{ident.password}";')
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# Clients: produce N records, read them back. Each returns [(offset, key, value, [(hk, hv)])].


def records_for(client, cell):
    tag = f"{client}/{cell}"
    return [(f"key-{client}-{cell}-{i}", f"value {i} of {tag} \u00e9", [("origin", tag)]) for i in range(N)]


def run_confluent(broker, listener, ident, topic, recs):
    conf = rdkafka_conf(broker, listener, ident)
    errors = []
    p = Producer({**conf, "acks": "all", "error_cb": errors.append, "message.timeout.ms": 20000})
    acked = []

    def dr(err, msg):
        acked.append((err, msg.offset() if msg else None))
    for k, v, h in recs:
        p.produce(topic, key=k.encode(), value=v.encode(), headers=[(a, b.encode()) for a, b in h],
                  partition=0, on_delivery=dr)
    left = p.flush(30)
    check(left == 0, f"{left} records not delivered; errors {errors}")
    check([a for a in acked if a[0] is not None] == [], f"delivery errors {acked}")
    check([a[1] for a in acked] == list(range(N)), f"acknowledged offsets {[a[1] for a in acked]}")
    return read_confluent(conf, topic)


def read_confluent(conf, topic, start=0, count=N, timeout=30, until_eof=False):
    """Up to `count` records from partition 0 at `start`; with `until_eof` everything up to
    the end of the log (so that an extra record would show)."""
    c = Consumer({**conf, "group.id": f"sec-{topic}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": until_eof})
    try:
        c.assign([TopicPartition(topic, 0, start)])
        got = []
        deadline = time.time() + timeout
        while len(got) < count and time.time() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    if until_eof:
                        break
                    continue
                raise Fail(f"consumer error {m.error()}")
            got.append((m.offset(), m.key().decode(), m.value().decode(),
                        [(a, b.decode()) for a, b in (m.headers() or [])]))
        return got
    finally:
        c.close()


def run_kafka_python(broker, listener, ident, topic, recs):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka import TopicPartition as KTP
    conf = kafka_python_conf(broker, listener, ident)
    p = KafkaProducer(**conf, acks="all")
    try:
        futs = [p.send(topic, key=k.encode(), value=v.encode(), headers=[(a, b.encode()) for a, b in h],
                       partition=0) for k, v, h in recs]
        offs = [f.get(timeout=30).offset for f in futs]
    finally:
        p.close(timeout=10)
    check(offs == list(range(N)), f"acknowledged offsets {offs}")
    c = KafkaConsumer(**conf, enable_auto_commit=False, group_id=None, consumer_timeout_ms=20000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = []
        deadline = time.time() + 30
        while len(got) < N and time.time() < deadline:
            for batch in c.poll(timeout_ms=500).values():
                for m in batch:
                    got.append((m.offset, m.key.decode(), m.value.decode(),
                                [(a, b.decode()) for a, b in (m.headers or [])]))
        return got
    finally:
        c.close()


def kcat_args(broker, listener, ident):
    args = ["kcat"]
    for k, v in rdkafka_conf(broker, listener, ident, python=False).items():
        if k == "bootstrap.servers":
            args += ["-b", v]
        else:
            args += ["-X", f"{k}={v}"]
    return args


KCAT_NO_OIDC = ("kcat: Debian's librdkafka 2.0.2 is built without OIDC (no libcurl), and kcat has no "
                "other way to present a signed token")


def run_kcat(broker, listener, ident, topic, recs):
    if listener == "OAUTH":
        raise NotApplicable(KCAT_NO_OIDC)
    base = kcat_args(broker, listener, ident)
    hdrs = recs[0][2]
    check(all(r[2] == hdrs for r in recs), "kcat sets one header set per run")
    lines = "".join(f"{k}\t{v}\n" for k, v, _ in recs)
    r = subprocess.run(base + ["-P", "-t", topic, "-p", "0", "-K", "\t", "-X", "acks=all"]
                       + sum((["-H", f"{a}={b}"] for a, b in hdrs), []),
                       input=lines.encode(), capture_output=True, timeout=60)
    check(r.returncode == 0, f"kcat -P exit {r.returncode}: {r.stderr.decode(errors='replace')[-800:]}")
    r = subprocess.run(base + ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(N), "-e", "-J"],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, f"kcat -C exit {r.returncode}: {r.stderr.decode(errors='replace')[-800:]}")
    got = []
    for line in r.stdout.decode().splitlines():
        j = json.loads(line)
        h = j.get("headers") or []
        got.append((j["offset"], j["key"], j["payload"], [(h[i], h[i + 1]) for i in range(0, len(h), 2)]))
    return got


def run_java(broker, listener, ident, topic, recs, root):
    conf = java_conf(broker, listener, ident, os.path.join(root, f"java-{topic}.properties"))
    log4j = os.path.join(root, "client-log4j.properties")
    if not os.path.exists(log4j):
        with open(log4j, "w") as f:
            f.write(CLIENT_LOG4J)
    jvm = [f"-Dlog4j.configuration=file:{log4j}"]
    # ConsoleProducer: "headers<TAB>key<TAB>value", headers "k:v,k:v".
    lines = "".join(",".join(f"{a}:{b}" for a, b in h) + f"\t{k}\t{v}\n" for k, v, h in recs)
    r = kafka_tool("kafka.tools.ConsoleProducer", "--bootstrap-server", broker.address(listener),
                   "--topic", topic, "--producer.config", conf, "--request-required-acks", "all",
                   "--property", "parse.key=true", "--property", "parse.headers=true",
                   stdin=lines, extra_jvm=jvm)
    check(r.returncode == 0 and "ERROR" not in r.stderr, f"ConsoleProducer exit {r.returncode}: {r.stderr[-1500:]}")
    r = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                   broker.address(listener), "--topic", topic, "--partition", "0", "--offset", "earliest",
                   "--max-messages", str(N), "--timeout-ms", "30000", "--consumer.config", conf,
                   "--property", "print.offset=true", "--property", "print.headers=true",
                   "--property", "print.key=true", extra_jvm=jvm)
    check(r.returncode == 0, f"ConsoleConsumer exit {r.returncode}: {r.stderr[-1500:]}")
    got = []
    for line in r.stdout.splitlines():
        # "Offset:0<TAB>origin:java/ssl<TAB>key<TAB>value"
        off, hdrs, k, v = line.split("\t", 3)
        check(off.startswith("Offset:"), f"ConsoleConsumer line {line!r}")
        got.append((int(off[len("Offset:"):]), k, v,
                    [tuple(x.split(":", 1)) for x in hdrs.split(",")] if hdrs != "NO_HEADERS" else []))
    return got


def positive_cell(broker, certs, root, client, cell):
    listener, mechanism, client_cert = CELLS[cell]
    topic = f"sec-{client}-{cell}"
    create_topic(broker, topic)
    ident = Identity(certs, mechanism, cert="alice" if client_cert else None)
    recs = records_for(client, cell)
    want = [(i, k, v, h) for i, (k, v, h) in enumerate(recs)]
    t0 = time.time()
    if client == "confluent":
        got = run_confluent(broker, listener, ident, topic, recs)
    elif client == "kafka-python":
        got = run_kafka_python(broker, listener, ident, topic, recs)
    elif client == "kcat":
        got = run_kcat(broker, listener, ident, topic, recs)
    else:
        got = run_java(broker, listener, ident, topic, recs, root)
    check(got == want, f"read back through {listener}: {got!r}\n  expected {want!r}")
    # And the same bytes are in the log, as a PLAINTEXT reader sees it.
    plain = read_confluent({"bootstrap.servers": broker.address("PLAINTEXT")}, topic, count=N + 1, until_eof=True)
    check(plain == want, f"read back through PLAINTEXT: {plain!r}")
    return f"{N} records, offsets 0-{N - 1}, keys, values, header ({time.time() - t0:.1f}s)"


# ---------------------------------------------------------------------------------------------
# Negative cases


ENABLED = {"SASL_SSL": ("PLAIN", "SCRAM-SHA-512", "SCRAM-SHA-256"),
           "SASL_PLAINTEXT": ("PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"),
           "OAUTH": ("OAUTHBEARER",)}


def good_mechanism(listener, kw):
    """The mechanism the good client uses after a negative case: the case's own if the listener
    enables it, else PLAIN."""
    if listener not in ENABLED:
        return None
    m = kw.get("mechanism")
    return m if m in ENABLED[listener] else "PLAIN"


def good_client_still_works(broker, certs, listener, mechanism="PLAIN"):
    """A well-configured confluent-kafka client on `listener` writes one record and reads it back."""
    proto = LISTENERS[listener]
    ident = Identity(certs, mechanism if "SASL" in proto else None, cert="alice" if listener == "MTLS" else None)
    conf = rdkafka_conf(broker, listener, ident)
    value = f"after-negative-{time.time_ns()}"
    p = Producer({**conf, "acks": "all", "message.timeout.ms": 15000})
    res = []
    p.produce("sec-after-negative", key=listener.encode(), value=value.encode(), partition=0,
              on_delivery=lambda e, m: res.append((e, m.offset())))
    check(p.flush(20) == 0 and len(res) == 1 and res[0][0] is None, f"good client on {listener}: {res}")
    off = res[0][1]
    got = read_confluent(conf, "sec-after-negative", start=off, count=1, timeout=15)
    check(got == [(off, listener, value, [])], f"good client on {listener} read back {got}")
    return f"good client on {listener} then wrote and read offset {off}"


class _LogSink:
    """A logging.Logger stand-in for librdkafka's `logger`: keeps (seconds, line)."""

    def __init__(self, t0):
        self.t0 = t0
        self.lines = []

    def log(self, level, fmt, *args):
        self.lines.append((time.time() - self.t0, fmt % args if args else fmt))


def confluent_attempt(conf, bound=NEG_BOUND_S + 5):
    """A confluent-kafka producer sending one record. Returns (seconds, text): the first error
    other than _ALL_BROKERS_DOWN (error_cb or delivery report), or else, once every broker is
    down, librdkafka's first FAIL log line with it (how librdkafka reports a connection the
    broker closed: it keeps retrying)."""
    errs = []
    t0 = time.time()
    sink = _LogSink(t0)
    p = Producer({**conf, "error_cb": lambda e: errs.append((time.time() - t0, e)), "logger": sink,
                  "message.timeout.ms": int(bound * 1000), "reconnect.backoff.max.ms": 1000, "retries": 0})
    p.produce("sec-after-negative", value=b"must-not-arrive", partition=0,
              on_delivery=lambda e, m: errs.append((time.time() - t0, e)) if e else None)
    deadline = t0 + bound
    text = None
    while time.time() < deadline and text is None:
        p.poll(0.1)
        bad = [(t, e) for t, e in errs if e.code() != KafkaError._ALL_BROKERS_DOWN]
        down = [(t, e) for t, e in errs if e.code() == KafkaError._ALL_BROKERS_DOWN]
        fails = [(t, line) for t, line in sink.lines if "FAIL" in line]
        if bad:
            t, e = bad[0]
            text = f"{e.name()}: {e.str()}"
        elif down and fails:
            t = max(down[0][0], fails[0][0])
            text = f"{down[0][1].name()}: {down[0][1].str()} | log: {fails[0][1]}"
    p.purge()
    p.flush(1)
    if text is None:
        raise Fail(f"no error within {bound}s: {[(t, e.str()) for t, e in errs]}")
    return t, text


def kafka_python_attempt(conf, bootstrap_ms=3000):
    """A kafka-python producer. Its constructor bootstraps and retries a failed bootstrap
    connection until bootstrap_timeout_ms (then KafkaTimeoutError "Unable to bootstrap"); what
    went wrong is only in its log ("Bootstrap connection to ... failed: <exception>"). Returns
    (seconds to that first log line, "<log line> => <exception raised>")."""
    import logging
    from kafka import KafkaProducer
    t0 = time.time()
    seen = []

    class Grab(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                seen.append((time.time() - t0, record.getMessage()))
    handler = Grab()
    logger = logging.getLogger("kafka")
    logger.addHandler(handler)
    old_level, old_propagate = logger.level, logger.propagate
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        raised = "no exception"
        try:
            p = KafkaProducer(**conf, acks="all", bootstrap_timeout_ms=bootstrap_ms, max_block_ms=bootstrap_ms,
                              request_timeout_ms=int(NEG_BOUND_S * 1000), reconnect_backoff_max_ms=1000)
            try:
                p.send("sec-after-negative", value=b"must-not-arrive", partition=0).get(timeout=NEG_BOUND_S)
                raised = "no error: the record was acknowledged"
            finally:
                p.close(timeout=2)
        except Exception as e:  # noqa: BLE001 - the error is the result
            raised = f"{type(e).__name__}: {e}"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    # Distinct messages, in order, without the transport's addresses and the backoff.
    distinct = []
    for _, msg in seen:
        msg = re.sub(r"<Kafka\w*Transport \[[^]]*\]>: |<KafkaConnection [^>]*>: | \(backoff [\d.]+ secs\)", "", msg)
        if msg not in distinct and "not ready; waiting" not in msg:
            distinct.append(msg)
    failures = [t for t, m in seen if "fail" in m.lower() or "abort" in m.lower() or "error" in m.lower()]
    t = failures[0] if failures else time.time() - t0
    return t, " | ".join(distinct[:6]) + f" => {raised}"


def kcat_attempt(args, bound=NEG_BOUND_S + 5):
    """`kcat -L` (metadata): kcat retries on its own, so the result is its first FAIL / ERROR
    line on stderr and when it came; kcat is then stopped."""
    t0 = time.time()
    proc = subprocess.Popen(args + ["-L", "-m", str(int(bound))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    lines = []

    def read():
        for raw in proc.stderr:
            lines.append((time.time() - t0, raw.decode(errors="replace").rstrip()))
    th = threading.Thread(target=read, daemon=True)
    th.start()
    deadline = t0 + bound
    first = None
    while time.time() < deadline and first is None:
        first = next(((t, l) for t, l in lines if "|FAIL|" in l or "ERROR" in l), None)
        if first is None and proc.poll() is not None and not th.is_alive():
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    if first is None:
        raise Fail(f"kcat reported nothing within {bound}s (exit {proc.returncode}): {lines[-3:]}")
    # "%3|<time>|FAIL|rdkafka#producer-1| [thrd:...]: <broker>: <message>"
    t, line = first
    return t, re.sub(r"^%(\d)\|[\d.]+\|", r"%\1|", line)


def java_attempt(broker, listener, ident, root, name):
    conf = java_conf(broker, listener, ident, os.path.join(root, f"java-neg-{name}.properties"))
    log4j = os.path.join(root, "client-log4j.properties")
    if not os.path.exists(log4j):
        with open(log4j, "w") as f:
            f.write(CLIENT_LOG4J)
    t0 = time.time()
    r = kafka_tool("kafka.tools.ConsoleProducer", "--bootstrap-server", broker.address(listener),
                   "--topic", "sec-after-negative", "--producer.config", conf,
                   "--producer-property", "max.block.ms=5000", "--producer-property", "delivery.timeout.ms=5000",
                   "--producer-property", "request.timeout.ms=4000", "--producer-property", "linger.ms=0",
                   stdin="must-not-arrive\n", extra_jvm=[f"-Dlog4j.configuration=file:{log4j}"], timeout=60)
    return time.time() - t0, r.returncode, r.stdout + r.stderr


def api_versions_request():
    body = b""  # ApiVersions v0: empty body
    header = struct.pack(">hhi", 18, 0, 42) + struct.pack(">h", 8) + b"sec-test"
    req = header + body
    return struct.pack(">i", len(req)) + req


def raw_plaintext_to_tls_port(broker, listener):
    """An ApiVersions request in plaintext on a TLS port: the broker must close the connection
    (no Kafka response) within the bound."""
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=NEG_BOUND_S) as s:
        s.sendall(api_versions_request())
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            raise Fail(f"connection still open after {NEG_BOUND_S}s (got {data[:40]!r})")
        except ConnectionResetError:
            pass
    el = time.time() - t0
    check(el < NEG_BOUND_S, f"closed only after {el:.1f}s")
    # What came back, if anything, must not be a Kafka ApiVersions response (correlation id 42).
    check(not (len(data) >= 8 and struct.unpack(">i", data[4:8])[0] == 42),
          f"the TLS port answered a plaintext ApiVersions: {data[:40]!r}")
    return f"connection closed after {el:.2f}s, {len(data)} bytes back" + (
        f" (a TLS alert record: {data[:7].hex()})" if data[:1] == b"\x15" else "")


def raw_tls_to_plaintext_port(broker, certs):
    """A TLS handshake on the PLAINTEXT port: must fail within the bound."""
    ctx = ssl.create_default_context(cafile=certs.p("ca.pem"))
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", broker.ports["PLAINTEXT"]), timeout=NEG_BOUND_S) as s:
        try:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                raise Fail(f"TLS handshake succeeded on PLAINTEXT: {t.version()}")
        except socket.timeout:
            raise Fail(f"TLS handshake neither failed nor finished within {NEG_BOUND_S}s")
        except (ssl.SSLError, ConnectionError) as e:
            err = f"{type(e).__name__}: {e}"
    el = time.time() - t0
    check(el < NEG_BOUND_S, f"handshake failed only after {el:.1f}s")
    return f"handshake failed after {el:.2f}s: {err}"


def raw_mtls(broker, certs, cert):
    """A TLS 1.2 and a TLS 1.3 handshake to MTLS with `cert` (None: no certificate); with
    TLS 1.3 the client's handshake completes before the server checked its certificate, so an
    ApiVersions request is sent and the failure comes on the read."""
    outcomes = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=certs.p("ca.pem"))
        ctx.minimum_version = ctx.maximum_version = version
        if cert:
            ctx.load_cert_chain(certs.p(f"{cert}.crt"), certs.p(f"{cert}.key"))
        t0 = time.time()
        err = None
        with socket.create_connection(("127.0.0.1", broker.ports["MTLS"]), timeout=NEG_BOUND_S) as s:
            try:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                    t.sendall(api_versions_request())
                    data = t.recv(65536)
                    check(not data, f"{version.name}: the broker answered ({data[:20]!r})")
                    err = "connection closed"
            except socket.timeout:
                raise Fail(f"{version.name}: neither refused nor answered within {NEG_BOUND_S}s")
            except (ssl.SSLError, ConnectionError) as e:
                err = f"{type(e).__name__}: {getattr(e, 'reason', None) or e}"
        el = time.time() - t0
        check(el < NEG_BOUND_S, f"{version.name}: refused only after {el:.1f}s")
        outcomes.append(f"{version.name.replace('TLSv', 'TLS ').replace('_', '.')}: {err} ({el:.2f}s)")
    return "; ".join(outcomes)


class RawKafka:
    """A Kafka connection on a plain (or TLS) socket, for SaslHandshake v1 / SaslAuthenticate v1."""

    def __init__(self, broker, listener, certs):
        self.sock = socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=NEG_BOUND_S)
        if "SSL" in LISTENERS[listener]:
            ctx = ssl.create_default_context(cafile=certs.p("ca.pem"))
            self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.corr = 0

    def close(self):
        self.sock.close()

    def call(self, api_key, version, body):
        self.corr += 1
        req = struct.pack(">hhi", api_key, version, self.corr) + _kstr("sec-raw") + body
        self.sock.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", self._exact(4))[0]
        resp = self._exact(size)
        check(struct.unpack(">i", resp[:4])[0] == self.corr, "correlation id")
        return resp[4:]

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the broker")
            buf += chunk
        return buf

    def handshake(self, mechanism):
        """SaslHandshake v1: (error code, [enabled mechanisms])."""
        r = self.call(17, 1, _kstr(mechanism))
        err, n = struct.unpack(">hi", r[:6])
        pos, mechs = 6, []
        for _ in range(n):
            ln = struct.unpack(">h", r[pos:pos + 2])[0]
            mechs.append(r[pos + 2:pos + 2 + ln].decode())
            pos += 2 + ln
        return err, mechs

    def authenticate(self, data):
        """SaslAuthenticate v1: (error code, error message, auth bytes)."""
        r = self.call(36, 1, struct.pack(">i", len(data)) + data)
        err, ln = struct.unpack(">hh", r[:4])
        msg = r[4:4 + ln].decode() if ln >= 0 else None
        pos = 4 + max(ln, 0)
        bl = struct.unpack(">i", r[pos:pos + 4])[0]
        return err, msg, r[pos + 4:pos + 4 + max(bl, 0)]

    def closed_within(self, seconds):
        """Seconds until the broker closed the connection (None if still open)."""
        t0 = time.time()
        self.sock.settimeout(seconds)
        try:
            while True:
                if not self.sock.recv(4096):
                    return time.time() - t0
        except socket.timeout:
            return None
        except (ConnectionError, ssl.SSLError):
            return time.time() - t0


def _kstr(v):
    b = v.encode()
    return struct.pack(">h", len(b)) + b


def raw_sasl(broker, certs, listener, mechanism, user, password):
    """One SASL exchange by hand. Returns (step, error code, message, mechanisms) where step is
    "handshake", "authenticate#1" (PLAIN, SCRAM client-first) or "authenticate#2" (SCRAM
    client-final), or ("ok", 0, None, mechanisms) when authenticated (SCRAM: the server
    signature checked)."""
    import hashlib
    import hmac
    conn = RawKafka(broker, listener, certs)
    try:
        err, mechs = conn.handshake(mechanism)
        if err:
            return "handshake", err, None, mechs, conn.closed_within(NEG_BOUND_S)
        if mechanism == "PLAIN":
            err, msg, _ = conn.authenticate(f"\0{user}\0{password}".encode())
            return ("authenticate#1" if err else "ok"), err, msg, mechs, conn.closed_within(NEG_BOUND_S) if err else None
        if mechanism == "OAUTHBEARER":
            # `password` is the token. A refused one comes back as a challenge (RFC 7628), which
            # the client acknowledges with %x01 before the exchange fails.
            err, msg, challenge = conn.authenticate(f"n,,\x01auth=Bearer {password}\x01\x01".encode())
            if err:
                return "authenticate#1", err, msg, mechs, conn.closed_within(NEG_BOUND_S)
            if not challenge:
                return "ok", 0, None, mechs, None
            check(challenge == OAUTH_INVALID_TOKEN.encode(), f"OAUTHBEARER challenge {challenge!r}")
            err, msg, _ = conn.authenticate(b"\x01")
            return "authenticate#2", err, msg, mechs, conn.closed_within(NEG_BOUND_S) if err else None
        digest = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}[mechanism]
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = f"n={user},r={nonce}"
        err, msg, server_first = conn.authenticate(f"n,,{bare}".encode())
        if err:
            return "authenticate#1", err, msg, mechs, conn.closed_within(NEG_BOUND_S)
        fields = dict(f.split("=", 1) for f in server_first.decode().split(","))
        check(fields["r"].startswith(nonce), f"server nonce {fields['r']!r}")
        salted = hashlib.pbkdf2_hmac(digest().name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", digest).digest()
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(digest(client_key).digest(), auth_message, digest).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        err, msg, server_final = conn.authenticate(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
        if err:
            return "authenticate#2", err, msg, mechs, conn.closed_within(NEG_BOUND_S)
        server_key = hmac.new(salted, b"Server Key", digest).digest()
        want = base64.b64encode(hmac.new(server_key, auth_message, digest).digest()).decode()
        check(server_final.decode() == f"v={want}", f"server signature {server_final!r}")
        return "ok", 0, None, mechs, None
    finally:
        conn.close()


OAUTH_INVALID_TOKEN = '{"status":"invalid_token"}'

# What Kafka 3.9.2 answers, on the wire, per SASL negative case: (step, error code, message).
RAW_SASL = {
    "neg-jwks-expired-token": ("authenticate#2", 58, OAUTH_INVALID_TOKEN),
    "neg-jwks-key-not-in-jwks": ("authenticate#2", 58, OAUTH_INVALID_TOKEN),
    "neg-jwks-wrong-audience": ("authenticate#2", 58, OAUTH_INVALID_TOKEN),
    "neg-jwks-unsecured-token": ("authenticate#2", 58, OAUTH_INVALID_TOKEN),
    "neg-plain-wrong-password": ("authenticate#1", 58, "Authentication failed: Invalid username or password"),
    "neg-plain-unknown-user": ("authenticate#1", 58, "Authentication failed: Invalid username or password"),
    "neg-scram512-wrong-password": ("authenticate#2", 58, "Authentication failed during authentication due to "
                                    "invalid credentials with SASL mechanism SCRAM-SHA-512"),
    "neg-scram256-wrong-password": ("authenticate#2", 58, "Authentication failed during authentication due to "
                                    "invalid credentials with SASL mechanism SCRAM-SHA-256"),
    "neg-scram512-unknown-user": ("authenticate#1", 58, "Authentication failed during authentication due to "
                                  "invalid credentials with SASL mechanism SCRAM-SHA-512"),
    "neg-mechanism-not-enabled": ("handshake", 33, None),
    "neg-oauthbearer-not-enabled": ("handshake", 33, None),
}


def raw_secret(listener, mechanism, user, kw):
    """The password, or on the OAUTH listener the token, a raw exchange presents."""
    if listener == "OAUTH" and mechanism == "OAUTHBEARER":
        return IDP.token(user, kw.get("token", "good"))
    return kw.get("password", USERS.get(user))


def raw_sasl_case(broker, certs, name, listener, kw):
    mech = kw["mechanism"]
    t0 = time.time()
    user = kw.get("user", "alice")
    step, err, msg, mechs, closed = raw_sasl(broker, certs, listener, mech, user,
                                             raw_secret(listener, mech, user, kw))
    el = time.time() - t0
    want_step, want_err, want_msg = RAW_SASL[name]
    got = f"{step}: error {err}" + (f" {msg!r}" if msg else "") + f", enabled {mechs}"
    check(step == want_step and err == want_err, f"expected {want_step} error {want_err}, got {got}")
    check(mechs == list(ENABLED[listener]), f"SaslHandshake mechanisms {mechs}, expected {list(ENABLED[listener])}")
    check(closed is not None, f"connection still open {NEG_BOUND_S}s after {got}")
    check(el < NEG_BOUND_S, f"took {el:.1f}s")
    note = f"{got}; connection closed {closed:.2f}s later ({el:.2f}s in all)"
    if want_msg and msg != want_msg:
        note += f" [differs from Kafka 3.9's message {want_msg!r}]"
    # Control: the same exchange with the right credentials and an enabled mechanism.
    good = mech if mech in ENABLED[listener] else "PLAIN"
    step, err, msg, _, _ = raw_sasl(broker, certs, listener, good, "alice", raw_secret(listener, good, "alice", {}))
    check((step, err) == ("ok", 0), f"control: alice with {good} got {step} error {err} {msg!r}")
    return note + f"; control: alice with {good} authenticated" + (" (server signature checked)" if "SCRAM" in good else "")


def raw_jwks_new_key(broker, certs):
    """The provider starts publishing k2. The broker fetched the JWKS when it started and its
    refresh interval is an hour, so the first k2 token must be refused; the unknown key id
    makes the broker fetch the JWKS at once, and a later attempt must authenticate."""
    check("k2" not in IDP.published, "k2 is already published")
    fetches = IDP.jwks_fetches
    IDP.published.append("k2")
    t0 = time.time()
    attempts = []

    def accepted():
        step, err, msg, _, _ = raw_sasl(broker, certs, "OAUTH", "OAUTHBEARER", "alice", IDP.token("alice", "k2"))
        attempts.append((round(time.time() - t0, 2), step, err))
        return step == "ok"
    eventually("a token signed by the newly published k2 to authenticate", NEG_BOUND_S, accepted, 0.3)
    check(attempts[0][1:] == ("authenticate#2", 58), f"the first k2 attempt was not refused: {attempts}")
    check(IDP.jwks_fetches > fetches, "the broker did not fetch the JWKS again")
    return (f"first k2 token refused, accepted after {attempts[-1][0]:.2f}s ({len(attempts)} attempts); "
            f"the broker fetched the JWKS {IDP.jwks_fetches - fetches} more time(s)")


# Each negative case: (name, listener, Identity kwargs); expectations per client in EXPECT.
NEGATIVE = [
    ("neg-plain-wrong-password", "SASL_SSL", dict(mechanism="PLAIN", password="wrong")),
    ("neg-scram512-wrong-password", "SASL_SSL", dict(mechanism="SCRAM-SHA-512", password="wrong")),
    ("neg-scram256-wrong-password", "SASL_PLAINTEXT", dict(mechanism="SCRAM-SHA-256", password="wrong")),
    ("neg-plain-unknown-user", "SASL_PLAINTEXT", dict(mechanism="PLAIN", user="mallory", password="x")),
    ("neg-scram512-unknown-user", "SASL_SSL", dict(mechanism="SCRAM-SHA-512", user="mallory", password="x")),
    ("neg-mechanism-not-enabled", "SASL_PLAINTEXT", dict(mechanism="SCRAM-SHA-512")),
    ("neg-oauthbearer-not-enabled", "SASL_SSL", dict(mechanism="OAUTHBEARER")),
    ("neg-plaintext-client-on-ssl", "SSL", dict(protocol="PLAINTEXT")),
    ("neg-tls-client-on-plaintext", "PLAINTEXT", dict(protocol="SSL")),
    ("neg-mtls-rogue-cert", "MTLS", dict(cert="rogue")),
    ("neg-mtls-no-cert", "MTLS", dict(cert=None)),
    ("neg-mtls-expired-cert", "MTLS", dict(cert="expired")),
    ("neg-untrusted-ca", "SSL", dict(ca="other-ca.pem")),
    ("neg-jwks-expired-token", "OAUTH", dict(mechanism="OAUTHBEARER", token="expired")),
    ("neg-jwks-key-not-in-jwks", "OAUTH", dict(mechanism="OAUTHBEARER", token="rogue")),
    ("neg-jwks-wrong-audience", "OAUTH", dict(mechanism="OAUTHBEARER", token="audience")),
    ("neg-jwks-unsecured-token", "OAUTH", dict(mechanism="OAUTHBEARER", token="unsecured")),
    # Not a refusal in the end: the provider publishes k2, and a token signed by it must be
    # accepted after the broker fetches the JWKS on seeing the unknown key id (raw only).
    ("neg-jwks-new-key", "OAUTH", dict(mechanism="OAUTHBEARER", token="k2")),
]

# (case, client) -> (required, kafka): `required` must match the client's report (re.S | re.I):
# the error class / code and what the client must be told; `kafka` is what Kafka 3.9.2 gives
# exactly (alert numbers, the broker's error message), reported as "pass~" (a pass that differs
# from Kafka) when it does not match, never a failure.
RD_PLAIN = (r"SASL authentication error: Authentication failed", r"Authentication failed: Invalid username or password")


def _rd_scram(mech):
    return (r"SASL authentication error: Authentication failed",
            r"Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech)


def _rd_mech(mech, enabled):
    return (rf"SASL {mech} mechanism handshake failed: Broker: Unsupported SASL mechanism: "
            rf"broker's supported mechanisms: {enabled}", None)


def _java_scram(mech):
    return (r"SaslAuthenticationException: Authentication failed",
            r"SaslAuthenticationException: Authentication failed during authentication due to invalid "
            r"credentials with SASL mechanism " + mech)


def _java_mech(mech, enabled):
    return (rf"UnsupportedSaslMechanismException: Client SASL mechanism '{mech}' not enabled in the server, "
            rf"enabled mechanisms are \[{enabled}\]", None)


RD_ALERT = r"Receive failed: .*alert .*SSL alert number \d+"
JAVA_ALERT = r"SslAuthenticationException: .*Received fatal alert: \w+"
# kafka-python 3.0.12 often loses the broker's error response: Kafka closes the connection right
# after a failed SaslHandshake / SaslAuthenticate, and kafka-python then mostly logs only
# "socket disconnected" (sometimes the real SaslAuthenticationFailedError). Either is accepted;
# the other three clients check the error itself.
KP_SASL = r"(SaslAuthenticationFailedError: .*Authentication failed|Abort \(KafkaConnectionError: socket disconnected\))"
EXPECT = {}
for _c in ("confluent", "kcat"):
    _code = {"confluent": "^_AUTHENTICATION: .*"}.get(_c, "")
    EXPECT[("neg-plain-wrong-password", _c)] = (_code + RD_PLAIN[0], RD_PLAIN[1])
    EXPECT[("neg-plain-unknown-user", _c)] = (_code + RD_PLAIN[0], RD_PLAIN[1])
    for _case, _m in (("neg-scram512-wrong-password", "SCRAM-SHA-512"), ("neg-scram256-wrong-password", "SCRAM-SHA-256"),
                      ("neg-scram512-unknown-user", "SCRAM-SHA-512")):
        EXPECT[(_case, _c)] = (_code + _rd_scram(_m)[0], _rd_scram(_m)[1])
    EXPECT[("neg-mechanism-not-enabled", _c)] = (_code + _rd_mech("SCRAM-SHA-512", "PLAIN,SCRAM-SHA-256,OAUTHBEARER")[0], None)
    EXPECT[("neg-oauthbearer-not-enabled", _c)] = (_code + _rd_mech("OAUTHBEARER", "PLAIN,SCRAM-SHA-512,SCRAM-SHA-256")[0], None)
    # Under load librdkafka may see the plaintext side's close as an EOF inside the handshake
    # instead (the same refusal, told differently): accepted, shown as pass~.
    EXPECT[("neg-tls-client-on-plaintext", _c)] = (
        {"confluent": r"^_TRANSPORT: .*"}.get(_c, "")
        + r"(SSL handshake failed|SSL connection closed by peer|unexpected eof while reading .*SSL_HANDSHAKE)",
        r"(SSL handshake failed|SSL connection closed by peer)")
    EXPECT[("neg-mtls-rogue-cert", _c)] = ({"confluent": "^_TRANSPORT: .*"}.get(_c, "") + RD_ALERT,
                                           r"SSL alert number (42|46)")
    EXPECT[("neg-mtls-no-cert", _c)] = ({"confluent": "^_TRANSPORT: .*"}.get(_c, "") + RD_ALERT, r"SSL alert number 42")
    EXPECT[("neg-mtls-expired-cert", _c)] = ({"confluent": "^_TRANSPORT: .*"}.get(_c, "") + RD_ALERT,
                                             r"SSL alert number 46")
    # (kcat's librdkafka 2.0.2 prefixes "SSL handshake failed: " only sometimes; confluent-kafka
    # under load may report it as _TRANSPORT: the same verify failure, shown as pass~)
    EXPECT[("neg-untrusted-ca", _c)] = ({"confluent": "^(_SSL: .*SSL handshake failed: |_TRANSPORT: )"}.get(_c, "") +
                                        r".*certificate verify failed",
                                        {"confluent": "^_SSL: .*SSL handshake failed: "}.get(_c))
# librdkafka gets no error for a plaintext connection the TLS port closes, only a log line (and
# confluent-kafka's error_cb _ALL_BROKERS_DOWN); it retries on its own.
EXPECT[("neg-plaintext-client-on-ssl", "confluent")] = (
    r"^_ALL_BROKERS_DOWN: \d+/\d+ brokers are down \| log: FAIL .*Disconnected", r"connection closed by peer")
EXPECT[("neg-plaintext-client-on-ssl", "kcat")] = (
    r"\|FAIL\|.*Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol", None)

EXPECT[("neg-plain-wrong-password", "java")] = (
    r"SaslAuthenticationException: Authentication failed", r"Authentication failed: Invalid username or password")
EXPECT[("neg-plain-unknown-user", "java")] = EXPECT[("neg-plain-wrong-password", "java")]
EXPECT[("neg-scram512-wrong-password", "java")] = _java_scram("SCRAM-SHA-512")
EXPECT[("neg-scram256-wrong-password", "java")] = _java_scram("SCRAM-SHA-256")
EXPECT[("neg-scram512-unknown-user", "java")] = _java_scram("SCRAM-SHA-512")
EXPECT[("neg-mechanism-not-enabled", "java")] = _java_mech("SCRAM-SHA-512", "PLAIN, SCRAM-SHA-256, OAUTHBEARER")
EXPECT[("neg-oauthbearer-not-enabled", "java")] = _java_mech("OAUTHBEARER", "PLAIN, SCRAM-SHA-512, SCRAM-SHA-256")
# The Java client gets no error either way round, it retries until max.block.ms (5 s here).
# Plaintext on the TLS port: Kafka answers with a TLS alert, 15 03 03 00 02 02 50, which the
# client reads as a 352,518,912-byte response size: OutOfMemoryError in its network thread.
EXPECT[("neg-plaintext-client-on-ssl", "java")] = (
    r"TimeoutException: Topic sec-after-negative not present in metadata after 5000 ms",
    r"OutOfMemoryError: Java heap space")
EXPECT[("neg-tls-client-on-plaintext", "java")] = (
    r"TimeoutException: Topic sec-after-negative not present in metadata after 5000 ms", None)
EXPECT[("neg-mtls-rogue-cert", "java")] = (JAVA_ALERT, r"Received fatal alert: bad_certificate")
EXPECT[("neg-mtls-no-cert", "java")] = (JAVA_ALERT, r"Received fatal alert: bad_certificate")
EXPECT[("neg-mtls-expired-cert", "java")] = (JAVA_ALERT, r"Received fatal alert: certificate_unknown")
EXPECT[("neg-untrusted-ca", "java")] = (r"SslAuthenticationException: SSL handshake failed.*PKIX path building failed", None)

EXPECT[("neg-plain-wrong-password", "kafka-python")] = (KP_SASL, None)
EXPECT[("neg-plain-unknown-user", "kafka-python")] = EXPECT[("neg-plain-wrong-password", "kafka-python")]
for _case, _m in (("neg-scram512-wrong-password", "SCRAM-SHA-512"), ("neg-scram256-wrong-password", "SCRAM-SHA-256"),
                  ("neg-scram512-unknown-user", "SCRAM-SHA-512")):
    EXPECT[(_case, "kafka-python")] = (KP_SASL, None)
KP_MECH = r"(UnsupportedSaslMechanism|Abort \(KafkaConnectionError: socket disconnected\))"
EXPECT[("neg-mechanism-not-enabled", "kafka-python")] = (KP_MECH, None)
EXPECT[("neg-oauthbearer-not-enabled", "kafka-python")] = (KP_MECH, None)
# kafka-python reads Kafka's TLS alert as a frame length ("InvalidReceiveError: Invalid frame
# length: 352518912") or, when the close wins, logs only "socket disconnected": both seen on Kafka.
EXPECT[("neg-plaintext-client-on-ssl", "kafka-python")] = (r"Bootstrap connection to bootstrap-0 failed", None)
EXPECT[("neg-tls-client-on-plaintext", "kafka-python")] = (r"Handshake failed", None)
EXPECT[("neg-mtls-rogue-cert", "kafka-python")] = (r"KafkaConnectionError: \[SSL: \w*ALERT\w*\]",
                                                   r"SSLV3_ALERT_(CERTIFICATE_UNKNOWN|BAD_CERTIFICATE)")
EXPECT[("neg-mtls-no-cert", "kafka-python")] = (r"KafkaConnectionError: \[SSL: \w*ALERT\w*\]", r"SSLV3_ALERT_BAD_CERTIFICATE")
EXPECT[("neg-mtls-expired-cert", "kafka-python")] = (r"KafkaConnectionError: \[SSL: \w*ALERT\w*\]",
                                                     r"SSLV3_ALERT_CERTIFICATE_UNKNOWN")
EXPECT[("neg-untrusted-ca", "kafka-python")] = (r"CERTIFICATE_VERIFY_FAILED", None)

# The OAUTH listener's refused tokens: Kafka's challenge text, as every client reports it.
for _case in ("neg-jwks-expired-token", "neg-jwks-key-not-in-jwks", "neg-jwks-wrong-audience",
              "neg-jwks-unsecured-token"):
    EXPECT[(_case, "confluent")] = (r'^_AUTHENTICATION: .*SASL authentication error: \{"status":"invalid_token"\}', None)
    EXPECT[(_case, "kafka-python")] = (KP_SASL.replace("Authentication failed", ".*"), None)
    EXPECT[(_case, "java")] = (r'SaslAuthenticationException: \{"status":"invalid_token"\}', None)

NEG_CLIENTS = ["raw", "confluent", "kafka-python", "kcat", "java"]


def negative_case(broker, certs, root, name, listener, kw, client):
    ident = Identity(certs, **kw)
    if client == "raw":
        if name == "neg-plaintext-client-on-ssl":
            return raw_plaintext_to_tls_port(broker, listener)
        if name == "neg-tls-client-on-plaintext":
            return raw_tls_to_plaintext_port(broker, certs)
        if name.startswith("neg-mtls-"):
            return raw_mtls(broker, certs, kw.get("cert"))
        if name == "neg-untrusted-ca":
            ctx = ssl.create_default_context(cafile=certs.p("other-ca.pem"))
            t0 = time.time()
            with socket.create_connection(("127.0.0.1", broker.ports[listener]), timeout=NEG_BOUND_S) as s:
                try:
                    ctx.wrap_socket(s, server_hostname="127.0.0.1")
                    raise Fail("handshake succeeded with an untrusted CA")
                except ssl.SSLCertVerificationError as e:
                    # 19: the broker sends its whole chain (the CA too, as its PEM key store
                    # holds it), so the client finds a self-signed root it does not trust.
                    check(e.verify_code == 19, f"verify code {e.verify_code}: {e}")
                    return f"{e.verify_message} (X509 verify code {e.verify_code}) after {time.time() - t0:.2f}s"
        if name in RAW_SASL:
            return raw_sasl_case(broker, certs, name, listener, kw)
        if name == "neg-jwks-new-key":
            return raw_jwks_new_key(broker, certs)
        raise NotApplicable(f"no raw check for {name}")
    if name == "neg-jwks-new-key":
        raise NotApplicable("raw only (it changes the provider's keys)")
    if listener == "OAUTH" and client == "kcat":
        raise NotApplicable(KCAT_NO_OIDC)
    if client == "java" and kw.get("token") in ("expired", "unsecured"):
        # Observed with Kafka 3.9: "Current clock ... is later than expiry" / "Malformed JWT
        # provided; expected three sections".
        raise NotApplicable("the Java client checks the token it gets from the provider and refuses "
                            "to use an expired or unsigned one: the broker never sees it")
    if client == "confluent":
        return confluent_attempt(rdkafka_conf(broker, listener, ident))
    if client == "kafka-python":
        return kafka_python_attempt(kafka_python_conf(broker, listener, ident))
    if client == "kcat":
        return kcat_attempt(kcat_args(broker, listener, ident))
    if client == "java":
        t, rc, out = java_attempt(broker, listener, ident, root, name)
        lines = [l for l in out.splitlines() if "Exception" in l or "ERROR" in l or "Error" in l]
        return t, f"exit {rc}: " + " | ".join(lines[:6])[:1500]
    raise NotApplicable(client)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--broker", help="gregor binary")
    g.add_argument("--kafka", action="store_true", help="Apache Kafka 3.9.2 (ZooKeeper mode)")
    ap.add_argument("--zookeeper", action="store_true", help="gregor on a real ZooKeeper")
    ap.add_argument("--only", default="")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--show-config", action="store_true", help="print server.properties")
    ap.add_argument("--no-encrypted-key", action="store_true",
                    help="the MTLS listener's key unencrypted too (no ssl.key.password)")
    ap.add_argument("--observe", action="store_true", help="print every negative outcome in full")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    if args.kafka or args.broker is None:
        fetch_kafka()
    elif not os.path.isdir(KAFKA_LIB):
        fetch_kafka()  # ConfigCommand and the console tools come from the 3.9 jars either way

    who = {n for n in only if n in CLIENTS or n == "raw"}
    what = only - who

    def selected(name, client, half):
        return (not who or client in who) and (not what or name in what or half in what)

    root = tempfile.mkdtemp(prefix="gregor-security-")
    broker = None
    results = {}   # (row, column) -> (status, note)
    failed = 0

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    t_start = time.time()
    try:
        certs = Certs(os.path.join(root, "certs"))
        global IDP
        IDP = IdentityProvider(os.path.join(root, "idp"), certs)
        # Every process started from here on (brokers, Java tools) trusts the provider.
        os.environ.update(system_trust_env(certs))
        broker = Broker(args, root, certs, IDP)
        up = broker.wait_ready()
        print(f"{broker.kind} serving on {', '.join(f'{n} {p}' for n, p in broker.ports.items())} "
              f"after {up:.1f}s ({root})", flush=True)
        if args.show_config:
            print(open(broker.props).read(), flush=True)
        scram_needed = any(selected(c, cl, "positive") for c in CELLS if "scram" in c for cl in CLIENTS) or any(
            selected(n, cl, "negative") for n, _, kw in NEGATIVE if "scram" in n for cl in NEG_CLIENTS)
        if scram_needed:
            try:
                for note in create_scram_users(broker):
                    results[("setup", "scram-users")] = ("pass", note)
            except Exception as e:  # noqa: BLE001 - recorded; the SCRAM cells will fail too
                failed += 1
                results[("setup", "scram-users")] = ("FAIL", f"{type(e).__name__}: {e}"[:1500])
            print(f"{results[('setup', 'scram-users')][0]:4} SCRAM users with Kafka's ConfigCommand: "
                  f"{results[('setup', 'scram-users')][1]}", flush=True)
        create_topic(broker, "sec-after-negative")

        for cell in CELLS:
            for client in CLIENTS:
                if not selected(cell, client, "positive"):
                    continue
                try:
                    note = positive_cell(broker, certs, root, client, cell)
                    results[(client, cell)] = ("pass", note)
                except NotApplicable as e:
                    results[(client, cell)] = ("n/a", str(e))
                except Exception as e:  # noqa: BLE001 - recorded as FAIL
                    failed += 1
                    results[(client, cell)] = ("FAIL", f"{type(e).__name__}: {e}"[:1500])
                    traceback.print_exc()
                st, note = results[(client, cell)]
                print(f"{st:4} {client:12} {cell:28} {note}", flush=True)

        for name, listener, kw in NEGATIVE:
            for client in NEG_CLIENTS:
                if not selected(name, client, "negative"):
                    continue
                differs = False
                try:
                    out = negative_case(broker, certs, root, name, listener, kw, client)
                    if isinstance(out, tuple):
                        t, text = out
                        want = EXPECT.get((name, client))
                        if args.observe or want is None:
                            print(f"OBSERVED {name} {client} {t:.2f}s: {text}", flush=True)
                        check(t < NEG_BOUND_S, f"refused only after {t:.1f}s: {text}")
                        check(want is not None, f"no expectation recorded; observed: {text}")
                        required, kafka = want
                        check(re.search(required, text, re.S | re.I), f"expected /{required}/, got: {text}")
                        note = f"{t:.2f}s: {text}"
                        if kafka and not re.search(kafka, text, re.S | re.I):
                            note += f" [differs from Kafka 3.9, which gives /{kafka}/]"
                            differs = True
                    else:
                        note = out
                    note += "; " + good_client_still_works(broker, certs, listener, good_mechanism(listener, kw))
                    results[(name, client)] = ("pass~" if differs else "pass", note)
                except NotApplicable as e:
                    results[(name, client)] = ("n/a", str(e))
                except Exception as e:  # noqa: BLE001 - recorded as FAIL
                    failed += 1
                    results[(name, client)] = ("FAIL", f"{type(e).__name__}: {e}"[:1500])
                st, note = results[(name, client)]
                print(f"{st:4} {name:30} {client:12} {note}", flush=True)
    except BaseException as e:  # noqa: BLE001 - setup failures, Ctrl-C
        failed += 1
        print(f"FAIL setup/run: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc()
    finally:
        if failed and broker:
            print(f"--- broker log tail ---\n{broker.tail()}", flush=True)
        if broker:
            broker.close()
        if IDP:
            IDP.close()
        print_matrix(results)
        print(f"{sum(1 for s, _ in results.values() if s.startswith('pass'))} passed, {failed} failed, "
              f"{sum(1 for s, _ in results.values() if s == 'n/a')} n/a in {time.time() - t_start:.0f}s")
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failed or not results else 0)


def print_matrix(results):
    rows = [c for c in CLIENTS if any((c, cell) in results for cell in CELLS)]
    cols = [cell for cell in CELLS if any((c, cell) in results for c in CLIENTS)]
    if rows:
        w = max(len(c) for c in cols) + 2
        print("\n" + "client".ljust(14) + "".join(c.ljust(w) for c in cols))
        for r in rows:
            print(r.ljust(14) + "".join(results.get((r, c), ("-", ""))[0].ljust(w) for c in cols))
    negs = [n for n, _, _ in NEGATIVE if any((n, c) in results for c in NEG_CLIENTS)]
    if negs:
        print("\n" + "negative case".ljust(32) + "".join(c.ljust(14) for c in NEG_CLIENTS))
        for n in negs:
            print(n.ljust(32) + "".join(results.get((n, c), ("-", ""))[0].ljust(14) for c in NEG_CLIENTS))
    if any(st == "pass~" for st, _ in results.values()):
        print("  pass~: the client got the required error, but not Kafka 3.9's exact text / alert")
    notes = [(k, v) for k, v in results.items() if v[0] != "pass"]
    for (a, b), (st, note) in notes:
        print(f"  {st} {a} x {b}: {note}")


if __name__ == "__main__":
    main()
