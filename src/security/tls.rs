//! TLS listeners: the rustls server configuration of one SSL or SASL_SSL listener, built from
//! Kafka's `ssl.*` keys (each overridable per listener as `listener.name.<l>.ssl.*`), and the
//! principal of a client certificate (`ssl.principal.mapping.rules`).
//!
//! Keystores and truststores are PEM (`ssl.keystore.type=PEM`, `ssl.truststore.type=PEM`): a
//! file (`ssl.keystore.location`: the private key and the certificate chain in one file, as
//! Kafka reads it) or inline values (`ssl.keystore.key`, `ssl.keystore.certificate.chain`,
//! `ssl.truststore.certificates`); or PKCS12 or JKS (Kafka's default type, read by `jks`)
//! files with their passwords. Encrypted PEM keys (PBES2 or PBE-SHA1-3DES, with
//! `ssl.key.password`) are decrypted by `encrypted_key`.

use std::sync::Arc;

use regex::Regex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use thiserror::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{jks, KafkaPrincipal};
use crate::config::BrokerConfig;

/// Why a listener's TLS settings cannot be used.
#[derive(Debug, Error)]
pub enum TlsConfigError {
    #[error("listener {listener}: {key}={value} is not supported: gregor reads PEM, PKCS12 and JKS stores")]
    StoreType {
        listener: String,
        key: &'static str,
        value: String,
    },
    #[error("listener {listener}: {what}")]
    Invalid { listener: String, what: String },
}

/// Who may connect to a TLS listener (`ssl.client.auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// One TLS listener's server side: the rustls configuration and how a client certificate
/// becomes a principal.
pub struct TlsListener {
    pub server_config: Arc<ServerConfig>,
    pub client_auth: ClientAuth,
    pub principal_mapper: PrincipalMapper,
}

impl TlsListener {
    /// Reads the listener's `ssl.*` settings and the files they name.
    pub fn from_config(config: &BrokerConfig, listener: &str) -> Result<Self, TlsConfigError> {
        let invalid = |what: String| TlsConfigError::Invalid {
            listener: listener.to_string(),
            what,
        };
        let value = |key: &str| {
            config
                .listener_value(listener, key)
                .filter(|v| !v.is_empty())
        };
        let keystore_type = store_type(listener, "ssl.keystore.type", value("ssl.keystore.type"))?;
        let truststore_type = store_type(
            listener,
            "ssl.truststore.type",
            value("ssl.truststore.type"),
        )?;

        let (chain, key) = keystore(&value, keystore_type)
            .map_err(&invalid)?
            .ok_or_else(|| {
                invalid(
                    "a TLS listener needs ssl.keystore.location (or ssl.keystore.key and \
                     ssl.keystore.certificate.chain)"
                        .into(),
                )
            })?;

        let client_auth = match value("ssl.client.auth").as_deref() {
            None | Some("none") => ClientAuth::None,
            Some("requested") => ClientAuth::Requested,
            Some("required") => ClientAuth::Required,
            Some(other) => {
                return Err(invalid(format!(
                    "ssl.client.auth={other} is not one of required, requested, none"
                )))
            }
        };

        let provider = Arc::new(
            provider(value("ssl.cipher.suites").as_deref().unwrap_or("")).map_err(&invalid)?,
        );
        let versions = protocol_versions(
            value("ssl.enabled.protocols")
                .as_deref()
                .unwrap_or("TLSv1.2,TLSv1.3"),
        )
        .map_err(&invalid)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| invalid(e.to_string()))?;
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Requested | ClientAuth::Required => {
                let trusted = truststore(&value, truststore_type)
                    .map_err(&invalid)?
                    .ok_or_else(|| {
                        invalid(
                            "ssl.client.auth needs a truststore (ssl.truststore.location) to \
                             check client certificates against"
                                .into(),
                        )
                    })?;
                let roots = root_store(trusted).map_err(&invalid)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if client_auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier.build().map_err(|e| invalid(e.to_string()))?,
                )
            }
        };
        let mut server_config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid(format!("the keystore's key and certificate: {e}")))?;
        // Kafka speaks no ALPN; clients that offer some are not refused.
        server_config.alpn_protocols.clear();
        // No session resumption: every connection shows its certificate again (its principal
        // is read from it), and OpenSSL clients that resume a session under another server
        // name fail ("ssl3 ext invalid servername"). Kafka's connections are long-lived.
        server_config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server_config.send_tls13_tickets = 0;

        let principal_mapper = PrincipalMapper::parse(
            value("ssl.principal.mapping.rules")
                .as_deref()
                .unwrap_or("DEFAULT"),
        )
        .map_err(&invalid)?;
        Ok(TlsListener {
            server_config: Arc::new(server_config),
            client_auth,
            principal_mapper,
        })
    }

    /// The principal of a TLS connection: the client certificate's subject (RFC 2253, as Java's
    /// `X500Principal.getName()` writes it) through the mapping rules, or ANONYMOUS without one.
    pub fn principal(
        &self,
        peer_certificates: Option<&[CertificateDer<'_>]>,
    ) -> Result<KafkaPrincipal, String> {
        let Some(leaf) = peer_certificates.and_then(|c| c.first()) else {
            return Ok(KafkaPrincipal::anonymous());
        };
        let (_, cert) = X509Certificate::from_der(leaf.as_ref())
            .map_err(|e| format!("unreadable client certificate: {e}"))?;
        let dn = rfc2253_name(cert.subject());
        self.principal_mapper.map(&dn).map(KafkaPrincipal::user)
    }
}

/// The client side of TLS to another broker's listener (Kafka's inter-broker client reads the
/// same `ssl.*` keys of the inter-broker listener as its server side): the listener's
/// truststore verifies the other broker, its keystore (when set) is the client certificate
/// for `ssl.client.auth`, and `ssl.endpoint.identification.algorithm` says whether the host
/// name must match the certificate (`https`, the default) or not (empty).
pub fn client_config(
    config: &BrokerConfig,
    listener: &str,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let invalid = |what: String| TlsConfigError::Invalid {
        listener: listener.to_string(),
        what,
    };
    let value = |key: &str| {
        config
            .listener_value(listener, key)
            .filter(|v| !v.is_empty())
    };
    // The types matter only for stores that are set (the keystore is optional here).
    let set = |keys: &[&str]| keys.iter().any(|k| value(k).is_some());
    let keystore_type = match set(&[
        "ssl.keystore.location",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
    ]) {
        true => store_type(listener, "ssl.keystore.type", value("ssl.keystore.type"))?,
        false => StoreType::Pem,
    };
    let truststore_type = match set(&["ssl.truststore.location", "ssl.truststore.certificates"]) {
        true => store_type(
            listener,
            "ssl.truststore.type",
            value("ssl.truststore.type"),
        )?,
        false => StoreType::Pem,
    };
    // Empty is a value here: it turns host name verification off.
    let verify_host_name = match config
        .listener_value(listener, "ssl.endpoint.identification.algorithm")
        .as_deref()
    {
        None => true,
        Some(a) if a.eq_ignore_ascii_case("https") => true,
        Some("") => false,
        Some(other) => {
            return Err(invalid(format!(
                "ssl.endpoint.identification.algorithm={other}: only https (verify the host \
                 name) or an empty value (do not) are known"
            )))
        }
    };
    // Kafka falls back to the JVM's default CAs; gregor has none built in.
    let trusted = truststore(&value, truststore_type)
        .map_err(&invalid)?
        .ok_or_else(|| {
            invalid(
                "the inter-broker client needs ssl.truststore.location (or \
                 ssl.truststore.certificates) to verify the other brokers' certificates"
                    .into(),
            )
        })?;
    let roots = Arc::new(root_store(trusted).map_err(&invalid)?);
    let provider =
        Arc::new(provider(value("ssl.cipher.suites").as_deref().unwrap_or("")).map_err(&invalid)?);
    let versions = protocol_versions(
        value("ssl.enabled.protocols")
            .as_deref()
            .unwrap_or("TLSv1.2,TLSv1.3"),
    )
    .map_err(&invalid)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if verify_host_name {
        webpki
    } else {
        Arc::new(AnyHostName(webpki))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let client_config = match keystore(&value, keystore_type).map_err(&invalid)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid(format!("the keystore's key and certificate: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(client_config))
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain must still lead to a trusted
/// CA and be valid, but the certificate may name another host.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The webpki verifier checks the name last, after the chain.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A private key and its certificate chain.
type KeyAndChain = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The listener's keystore (`ssl.keystore.*`), or None when none is set.
fn keystore(
    value: &impl Fn(&str) -> Option<String>,
    keystore_type: StoreType,
) -> Result<Option<KeyAndChain>, String> {
    match (
        value("ssl.keystore.location"),
        value("ssl.keystore.key"),
        value("ssl.keystore.certificate.chain"),
    ) {
        (Some(path), None, None) => {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read ssl.keystore.location {path}: {e}"))?;
            match keystore_type {
                StoreType::Pem => Ok(Some((
                    certificates(&bytes, "ssl.keystore.location")?,
                    private_key(
                        &bytes,
                        "ssl.keystore.location",
                        value("ssl.key.password").as_deref(),
                    )?,
                ))),
                StoreType::Pkcs12 => {
                    pkcs12_key_and_chain(&bytes, value("ssl.keystore.password").as_deref())
                        .map(Some)
                }
                StoreType::Jks => jks_key_and_chain(
                    &bytes,
                    value("ssl.keystore.password").as_deref(),
                    value("ssl.key.password").as_deref(),
                )
                .map(Some),
            }
        }
        (None, Some(key), Some(chain)) if keystore_type == StoreType::Pem => Ok(Some((
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            private_key(
                key.as_bytes(),
                "ssl.keystore.key",
                value("ssl.key.password").as_deref(),
            )?,
        ))),
        (None, None, None) => Ok(None),
        _ => Err(
            "set either ssl.keystore.location or both ssl.keystore.key and \
                  ssl.keystore.certificate.chain (with ssl.keystore.type=PEM)"
                .into(),
        ),
    }
}

/// The listener's trusted certificates (`ssl.truststore.*`), or None when none is set.
fn truststore(
    value: &impl Fn(&str) -> Option<String>,
    truststore_type: StoreType,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    match (
        value("ssl.truststore.location"),
        value("ssl.truststore.certificates"),
    ) {
        (Some(path), _) => {
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read ssl.truststore.location {path}: {e}"))?;
            match truststore_type {
                StoreType::Pem => certificates(&bytes, "ssl.truststore.location").map(Some),
                StoreType::Pkcs12 => {
                    pkcs12_trusted(&bytes, value("ssl.truststore.password").as_deref()).map(Some)
                }
                StoreType::Jks => {
                    jks_trusted(&bytes, value("ssl.truststore.password").as_deref()).map(Some)
                }
            }
        }
        (None, Some(inline)) => {
            certificates(inline.as_bytes(), "ssl.truststore.certificates").map(Some)
        }
        (None, None) => Ok(None),
    }
}

fn root_store(trusted: Vec<CertificateDer<'static>>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots
            .add(cert)
            .map_err(|e| format!("a truststore certificate: {e}"))?;
    }
    Ok(roots)
}

/// The store formats gregor reads: PEM files, PKCS12 (keytool's default since Java 9) and JKS
/// (Kafka's default type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreType {
    Pem,
    Pkcs12,
    Jks,
}

/// `ssl.keystore.type` / `ssl.truststore.type` (default JKS, as in Kafka).
fn store_type(
    listener: &str,
    key: &'static str,
    value: Option<String>,
) -> Result<StoreType, TlsConfigError> {
    let value = value.unwrap_or_else(|| "JKS".into());
    if value.eq_ignore_ascii_case("PEM") {
        Ok(StoreType::Pem)
    } else if value.eq_ignore_ascii_case("PKCS12") {
        Ok(StoreType::Pkcs12)
    } else if value.eq_ignore_ascii_case("JKS") {
        Ok(StoreType::Jks)
    } else {
        Err(TlsConfigError::StoreType {
            listener: listener.to_string(),
            key,
            value,
        })
    }
}

/// The private key and its certificate chain from a PKCS12 keystore.
fn pkcs12_key_and_chain(
    bytes: &[u8],
    password: Option<&str>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password.unwrap_or(""),
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| {
        format!(
            "ssl.keystore.location: cannot read the PKCS12 keystore (ssl.keystore.password?): {e}"
        )
    })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or("ssl.keystore.location: the PKCS12 keystore holds no private key")?;
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err("ssl.keystore.location: the PKCS12 key has no certificate".into());
    }
    let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
    Ok((certs, key))
}

/// The private key and chain of a JKS keystore: its first key entry, unprotected with
/// `ssl.key.password`, else the store's password (as Kafka does). A PKCS12 file is read as
/// such, as the JDK's JKS keystore does (its compatibility mode).
fn jks_key_and_chain(
    bytes: &[u8],
    store_password: Option<&str>,
    key_password: Option<&str>,
) -> Result<KeyAndChain, String> {
    if !jks::is_jks(bytes) {
        return pkcs12_key_and_chain(bytes, store_password);
    }
    let store =
        jks::parse(bytes, store_password).map_err(|e| format!("ssl.keystore.location: {e}"))?;
    let entry = store
        .private_keys
        .first()
        .ok_or("ssl.keystore.location: the JKS keystore holds no private key")?;
    let password = key_password.or(store_password).ok_or(
        "ssl.keystore.location: a JKS key needs ssl.key.password or ssl.keystore.password",
    )?;
    let key = entry
        .private_key(password)
        .map_err(|e| format!("ssl.keystore.location, entry {}: {e}", entry.alias))?;
    if entry.chain.is_empty() {
        return Err(format!(
            "ssl.keystore.location: the JKS key {} has no certificate",
            entry.alias
        ));
    }
    let chain = entry
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    Ok((chain, PrivateKeyDer::Pkcs8(key.into())))
}

/// The trusted certificates of a JKS truststore: its trusted certificate entries and the
/// certificate of each key entry, as the JDK's trust manager takes them. The password, when
/// set, checks the file's integrity; the JDK reads a truststore without one too.
fn jks_trusted(
    bytes: &[u8],
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    if !jks::is_jks(bytes) {
        return pkcs12_trusted(bytes, password);
    }
    let store = jks::parse(bytes, password).map_err(|e| format!("ssl.truststore.location: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = store
        .trusted
        .iter()
        .chain(store.private_keys.iter().filter_map(|k| k.chain.first()))
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    if certs.is_empty() {
        return Err("ssl.truststore.location: the JKS truststore holds no certificate".into());
    }
    Ok(certs)
}

/// The trusted certificates of a PKCS12 truststore.
fn pkcs12_trusted(
    bytes: &[u8],
    password: Option<&str>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password.unwrap_or(""),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| format!("ssl.truststore.location: cannot read the PKCS12 truststore (ssl.truststore.password?): {e}"))?;
    let certs: Vec<CertificateDer<'static>> = store
        .entries()
        .filter_map(|(_, entry)| match entry {
            p12_keystore::KeyStoreEntry::Certificate(c) => {
                Some(CertificateDer::from(c.as_der().to_vec()))
            }
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err("ssl.truststore.location: the PKCS12 truststore holds no certificate".into());
    }
    Ok(certs)
}

/// Every certificate in a PEM text.
fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key}: bad PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: no certificate found"));
    }
    Ok(certs)
}

/// The one private key in a PEM text: PKCS#8, PKCS#1 or SEC1, or an encrypted PKCS#8 key
/// with `ssl.key.password` (as Kafka's PEM key stores).
fn private_key(
    pem: &[u8],
    key: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = std::str::from_utf8(pem).unwrap_or_default();
    if let Some(start) = text.find(BEGIN) {
        let password = password.ok_or_else(|| {
            format!("{key}: the private key is encrypted and ssl.key.password is not set")
        })?;
        let body = &text[start + BEGIN.len()..];
        let body = &body[..body
            .find(END)
            .ok_or_else(|| format!("{key}: {BEGIN} without its end"))?];
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .map_err(|e| format!("{key}: bad PEM encrypted private key: {e}"))?;
        let plain = super::encrypted_key::decrypt_private_key(&der, password)
            .map_err(|e| format!("{key}: {e}"))?;
        return Ok(PrivateKeyDer::Pkcs8(plain.into()));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("{key}: no usable private key: {e}"))
}

/// ring's cipher suites, or those of them named in `ssl.cipher.suites` (IANA names, as Java
/// uses them; rustls calls the TLS 1.3 ones `TLS13_*`).
pub(crate) fn provider(cipher_suites: &str) -> Result<CryptoProvider, String> {
    // Deprecated in favour of aws-lc-rs for its post-quantum key exchange, which Kafka's
    // clients do not offer; ring builds without cmake.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    let wanted = crate::config::split_list(cipher_suites);
    if wanted.is_empty() {
        return Ok(provider);
    }
    let iana = |s: &rustls::SupportedCipherSuite| {
        let name = format!("{:?}", s.suite());
        name.replacen("TLS13_", "TLS_", 1)
    };
    for w in &wanted {
        if !provider.cipher_suites.iter().any(|s| &iana(s) == w) {
            let known: Vec<String> = provider.cipher_suites.iter().map(iana).collect();
            return Err(format!(
                "ssl.cipher.suites: {w} is not available (available: {})",
                known.join(",")
            ));
        }
    }
    provider.cipher_suites.retain(|s| wanted.contains(&iana(s)));
    Ok(provider)
}

/// `ssl.enabled.protocols` as rustls versions: TLSv1.2 and TLSv1.3 (older ones are ignored;
/// rustls has none of them).
fn protocol_versions(
    enabled: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut out = Vec::new();
    for p in crate::config::split_list(enabled) {
        match p.as_str() {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(format!(
            "ssl.enabled.protocols={enabled} has neither TLSv1.2 nor TLSv1.3"
        ));
    }
    Ok(out)
}

/// A distinguished name as Java's `X500Principal.getName()` (RFC 2253) writes it: the last RDN
/// first, `type=value` joined by commas, multi-valued RDNs by `+`.
fn rfc2253_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let keyword = match oid.as_str() {
                        "2.5.4.3" => "CN",
                        "2.5.4.6" => "C",
                        "2.5.4.7" => "L",
                        "2.5.4.8" => "ST",
                        "2.5.4.9" => "STREET",
                        "2.5.4.10" => "O",
                        "2.5.4.11" => "OU",
                        "0.9.2342.19200300.100.1.25" => "DC",
                        "0.9.2342.19200300.100.1.1" => "UID",
                        _ => "",
                    };
                    match (keyword, atv.as_str()) {
                        ("", _) | (_, Err(_)) => {
                            // Java writes unknown types as OID=#<hex of the DER value>.
                            let hex: String = atv
                                .attr_value()
                                .data
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect();
                            format!("{oid}=#{hex}")
                        }
                        (k, Ok(v)) => format!("{k}={}", escape_rfc2253(v)),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, ch) in value.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i == last && ch == ' ');
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// Kafka's `ssl.principal.mapping.rules`: `DEFAULT` (the whole DN) or
/// `RULE:pattern/replacement/[LU]`, tried in order; the first rule whose pattern matches the
/// whole DN gives the name.
#[derive(Clone, Debug)]
pub struct PrincipalMapper {
    rules: Vec<MappingRule>,
}

#[derive(Clone, Debug)]
enum MappingRule {
    Default,
    Rule {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

impl PrincipalMapper {
    pub fn parse(rules: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("ssl.principal.mapping.rules={rules}: {why}");
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                out.push(MappingRule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = split_unescaped(after)
                    .ok_or_else(|| bad("a RULE needs pattern/replacement/"))?;
                let (replacement, after) = split_unescaped(after)
                    .ok_or_else(|| bad("a RULE needs pattern/replacement/"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| bad(&format!("bad pattern: {e}")))?;
                out.push(MappingRule::Rule {
                    pattern,
                    replacement: replacement.replace("\\/", "/"),
                    case,
                });
                rest = after;
            } else {
                return Err(bad("each rule is DEFAULT or RULE:pattern/replacement/[LU]"));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if out.is_empty() {
            out.push(MappingRule::Default);
        }
        Ok(PrincipalMapper { rules: out })
    }

    /// The short name for `dn`; no rule matching is an authentication failure, as in Kafka.
    pub fn map(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                MappingRule::Default => return Ok(dn.to_string()),
                MappingRule::Rule {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        Err(format!(
            "no ssl.principal.mapping.rules rule applies to {dn}"
        ))
    }
}

/// Splits at the first `/` not escaped by a backslash: (before, after the slash).
fn split_unescaped(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&s[..i], &s[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rule_keeps_the_whole_distinguished_name() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(
            m.map("CN=alice,OU=eng,O=acme").unwrap(),
            "CN=alice,OU=eng,O=acme"
        );
    }

    #[test]
    fn rules_apply_in_order_with_case_and_fall_back_to_default() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=([^,]*),O=(.*)$/$1@$2/U, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=Kafka-Svc,OU=ServiceUsers,O=acme").unwrap(),
            "kafka-svc"
        );
        assert_eq!(m.map("CN=bob,O=acme").unwrap(), "BOB@ACME");
        assert_eq!(m.map("CN=carol,OU=people").unwrap(), "CN=carol,OU=people");
    }

    #[test]
    fn no_matching_rule_is_an_error() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
        assert_eq!(m.map("CN=x").unwrap(), "x");
        assert!(m.map("OU=x").is_err());
    }

    #[test]
    fn rfc2253_escapes_specials() {
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253(" x "), "\\ x\\ ");
        assert_eq!(escape_rfc2253("#1"), "\\#1");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(PrincipalMapper::parse("RULE:abc").is_err());
        assert!(PrincipalMapper::parse("NOPE").is_err());
        assert!(PrincipalMapper::parse("RULE:(/x/").is_err());
    }
}
