//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses them: the stored
//! credential (`salt=...,stored_key=...,server_key=...,iterations=...`, the value of the
//! `SCRAM-SHA-512` key of `/config/users/<user>`), the server side of the exchange, and the
//! client side a broker runs towards another (`sasl.mechanism.inter.broker.protocol`).

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

/// The client's side of one exchange (RFC 5802), as a broker's inter-broker client runs it:
/// `new` gives the client-first message, `server_first` the client-final one, and
/// `server_final` checks the server's signature, proving the server knew the credential.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// Set by `server_first`: the `v=` the server must answer.
    expected_server_signature: Option<Vec<u8>>,
}

/// SCRAM's `saslname`: a comma is `=2C`, an equals sign `=3D`.
fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts the exchange for `username`: the client and its first message.
    pub fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
    ) -> (ScramClient, Vec<u8>) {
        let nonce: String = (0..32)
            .map(|_| {
                char::from(rand::Rng::sample(
                    &mut rand::thread_rng(),
                    rand::distributions::Alphanumeric,
                ))
            })
            .collect();
        Self::with_nonce(mechanism, username, password, nonce)
    }

    fn with_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        nonce: String,
    ) -> (ScramClient, Vec<u8>) {
        let client_first_bare = format!("n={},r={nonce}", encode_saslname(username));
        // gs2 header `n,,`: no channel binding, no authorization id (as Kafka's client).
        let message = format!("n,,{client_first_bare}").into_bytes();
        (
            ScramClient {
                mechanism,
                password: password.to_string(),
                client_first_bare,
                nonce,
                expected_server_signature: None,
            },
            message,
        )
    }

    /// Reads the server's first message (`r=nonce,s=salt,i=iterations`) and returns the
    /// client's final message (`c=biws,r=nonce,p=proof`).
    pub fn server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramFailure> {
        let bad = |why: &str| ScramFailure(format!("Invalid SCRAM server first message: {why}"));
        let text = std::str::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in text.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = Some(B64.decode(v).map_err(|_| bad("the salt is not base64"))?);
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = Some(v.parse::<i32>().map_err(|_| bad("bad iteration count"))?);
            } else if let Some(v) = attr.strip_prefix("e=") {
                return Err(ScramFailure(format!("the server refused: {v}")));
            } else if attr.starts_with("m=") {
                return Err(bad("mandatory extensions are not supported"));
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(bad("it lacks r, s or i"));
        };
        // The server extends our nonce; anything else is a replay or a confused server.
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the nonce does not extend the client's"));
        }
        // Kafka's client refuses fewer iterations than the mechanism's minimum.
        if iterations < MIN_ITERATIONS {
            return Err(bad(&format!(
                "{iterations} iterations, fewer than the minimum {MIN_ITERATIONS}"
            )));
        }
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations as u32);
        // `biws` is base64 of the gs2 header `n,,`.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let client_signature = m.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(m.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server's final message (`v=signature`, or `e=error`).
    pub fn server_final(&self, message: &[u8]) -> Result<(), ScramFailure> {
        let text = std::str::from_utf8(message)
            .map_err(|_| ScramFailure("Invalid SCRAM server final message: not UTF-8".into()))?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramFailure(format!("the server refused: {e}")));
        }
        let signature = text
            .split(',')
            .find_map(|a| a.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or_else(|| {
                ScramFailure("Invalid SCRAM server final message: no signature".into())
            })?;
        let expected = self
            .expected_server_signature
            .as_deref()
            .ok_or_else(|| ScramFailure("the server's final message came too early".into()))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            signature.as_slice(),
            expected,
        )) {
            return Err(ScramFailure(
                "Invalid server signature in the server final message".into(),
            ));
        }
        Ok(())
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
    /// RFC 7677's SCRAM-SHA-256 example from the client's side, with its nonce forced.
    #[test]
    fn rfc7677_client_messages() {
        let (mut client, first) = ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = client
            .server_first(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        // A server that does not know the credential cannot sign.
        assert!(client
            .server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert_eq!(
            client.server_final(b"e=invalid-proof").unwrap_err().0,
            "the server refused: invalid-proof"
        );
    }

    #[test]
    fn client_refuses_bad_server_first_messages() {
        let client = || ScramClient::with_nonce(ScramMechanism::Sha512, "u", "p", "abc".into()).0;
        // The nonce must extend ours.
        assert!(client().server_first(b"r=xyzdef,s=AAAA,i=4096").is_err());
        assert!(client().server_first(b"r=abc,s=AAAA,i=4096").is_err());
        // Too few iterations (Kafka's minimum is 4096).
        assert!(client().server_first(b"r=abcdef,s=AAAA,i=100").is_err());
        assert!(client().server_first(b"r=abcdef,i=4096").is_err());
        assert!(client().server_first(b"r=abcdef,s=AAAA,i=4096").is_ok());
        // No signature check before the server's first message.
        assert!(client().server_final(b"v=AAAA").is_err());
    }

    /// The client against gregor's own server, both mechanisms; a wrong password is refused
    /// by the server, and a server with another credential fails the client's check.
    #[test]
    fn client_and_server_agree() {
        for m in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(m, "s3cret", 4096);
            let (mut client, first) = ScramClient::new(m, "a,b=c", "s3cret");
            let parsed = ClientFirst::parse(&first).unwrap();
            assert_eq!(parsed.username, "a,b=c");
            let (server, server_first) = ScramServer::new(m, parsed, credential.clone());
            let client_final = client.server_first(&server_first).unwrap();
            let server_final = server.client_final(&client_final).unwrap();
            client.server_final(&server_final).unwrap();

            let (mut wrong, first) = ScramClient::new(m, "u", "guess");
            let (server, server_first) =
                ScramServer::new(m, ClientFirst::parse(&first).unwrap(), credential.clone());
            let client_final = wrong.server_first(&server_first).unwrap();
            assert!(server.client_final(&client_final).is_err());

            // An impostor server with another credential for the user but the same salt.
            let (mut client, first) = ScramClient::new(m, "u", "s3cret");
            let impostor = ScramCredential {
                server_key: vec![7; credential.server_key.len()],
                ..credential.clone()
            };
            let (server, server_first) =
                ScramServer::new(m, ClientFirst::parse(&first).unwrap(), impostor);
            let client_final = client.server_first(&server_first).unwrap();
            let server_final = server.client_final(&client_final).unwrap();
            assert!(client.server_final(&server_final).is_err());
        }
    }
}
