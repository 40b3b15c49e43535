//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses them: the stored
//! credential (`salt=...,stored_key=...,server_key=...,iterations=...`, the value of the
//! `SCRAM-SHA-512` key of `/config/users/<user>`), and the server side of the exchange.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};

/// The two SCRAM mechanisms, with Kafka's mechanism ids (AlterUserScramCredentials).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

/// Kafka's bounds on iterations (`ScramMechanism.minIterations`, and the most
/// AlterUserScramCredentials accepts).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL name, also the key under `/config/users/<user>`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's `ScramMechanism` type byte: 1 SHA-256, 2 SHA-512.
    pub fn id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.id() == id)
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// RFC 5802's Hi(): PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// A stored SCRAM credential: what the broker keeps instead of the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential for a password, with a fresh random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: i32) -> Self {
        let mut salt = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        let salted =
            mechanism.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        Self::from_salted_password(mechanism, &salted, salt, iterations)
    }

    /// Kafka's stored form: `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.
    pub fn encode(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    pub fn decode(text: &str) -> Result<Self, String> {
        let mut salt = None;
        let mut stored_key = None;
        let mut server_key = None;
        let mut iterations = None;
        for item in text.split(',') {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| format!("bad SCRAM credential item '{item}'"))?;
            let bytes = || {
                B64.decode(v)
                    .map_err(|e| format!("SCRAM credential {k}: {e}"))
            };
            match k {
                "salt" => salt = Some(bytes()?),
                "stored_key" => stored_key = Some(bytes()?),
                "server_key" => server_key = Some(bytes()?),
                "iterations" => {
                    iterations = Some(
                        v.parse()
                            .map_err(|_| format!("SCRAM credential iterations '{v}'"))?,
                    )
                }
                _ => {}
            }
        }
        match (salt, stored_key, server_key, iterations) {
            (Some(salt), Some(stored_key), Some(server_key), Some(iterations)) => {
                Ok(ScramCredential {
                    salt,
                    stored_key,
                    server_key,
                    iterations,
                })
            }
            _ => Err("SCRAM credential lacks salt, stored_key, server_key or iterations".into()),
        }
    }
}

/// Why a SCRAM exchange failed. The message is what the client is told.
#[derive(Debug, PartialEq, Eq)]
pub struct ScramFailure(pub String);

/// The client's first message, parsed.
#[derive(Debug)]
pub struct ClientFirst {
    pub username: String,
    /// `gs2-header`: `n,,` or `y,,` (or with `a=<authzid>`).
    gs2_header: String,
    bare: String,
    nonce: String,
}

/// SCRAM's `saslname`: `=2C` is a comma, `=3D` an equals sign.
fn decode_saslname(s: &str) -> Result<String, ScramFailure> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramFailure("Invalid username encoding".into())),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

impl ClientFirst {
    /// `gs2-header client-first-message-bare`: `n,,n=user,r=nonce[,ext...]`.
    pub fn parse(message: &[u8]) -> Result<ClientFirst, ScramFailure> {
        let bad = |why: &str| ScramFailure(format!("Invalid SCRAM client first message: {why}"));
        let text = std::str::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let cbind = parts.next().unwrap_or_default();
        let authzid = parts.next().ok_or_else(|| bad("no gs2 header"))?;
        let bare = parts.next().ok_or_else(|| bad("no message"))?;
        if cbind != "n" && cbind != "y" {
            return Err(bad("channel binding is not supported"));
        }
        let mut username = None;
        let mut nonce = None;
        for attr in bare.split(',') {
            if let Some(v) = attr.strip_prefix("n=") {
                username = Some(decode_saslname(v)?);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v.to_string());
            } else if attr.starts_with("m=") {
                return Err(bad("mandatory extensions are not supported"));
            }
        }
        let username = username.ok_or_else(|| bad("no username"))?;
        if let Some(a) = authzid.strip_prefix("a=") {
            if decode_saslname(a)? != username {
                return Err(ScramFailure(
                    "Authentication failed: Client requested an authorization id that is different from username"
                        .into(),
                ));
            }
        }
        Ok(ClientFirst {
            username,
            gs2_header: format!("{cbind},{authzid},"),
            bare: bare.to_string(),
            nonce: nonce.ok_or_else(|| bad("no nonce"))?,
        })
    }
}

/// The server's side of one exchange, after the client's first message and the credential
/// lookup: it holds what the client's final message is checked against.
pub struct ScramServer {
    mechanism: ScramMechanism,
    credential: ScramCredential,
    client_first: ClientFirst,
    server_first: String,
    nonce: String,
}

impl ScramServer {
    /// Starts the exchange for a known user: returns the server and its first message.
    pub fn new(
        mechanism: ScramMechanism,
        client_first: ClientFirst,
        credential: ScramCredential,
    ) -> (ScramServer, Vec<u8>) {
        // Letters and digits only, as Kafka's: some clients (librdkafka 2.0) mangle others.
        let server_nonce: String = (0..32)
            .map(|_| {
                char::from(rand::Rng::sample(
                    &mut rand::thread_rng(),
                    rand::distributions::Alphanumeric,
                ))
            })
            .collect();
        let nonce = format!("{}{server_nonce}", client_first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        let message = server_first.clone().into_bytes();
        (
            ScramServer {
                mechanism,
                credential,
                client_first,
                server_first,
                nonce,
            },
            message,
        )
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Checks the client's final message (`c=...,r=...,p=proof`); returns the server's final
    /// message (`v=signature`).
    pub fn client_final(&self, message: &[u8]) -> Result<Vec<u8>, ScramFailure> {
        let invalid = || ScramFailure("Authentication failed: Invalid user credentials".into());
        let text = std::str::from_utf8(message).map_err(|_| invalid())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(invalid)?;
        let mut channel_binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                channel_binding = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        let expected_binding = B64.encode(self.client_first.gs2_header.as_bytes());
        if channel_binding != Some(expected_binding.as_str()) {
            return Err(ScramFailure("Invalid channel binding".into()));
        }
        // Kafka checks only that the client's nonce ends with the server's: some librdkafka
        // releases (Debian's 2.0.2) send their own nonce again in front of the combined nonce.
        if !nonce.is_some_and(|n| n.ends_with(&self.nonce)) {
            return Err(ScramFailure(
                "Invalid client nonce in the final client message.".into(),
            ));
        }
        let proof = B64.decode(proof).map_err(|_| invalid())?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first.bare, self.server_first, without_proof
        );
        let m = self.mechanism;
        let client_signature = m.hmac(&self.credential.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(invalid());
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let computed = m.hash(&client_key);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            computed.as_slice(),
            self.credential.stored_key.as_slice(),
        )) {
            return Err(invalid());
        }
        let server_signature = m.hmac(&self.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example, run through the server with its nonce forced.
    #[test]
    fn rfc7677_exchange_verifies() {
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(m, &salted, salt, 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!(first.username, "user");
        let (mut server, _) = ScramServer::new(m, first, credential);
        server.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        server.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", server.nonce);
        let last = server
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert!(server
            .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAAZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .is_err());
        assert_eq!(
            server
                .client_final(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
                .unwrap_err()
                .0,
            "Invalid client nonce in the final client message."
        );
    }

    #[test]
    fn stored_form_round_trips() {
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "secret", 4096);
        let text = c.encode();
        assert!(text.starts_with("salt=") && text.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::decode(&text).unwrap(), c);
        assert!(ScramCredential::decode("salt=AA==").is_err());
    }

    #[test]
    fn client_first_checks() {
        assert!(ClientFirst::parse(b"p=tls-unique,,n=u,r=x").is_err());
        assert!(ClientFirst::parse(b"n,a=other,n=u,r=x").is_err());
        assert_eq!(
            ClientFirst::parse(b"n,,n=a=2Cb=3D,r=x").unwrap().username,
            "a,b="
        );
        assert!(ClientFirst::parse(b"n,,n=u").is_err());
    }
}
