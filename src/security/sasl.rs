//! SASL on a SASL_PLAINTEXT or SASL_SSL listener: which mechanisms it offers
//! (`sasl.enabled.mechanisms`, per listener as `listener.name.<l>.sasl.enabled.mechanisms`),
//! PLAIN's users (from the JAAS text of `listener.name.<l>.plain.sasl.jaas.config`, as Kafka's
//! `PlainLoginModule` options `user_<name>="<password>"`), and which OAUTHBEARER token validator
//! it uses (`oauthbearer`). SCRAM's exchange is in `scram`; its credentials live in the
//! metadata store.

use std::collections::HashMap;
use std::time::Duration;

use thiserror::Error;

use super::oauthbearer::{JwksValidator, Refusal, TokenValidator};
use super::scram::ScramMechanism;
use crate::config::BrokerConfig;

/// A SASL mechanism gregor has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            other => ScramMechanism::from_name(other).map(Mechanism::Scram),
        }
    }
}

#[derive(Debug, Error)]
#[error("listener {listener}: {what}")]
pub struct SaslConfigError {
    listener: String,
    what: String,
}

/// One SASL listener's settings.
pub struct SaslListener {
    /// The enabled mechanisms, in configured order (SaslHandshake lists them so).
    pub mechanisms: Vec<Mechanism>,
    plain_users: HashMap<String, String>,
    oauth: Option<TokenValidator>,
    /// `connections.max.reauth.ms` (KIP-368): 0 means sessions never expire.
    pub max_reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`: a failed client waits this long for its
    /// answer, so that a client retrying in a loop cannot hammer the broker.
    pub failed_authentication_delay: Duration,
}

impl SaslListener {
    pub fn from_config(config: &BrokerConfig, listener: &str) -> Result<Self, SaslConfigError> {
        let err = |what: String| SaslConfigError {
            listener: listener.to_string(),
            what,
        };
        let enabled = config
            .listener_value(listener, "sasl.enabled.mechanisms")
            .unwrap_or_default();
        let mut mechanisms = Vec::new();
        for name in crate::config::split_list(&enabled) {
            let m = Mechanism::from_name(&name).ok_or_else(|| {
                err(format!(
                    "sasl.enabled.mechanisms has {name}, which gregor does not have (it has PLAIN, \
                     SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; the default GSSAPI is Kerberos)"
                ))
            })?;
            mechanisms.push(m);
        }
        if mechanisms.is_empty() {
            return Err(err("sasl.enabled.mechanisms is empty".into()));
        }
        let jaas = |m: Mechanism| {
            config.listener_only_value(
                listener,
                &format!("{}.sasl.jaas.config", m.name().to_ascii_lowercase()),
            )
        };
        let mut plain_users = HashMap::new();
        if mechanisms.contains(&Mechanism::Plain) {
            let text = jaas(Mechanism::Plain).ok_or_else(|| {
                err(format!(
                    "PLAIN needs its users in listener.name.{}.plain.sasl.jaas.config",
                    listener.to_ascii_lowercase()
                ))
            })?;
            let options = parse_jaas(&text).map_err(&err)?;
            for (k, v) in options {
                if let Some(user) = k.strip_prefix("user_") {
                    plain_users.insert(user.to_string(), v);
                }
            }
        }
        let mut oauth = None;
        if mechanisms.contains(&Mechanism::OAuthBearer) {
            let options = match jaas(Mechanism::OAuthBearer) {
                Some(text) => parse_jaas(&text).map_err(&err)?,
                None => HashMap::new(),
            };
            oauth = Some(TokenValidator::from_config(config, listener, &options).map_err(&err)?);
        }
        Ok(SaslListener {
            mechanisms,
            plain_users,
            oauth,
            max_reauth_ms: config
                .listener_value(listener, "connections.max.reauth.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(config.connections_max_reauth_ms),
            failed_authentication_delay: Duration::from_millis(
                config.connection_failed_authentication_delay_ms,
            ),
        })
    }

    /// PLAIN (RFC 4616): `[authzid] NUL authcid NUL password`; returns the user.
    pub fn authenticate_plain(&self, message: &[u8]) -> Result<String, String> {
        let text = std::str::from_utf8(message)
            .map_err(|_| "Authentication failed: invalid SASL/PLAIN request".to_string())?;
        let mut fields = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(
                "Authentication failed: invalid SASL/PLAIN request: expected 3 tokens".into(),
            );
        };
        if user.is_empty() {
            return Err("Authentication failed: username not specified".into());
        }
        if password.is_empty() {
            return Err("Authentication failed: password not specified".into());
        }
        if !authzid.is_empty() && authzid != user {
            return Err("Authentication failed: Client requested an authorization id that is different from username".into());
        }
        let ok = self.plain_users.get(user).is_some_and(|expected| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                expected.as_bytes(),
                password.as_bytes(),
            ))
        });
        if ok {
            Ok(user.to_string())
        } else {
            Err("Authentication failed: Invalid username or password".into())
        }
    }

    /// OAUTHBEARER (RFC 7628): the token in the client's message, checked by the listener's
    /// validator. Returns the principal and the token's expiry (ms since the epoch).
    pub fn authenticate_oauthbearer(&self, message: &[u8]) -> Result<(String, i64), Refusal> {
        let Some(v) = &self.oauth else {
            return Err(Refusal::Failed("OAUTHBEARER is not enabled".into()));
        };
        v.authenticate(message).map(|t| (t.principal, t.expiry_ms))
    }

    /// The listener's JWKS validator, if its OAUTHBEARER checks signed tokens: its key set
    /// must be fetched before the listener serves.
    pub fn jwks(&self) -> Option<&std::sync::Arc<JwksValidator>> {
        self.oauth.as_ref().and_then(TokenValidator::jwks)
    }
}

/// The username and password this broker authenticates with to the other brokers, as Kafka's
/// inter-broker client finds them: the `username` and `password` options of the inter-broker
/// listener's JAAS entry for `mechanism` (`listener.name.<l>.<mechanism>.sasl.jaas.config`),
/// else of `sasl.jaas.config`. The mechanism must be one the listener offers, as Kafka checks.
pub fn inter_broker_credentials(
    config: &BrokerConfig,
    listener: &str,
    mechanism: Mechanism,
) -> Result<(String, String), SaslConfigError> {
    let err = |what: String| SaslConfigError {
        listener: listener.to_string(),
        what,
    };
    let enabled = config
        .listener_value(listener, "sasl.enabled.mechanisms")
        .unwrap_or_default();
    if !crate::config::split_list(&enabled)
        .iter()
        .any(|m| m == mechanism.name())
    {
        return Err(err(format!(
            "sasl.mechanism.inter.broker.protocol={} must be one of the inter-broker listener's \
             sasl.enabled.mechanisms ({enabled})",
            mechanism.name()
        )));
    }
    let key = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
    let text = config
        .listener_only_value(listener, &key)
        .or_else(|| config.listener_value(listener, "sasl.jaas.config"))
        .ok_or_else(|| {
            err(format!(
                "the inter-broker client needs its username and password in \
                 listener.name.{}.{key}",
                listener.to_ascii_lowercase()
            ))
        })?;
    let mut options = parse_jaas(&text).map_err(&err)?;
    match (options.remove("username"), options.remove("password")) {
        (Some(u), Some(p)) if !u.is_empty() => Ok((u, p)),
        _ => Err(err(format!(
            "listener.name.{}.{key} has no username and password options for the \
             inter-broker client",
            listener.to_ascii_lowercase()
        ))),
    }
}

/// The options of a JAAS entry as Kafka's `sasl.jaas.config` holds it:
/// `<LoginModule class> <required|requisite|sufficient|optional> key="value" key=value ... ;`.
pub fn parse_jaas(text: &str) -> Result<HashMap<String, String>, String> {
    let bad = |why: &str| format!("bad sasl.jaas.config: {why}");
    let text = text.trim();
    let body = text
        .strip_suffix(';')
        .ok_or_else(|| bad("it must end with ';'"))?;
    let mut rest = body.trim_start();
    let mut words = 0;
    // The module class and the control flag.
    while words < 2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err(bad("it needs a login module and a control flag"));
        }
        rest = rest[end..].trim_start();
        words += 1;
    }
    let mut options = HashMap::new();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| bad("an option without '='"))?;
        let key = rest[..eq].trim().to_string();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            out.push(next);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    _ => out.push(ch),
                }
            }
            let end = end.ok_or_else(|| bad("an unterminated quoted value"))?;
            value = out;
            rest = quoted[end + 1..].trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = rest[end..].trim_start();
        }
        options.insert(key, value);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_options_are_read() {
        let o = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a\"b" user_alice="alice-secret" user_bob=bob;"#,
        )
        .unwrap();
        assert_eq!(o["username"], "admin");
        assert_eq!(o["password"], "a\"b");
        assert_eq!(o["user_alice"], "alice-secret");
        assert_eq!(o["user_bob"], "bob");
        assert!(parse_jaas("x required a=b").is_err());
        assert!(parse_jaas("x required a=\"b;").is_err());
        assert!(parse_jaas("x required ;").unwrap().is_empty());
    }

    fn listener(users: &[(&str, &str)]) -> SaslListener {
        SaslListener {
            mechanisms: vec![Mechanism::Plain, Mechanism::OAuthBearer],
            plain_users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            oauth: Some(TokenValidator::Unsecured(
                crate::security::oauthbearer::UnsecuredValidator::from_jaas(&HashMap::new()),
            )),
            max_reauth_ms: 0,
            failed_authentication_delay: Duration::ZERO,
        }
    }

    #[test]
    fn plain_checks_user_password_and_authzid() {
        let l = listener(&[("alice", "s3cret")]);
        assert_eq!(l.authenticate_plain(b"\0alice\0s3cret").unwrap(), "alice");
        assert_eq!(
            l.authenticate_plain(b"alice\0alice\0s3cret").unwrap(),
            "alice"
        );
        assert!(l.authenticate_plain(b"\0alice\0wrong").is_err());
        assert!(l.authenticate_plain(b"\0bob\0s3cret").is_err());
        assert!(l.authenticate_plain(b"bob\0alice\0s3cret").is_err());
        assert!(l.authenticate_plain(b"alice\0s3cret").is_err());
    }

    fn token(claims: &str, alg: &str) -> String {
        use base64::Engine;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "n,,\u{1}auth=Bearer {}.{}.\u{1}\u{1}",
            e(&format!("{{\"alg\":\"{alg}\"}}")),
            e(claims)
        )
    }

    #[test]
    fn unsecured_tokens_are_validated() {
        let l = listener(&[]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let good = token(
            &format!(
                "{{\"sub\":\"alice\",\"iat\":{},\"exp\":{}}}",
                now - 1,
                now + 60
            ),
            "none",
        );
        let (who, exp) = l.authenticate_oauthbearer(good.as_bytes()).unwrap();
        assert_eq!(who, "alice");
        assert_eq!(exp, ((now + 60) * 1000) as i64);
        let expired = token(
            &format!("{{\"sub\":\"alice\",\"exp\":{}}}", now - 10),
            "none",
        );
        assert!(l.authenticate_oauthbearer(expired.as_bytes()).is_err());
        let signed = token(
            &format!("{{\"sub\":\"alice\",\"exp\":{}}}", now + 60),
            "RS256",
        );
        assert!(l.authenticate_oauthbearer(signed.as_bytes()).is_err());
        let anonymous = token(&format!("{{\"exp\":{}}}", now + 60), "none");
        assert!(l.authenticate_oauthbearer(anonymous.as_bytes()).is_err());
    }
    fn config(text: &str) -> BrokerConfig {
        BrokerConfig::from_properties_text(text, &[]).unwrap()
    }

    #[test]
    fn inter_broker_credentials_come_from_the_listener_jaas_entry() {
        let c = config(concat!(
            "listeners=INTERNAL://:9093,EXTERNAL://:9094\n",
            "listener.security.protocol.map=INTERNAL:SASL_SSL,EXTERNAL:SASL_PLAINTEXT\n",
            "inter.broker.listener.name=INTERNAL\n",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512\n",
            "listener.name.internal.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";\n",
            "listener.name.external.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"other\" password=\"x\";\n",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"scram-secret\";\n",
        ));
        assert_eq!(
            inter_broker_credentials(&c, "INTERNAL", Mechanism::Plain).unwrap(),
            ("admin".to_string(), "admin-secret".to_string())
        );
        // No entry for SCRAM-SHA-512 on the listener: the broker-wide sasl.jaas.config.
        assert_eq!(
            inter_broker_credentials(&c, "INTERNAL", Mechanism::Scram(ScramMechanism::Sha512))
                .unwrap(),
            ("broker".to_string(), "scram-secret".to_string())
        );
        // SCRAM-SHA-256 is not enabled on the listener.
        let e = inter_broker_credentials(&c, "INTERNAL", Mechanism::Scram(ScramMechanism::Sha256))
            .unwrap_err()
            .to_string();
        assert!(e.contains("sasl.enabled.mechanisms"), "{e}");
    }

    #[test]
    fn inter_broker_credentials_need_username_and_password() {
        let c = config(concat!(
            "listeners=SASL_PLAINTEXT://:9093\n",
            "security.inter.broker.protocol=SASL_PLAINTEXT\n",
            "sasl.enabled.mechanisms=PLAIN\n",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\";\n",
        ));
        let e = inter_broker_credentials(&c, "SASL_PLAINTEXT", Mechanism::Plain)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config has no username"),
            "{e}"
        );
        let c = config(concat!(
            "listeners=SASL_PLAINTEXT://:9093\n",
            "security.inter.broker.protocol=SASL_PLAINTEXT\n",
            "sasl.enabled.mechanisms=PLAIN\n",
        ));
        let e = inter_broker_credentials(&c, "SASL_PLAINTEXT", Mechanism::Plain)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs its username and password"), "{e}");
    }
}
