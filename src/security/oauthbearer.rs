//! OAUTHBEARER (RFC 7628) on the broker: the client's message, and the validation of the bearer
//! token in it, with one of Kafka's two server callback handlers
//! (`listener.name.<l>.oauthbearer.sasl.server.callback.handler.class`):
//!
//! - none (Kafka's default, `OAuthBearerUnsecuredValidatorCallbackHandler`): an unsecured JWS
//!   (`alg: none`), with the `unsecuredValidator*` options of the listener's JAAS text;
//! - `OAuthBearerValidatorCallbackHandler`: a signed JWT, checked against the identity provider's
//!   JSON Web Key Set (`sasl.oauthbearer.jwks.endpoint.url`, http(s) or file) and the expected
//!   audience and issuer, as Kafka's `ValidatorAccessTokenValidator` does.
//!
//! An http(s) key set is fetched before the listener serves (`JwksValidator::start`), again
//! every `sasl.oauthbearer.jwks.endpoint.refresh.ms`, and at once when a token names a key id
//! the set lacks (at most once a minute per key id), as Kafka's `RefreshingHttpsJwks` does. The
//! token naming the new key fails; the client's retry finds it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::config::BrokerConfig;

/// Kafka's JWKS-validating handler, under its current name and its deprecated one.
const VALIDATOR_HANDLERS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];
/// Kafka's default handler, which may also be named explicitly.
const UNSECURED_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// A key id not in the set triggers a fetch at most this often (Kafka's
/// `MISSING_KEY_ID_CACHE_IN_FLIGHT_MS`), so a client cannot make the broker hammer the provider.
const MISSING_KEY_ID_INTERVAL: Duration = Duration::from_secs(60);
/// How many missing key ids are remembered (Kafka's `MISSING_KEY_ID_CACHE_MAX_ENTRIES`).
const MISSING_KEY_IDS_KEPT: usize = 16;
/// Longer key ids are not remembered and trigger no fetch (Kafka's
/// `MISSING_KEY_ID_MAX_KEY_LENGTH`).
const MISSING_KEY_ID_MAX_LEN: usize = 1000;
/// One fetch of the key set may take this long, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A key set larger than this is refused (real ones are a few KB).
const MAX_JWKS_BYTES: usize = 1 << 20;

/// How a listener's OAUTHBEARER tokens are validated.
pub enum TokenValidator {
    Unsecured(UnsecuredValidator),
    Jwks(Arc<JwksValidator>),
}

/// A token that passed: the principal's name and the token's expiry (ms since the epoch).
pub struct ValidToken {
    pub principal: String,
    pub expiry_ms: i64,
}

/// Why an OAUTHBEARER message was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// The token did not validate: answered with an error challenge (RFC 7628 3.2.2).
    InvalidToken(String),
    /// The message itself is wrong, or asks for another identity: the exchange fails at once.
    Failed(String),
}

impl TokenValidator {
    /// The listener's validator, from its callback handler class
    /// (`listener.name.<l>.oauthbearer.sasl.server.callback.handler.class`) and settings;
    /// `jaas` holds the options of its OAUTHBEARER JAAS entry.
    pub fn from_config(
        config: &BrokerConfig,
        listener: &str,
        jaas: &HashMap<String, String>,
    ) -> Result<TokenValidator, String> {
        // Kafka reads OAUTHBEARER's settings with the mechanism's prefix first, then the
        // listener's, then the broker-wide key.
        let value = |key: &str| {
            config
                .listener_only_value(listener, &format!("oauthbearer.{key}"))
                .or_else(|| config.listener_value(listener, key))
        };
        match config.listener_only_value(listener, "oauthbearer.sasl.server.callback.handler.class")
        {
            None => Ok(TokenValidator::Unsecured(UnsecuredValidator::from_jaas(
                jaas,
            ))),
            Some(class) if class == UNSECURED_HANDLER => Ok(TokenValidator::Unsecured(
                UnsecuredValidator::from_jaas(jaas),
            )),
            Some(class) if VALIDATOR_HANDLERS.contains(&class.as_str()) => {
                JwksValidator::from_settings(&value).map(|v| TokenValidator::Jwks(Arc::new(v)))
            }
            Some(class) => Err(format!(
                "OAUTHBEARER validation by {class} is not available in gregor; it has Kafka's \
                 default (unsecured tokens) and {} (signed tokens and a JWKS)",
                VALIDATOR_HANDLERS[0]
            )),
        }
    }

    /// The JWKS validator, whose key set must be fetched before the listener serves.
    pub fn jwks(&self) -> Option<&Arc<JwksValidator>> {
        match self {
            TokenValidator::Jwks(v) => Some(v),
            TokenValidator::Unsecured(_) => None,
        }
    }

    /// The client's first message: `gs2-header \x01 auth=Bearer <token> \x01 ... \x01 \x01`.
    /// Returns who the token names and until when.
    pub fn authenticate(&self, message: &[u8]) -> Result<ValidToken, Refusal> {
        let (authzid, token) = bearer_token(message).map_err(Refusal::Failed)?;
        let valid = match self {
            TokenValidator::Unsecured(v) => v.validate(token),
            TokenValidator::Jwks(v) => v.validate(token),
        }
        .map_err(Refusal::InvalidToken)?;
        if !authzid.is_empty() && authzid != valid.principal {
            return Err(Refusal::Failed(format!(
                "Authentication failed: Client requested an authorization id ({authzid}) that is \
                 different from the token's principal name ({})",
                valid.principal
            )));
        }
        Ok(valid)
    }
}

/// The authorization id (`a=` of the gs2 header, often empty) and the token of an
/// OAUTHBEARER client message.
fn bearer_token(message: &[u8]) -> Result<(&str, &str), String> {
    let text = std::str::from_utf8(message).map_err(|_| "invalid OAUTHBEARER message")?;
    let (gs2, rest) = text
        .split_once('\u{1}')
        .ok_or("invalid OAUTHBEARER message: no key-value pairs")?;
    let authzid = match gs2.strip_prefix("n,").or_else(|| gs2.strip_prefix("y,")) {
        Some(rest) => rest
            .strip_prefix("a=")
            .map_or("", |a| a.trim_end_matches(',')),
        None => return Err("invalid OAUTHBEARER message: bad gs2 header".into()),
    };
    let token = rest
        .split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .ok_or("invalid OAUTHBEARER message: no auth=Bearer token")?
        .trim();
    Ok((authzid, token))
}

/// A NumericDate claim (seconds, possibly fractional) in ms, if present.
fn date_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|s| Some((s * 1000.0) as i64))
            .ok_or_else(|| format!("claim {name} is not a number")),
        Some(_) => Err(format!("claim {name} is not a number")),
    }
}

/// Kafka's unsecured validator options (`unsecuredValidator*` in the JAAS text).
#[derive(Clone, Debug)]
pub struct UnsecuredValidator {
    principal_claim: String,
    scope_claim: String,
    required_scope: Vec<String>,
    allowable_clock_skew_ms: i64,
}

impl UnsecuredValidator {
    pub fn from_jaas(options: &HashMap<String, String>) -> UnsecuredValidator {
        UnsecuredValidator {
            principal_claim: options
                .get("unsecuredValidatorPrincipalClaimName")
                .cloned()
                .unwrap_or_else(|| "sub".into()),
            scope_claim: options
                .get("unsecuredValidatorScopeClaimName")
                .cloned()
                .unwrap_or_else(|| "scope".into()),
            required_scope: options
                .get("unsecuredValidatorRequiredScope")
                .map(|s| crate::config::split_list(s))
                .unwrap_or_default(),
            allowable_clock_skew_ms: options
                .get("unsecuredValidatorAllowableClockSkewMs")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        }
    }

    /// As Kafka's default validator checks an unsecured JWS: the principal claim, `exp` in the
    /// future, `iat` not in it (both with the allowed clock skew), and the required scope.
    fn validate(&self, token: &str) -> Result<ValidToken, String> {
        let claims = unsecured_jws_claims(token)?;
        let now_ms = now_ms();
        let exp = date_claim(&claims, "exp")?.ok_or("the token has no exp claim")?;
        if exp + self.allowable_clock_skew_ms <= now_ms {
            return Err(format!("the token expired at {exp} ms"));
        }
        if let Some(iat) = date_claim(&claims, "iat")? {
            if iat - self.allowable_clock_skew_ms > now_ms {
                return Err("the token's iat is in the future".into());
            }
        }
        let principal = claims
            .get(&self.principal_claim)
            .and_then(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("the token has no {} claim", self.principal_claim))?;
        if !self.required_scope.is_empty() {
            let scope: Vec<String> = match claims.get(&self.scope_claim) {
                Some(Value::String(s)) => s.split(' ').map(str::to_string).collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(missing) = self.required_scope.iter().find(|s| !scope.contains(s)) {
                return Err(format!("the token's scope lacks {missing}"));
            }
        }
        Ok(ValidToken {
            principal: principal.to_string(),
            expiry_ms: exp,
        })
    }
}

/// The claims of an unsecured JWS `base64url(header).base64url(claims).` whose header says
/// `"alg":"none"`.
fn unsecured_jws_claims(token: &str) -> Result<Map<String, Value>, String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || !parts[2].is_empty() {
        return Err("not an unsecured JWS (header.claims. with an empty signature)".into());
    }
    let decode = |part: &str, what: &str| -> Result<Map<String, Value>, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|e| format!("the token's {what} is not base64url: {e}"))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(format!("the token's {what} is not a JSON object")),
        }
    };
    let header = decode(parts[0], "header")?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("none") {
        return Err("the token is not unsecured (alg is not none)".into());
    }
    decode(parts[1], "claims")
}

/// Where the key set comes from.
#[derive(Clone, Debug)]
enum JwksSource {
    /// Read once, when the broker starts (Kafka does not re-read a file either).
    File(PathBuf),
    /// Fetched at start, every `refresh`, and on an unknown key id.
    Http(hyper::Uri),
}

/// Signed-token validation against an identity provider's keys (Kafka's
/// `OAuthBearerValidatorCallbackHandler` with `ValidatorAccessTokenValidator`).
pub struct JwksValidator {
    source: JwksSource,
    /// The current key set. Locked only to read or replace the `Arc`.
    keys: RwLock<Arc<JwkSet>>,
    expected_audience: Vec<String>,
    expected_issuer: Option<String>,
    scope_claim: String,
    sub_claim: String,
    clock_skew_s: u64,
    refresh_every: Duration,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    /// Key ids tokens named that the set lacked, and when a fetch for each may run again.
    /// Locked for a lookup and an insert.
    missing_key_ids: Mutex<HashMap<String, Instant>>,
    /// Wakes the refresh task for an unknown key id.
    fetch_now: Notify,
}

impl JwksValidator {
    fn from_settings(value: &dyn Fn(&str) -> Option<String>) -> Result<JwksValidator, String> {
        let url = value("sasl.oauthbearer.jwks.endpoint.url").ok_or(
            "OAuthBearerValidatorCallbackHandler needs sasl.oauthbearer.jwks.endpoint.url",
        )?;
        let source = if let Some(path) = url.strip_prefix("file://") {
            JwksSource::File(PathBuf::from(path))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            JwksSource::Http(url.parse().map_err(|e| {
                format!("sasl.oauthbearer.jwks.endpoint.url={url} is not a URL: {e}")
            })?)
        } else {
            return Err(format!(
                "sasl.oauthbearer.jwks.endpoint.url={url}: the URL must be http://, https:// or \
                 file://"
            ));
        };
        let number = |key: &str, default: u64| -> Result<u64, String> {
            match value(key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| format!("{key}={v} is not a non-negative number")),
            }
        };
        let validator = JwksValidator {
            keys: RwLock::new(Arc::new(JwkSet { keys: Vec::new() })),
            expected_audience: value("sasl.oauthbearer.expected.audience")
                .map(|s| crate::config::split_list(&s))
                .unwrap_or_default(),
            expected_issuer: value("sasl.oauthbearer.expected.issuer").filter(|s| !s.is_empty()),
            scope_claim: value("sasl.oauthbearer.scope.claim.name")
                .unwrap_or_else(|| "scope".into()),
            sub_claim: value("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
            clock_skew_s: number("sasl.oauthbearer.clock.skew.seconds", 30)?,
            refresh_every: Duration::from_millis(
                number("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?.max(1000),
            ),
            retry_backoff: Duration::from_millis(number(
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
                100,
            )?),
            retry_backoff_max: Duration::from_millis(number(
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                10_000,
            )?),
            missing_key_ids: Mutex::new(HashMap::new()),
            fetch_now: Notify::new(),
            source,
        };
        if let JwksSource::File(path) = &validator.source {
            let bytes = std::fs::read(path).map_err(|e| {
                format!(
                    "sasl.oauthbearer.jwks.endpoint.url: cannot read {}: {e}",
                    path.display()
                )
            })?;
            validator.install(parse_jwks(&bytes)?);
        }
        Ok(validator)
    }

    /// Fetches an http(s) key set before the listener serves (a broker that cannot reach its
    /// identity provider does not start, as Kafka's), then keeps it fresh in a task of its own.
    pub async fn start(self: &Arc<Self>) -> Result<(), String> {
        let JwksSource::Http(uri) = &self.source else {
            return Ok(());
        };
        let keys = self
            .fetch_with_retries()
            .await
            .map_err(|e| format!("cannot fetch the JWKS from {uri}: {e}"))?;
        info!(url = %uri, keys = keys.keys.len(), "OAUTHBEARER: JWKS fetched");
        self.install(keys);
        tokio::spawn(Arc::clone(self).refresh_loop());
        Ok(())
    }

    async fn refresh_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.refresh_every) => {}
                _ = self.fetch_now.notified() => {}
            }
            match self.fetch_with_retries().await {
                Ok(keys) => {
                    info!(keys = keys.keys.len(), "OAUTHBEARER: JWKS refreshed");
                    {
                        let mut missing = lock(&self.missing_key_ids);
                        for k in &keys.keys {
                            if let Some(kid) = &k.common.key_id {
                                missing.remove(kid);
                            }
                        }
                    }
                    self.install(keys);
                }
                Err(e) => {
                    warn!(error = %e, "OAUTHBEARER: JWKS refresh failed; keeping the keys we have")
                }
            }
        }
    }

    /// Kafka's `Retry`: attempts until `retry_backoff_max` has passed, waiting `retry_backoff`
    /// and doubling.
    async fn fetch_with_retries(&self) -> Result<JwkSet, String> {
        let JwksSource::Http(uri) = &self.source else {
            return Err("not an http(s) key set".into());
        };
        let end = Instant::now() + self.retry_backoff_max;
        let mut wait = self.retry_backoff;
        loop {
            let error = match fetch(uri).await.and_then(|body| parse_jwks(&body)) {
                Ok(keys) => return Ok(keys),
                Err(e) => e,
            };
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(error);
            }
            warn!(url = %uri, error = %error, "OAUTHBEARER: JWKS fetch failed; retrying");
            tokio::time::sleep(wait.min(left)).await;
            wait = wait.saturating_mul(2);
        }
    }

    fn install(&self, keys: JwkSet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }

    /// Checks a signed JWT as Kafka's validator does: a signature by a key of the set (by key
    /// id, algorithm and key type; never `alg: none`), `exp` and `iat` present, `exp` and `nbf`
    /// within the clock skew, the audience and issuer if configured, a non-empty subject, and
    /// a scope that is a string or a list of distinct strings.
    fn validate(&self, token: &str) -> Result<ValidToken, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| format!("Could not validate the access token: bad JWS header: {e}"))?;
        let keys = Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()));
        let candidates: Vec<&Jwk> = keys
            .keys
            .iter()
            .filter(|k| key_fits(k, header.alg, header.kid.as_deref()))
            .collect();
        if candidates.is_empty() {
            if let Some(kid) = &header.kid {
                self.key_id_missing(kid);
            }
            return Err(format!(
                "Could not validate the access token: no key of the JWKS verifies a {:?} \
                 signature with key id {}",
                header.alg,
                header.kid.as_deref().unwrap_or("(none)")
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.clock_skew_s;
        validation.validate_nbf = true;
        validation.required_spec_claims = HashSet::from(["exp".to_string()]);
        if self.expected_audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.expected_audience);
        }
        if let Some(iss) = &self.expected_issuer {
            validation.set_issuer(&[iss]);
        }
        let mut last_error = String::new();
        for jwk in candidates {
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(key) => key,
                Err(e) => {
                    last_error = format!("unusable JWK: {e}");
                    continue;
                }
            };
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(data) => return self.check_claims(&data.claims),
                Err(e) => last_error = e.to_string(),
            }
        }
        Err(format!("Could not validate the access token: {last_error}"))
    }

    /// The claims `jsonwebtoken` does not check: `iat` required, the subject, the scope.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<ValidToken, String> {
        let exp = date_claim(claims, "exp")?.ok_or("exp value must be non-null")?;
        if exp < 0 {
            return Err(format!(
                "exp value must be non-negative; value given was \"{exp}\""
            ));
        }
        match date_claim(claims, "iat")? {
            None => return Err("iat value must be non-null".into()),
            Some(iat) if iat < 0 => {
                return Err(format!(
                    "iat value must be null or non-negative; value given was \"{iat}\""
                ))
            }
            Some(_) => {}
        }
        let sub = match claims.get(&self.sub_claim) {
            Some(Value::String(s)) => s.trim(),
            Some(_) => return Err(format!("{} value must be a string", self.sub_claim)),
            None => return Err(format!("{} value must be non-null", self.sub_claim)),
        };
        if sub.is_empty() {
            return Err(format!("{} value must be non-empty", self.sub_claim));
        }
        let scopes: Vec<&str> = match claims.get(&self.scope_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(_) => Vec::new(),
        };
        let mut seen = HashSet::new();
        for scope in scopes {
            let scope = scope.trim();
            if scope.is_empty() {
                return Err(format!("{} value must be non-empty", self.scope_claim));
            }
            if !seen.insert(scope) {
                return Err(format!(
                    "{} value must not contain duplicates - {scope} already present",
                    self.scope_claim
                ));
            }
        }
        Ok(ValidToken {
            principal: sub.to_string(),
            expiry_ms: exp,
        })
    }

    /// A token named a key id the set lacks: fetch the set now, unless this id asked within
    /// the last minute (or the source is a file, which Kafka does not re-read).
    fn key_id_missing(&self, kid: &str) {
        if !matches!(self.source, JwksSource::Http(_)) || kid.len() > MISSING_KEY_ID_MAX_LEN {
            return;
        }
        let now = Instant::now();
        let mut missing = lock(&self.missing_key_ids);
        if missing.get(kid).is_some_and(|next| *next > now) {
            return;
        }
        if missing.len() >= MISSING_KEY_IDS_KEPT {
            if let Some(oldest) = missing
                .iter()
                .min_by_key(|(_, next)| **next)
                .map(|(k, _)| k.clone())
            {
                missing.remove(&oldest);
            }
        }
        missing.insert(kid.to_string(), now + MISSING_KEY_ID_INTERVAL);
        drop(missing);
        info!(
            kid,
            "OAUTHBEARER: a token names a key the JWKS lacks; fetching the JWKS"
        );
        self.fetch_now.notify_one();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `jwk` may verify a signature made with `alg` by the key `kid`: the same key id
/// when the token names one, a signing key (`use` absent or `sig`), the algorithm the key is
/// for if it says, and a key type that algorithm uses.
fn key_fits(jwk: &Jwk, alg: Algorithm, kid: Option<&str>) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as P;
    if kid.is_some() && jwk.common.key_id.as_deref() != kid {
        return false;
    }
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return false;
    }
    if let Some(key_alg) = jwk.common.key_algorithm {
        if format!("{key_alg:?}") != format!("{alg:?}") {
            return false;
        }
    }
    matches!(
        (&jwk.algorithm, alg),
        (
            P::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512,
        ) | (P::EllipticCurve(_), Algorithm::ES256 | Algorithm::ES384)
            | (P::OctetKeyPair(_), Algorithm::EdDSA)
    )
}

/// A JWKS document (RFC 7517 section 5). Keys of types `jsonwebtoken` does not know are
/// skipped, as jose4j skips them, rather than refusing the whole set.
fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, String> {
    let doc: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let Some(Value::Array(list)) = doc.get("keys") else {
        return Err("the JWKS has no \"keys\" array".into());
    };
    let mut keys = Vec::new();
    for k in list {
        match serde_json::from_value::<Jwk>(k.clone()) {
            Ok(jwk) => keys.push(jwk),
            Err(e) => warn!(error = %e, "OAUTHBEARER: skipping a JWK gregor cannot use"),
        }
    }
    Ok(JwkSet { keys })
}

/// One HTTP/1.1 GET of the key set (https with the system's CA certificates).
async fn fetch(uri: &hyper::Uri) -> Result<Vec<u8>, String> {
    tokio::time::timeout(FETCH_TIMEOUT, fetch_once(uri))
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}

async fn fetch_once(uri: &hyper::Uri) -> Result<Vec<u8>, String> {
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    if https {
        let connector = tokio_rustls::TlsConnector::from(https_client_config()?);
        let name =
            rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|e| format!("{host} is not a server name: {e}"))?;
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {host}: {e}"))?;
        http_get(hyper_util::rt::TokioIo::new(tls), uri).await
    } else {
        http_get(hyper_util::rt::TokioIo::new(tcp), uri).await
    }
}

async fn http_get<IO>(io: IO, uri: &hyper::Uri) -> Result<Vec<u8>, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(connection);
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    let request = hyper::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::ACCEPT, "application/json")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("HTTP body: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("HTTP status {status}"));
    }
    Ok(body.to_vec())
}

/// A TLS client trusting the system's CA certificates (or `SSL_CERT_FILE`'s).
fn https_client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(format!(
            "no CA certificates found to check the JWKS endpoint's certificate ({:?})",
            found.errors
        ));
    }
    let provider = Arc::new(super::tls::provider("")?);
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    /// An EC P-256 key pair: (signing key, its JWK with `kid`).
    fn ec_key(kid: &str) -> (EncodingKey, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // The public key is 0x04 || x || y.
        let public = pair.public_key().as_ref();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
            "x": b64(&public[1..33]), "y": b64(&public[33..65]),
        });
        (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
    }

    fn validator(jwks: Vec<Value>) -> JwksValidator {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, serde_json::json!({ "keys": jwks }).to_string()).unwrap();
        let settings: HashMap<&str, String> = HashMap::from([
            (
                "sasl.oauthbearer.jwks.endpoint.url",
                format!("file://{}", path.display()),
            ),
            ("sasl.oauthbearer.expected.audience", "kafka,other".into()),
            (
                "sasl.oauthbearer.expected.issuer",
                "https://idp.test".into(),
            ),
            ("sasl.oauthbearer.clock.skew.seconds", "5".into()),
        ]);
        JwksValidator::from_settings(&|k: &str| settings.get(k).cloned()).unwrap()
    }

    fn token(key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    fn claims(sub: &str, exp_in: i64) -> Value {
        let now = now_ms() / 1000;
        serde_json::json!({"sub": sub, "iat": now, "exp": now + exp_in, "aud": "kafka",
                           "iss": "https://idp.test", "scope": "produce"})
    }

    #[test]
    fn a_signed_token_names_its_subject_and_bad_ones_are_refused() {
        let (k1, jwk1) = ec_key("k1");
        let (k2, _) = ec_key("k2");
        let (rogue, _) = ec_key("k1");
        let v = validator(vec![jwk1]);

        let ok = v
            .validate(&token(&k1, Some("k1"), claims("alice", 600)))
            .unwrap();
        assert_eq!(ok.principal, "alice");
        assert!(ok.expiry_ms > now_ms());
        // Without a key id, the one key that fits is tried.
        assert_eq!(
            v.validate(&token(&k1, None, claims("bob", 600)))
                .unwrap()
                .principal,
            "bob"
        );

        let refused = |t: String, why: &str| {
            let e = v
                .validate(&t)
                .err()
                .unwrap_or_else(|| panic!("{why}: accepted"));
            assert!(
                e.starts_with("Could not validate") || e.contains("value must"),
                "{why}: {e}"
            );
        };
        refused(
            token(&rogue, Some("k1"), claims("alice", 600)),
            "signed by another key",
        );
        refused(
            token(&k2, Some("k2"), claims("alice", 600)),
            "a key id not in the set",
        );
        refused(
            token(&k1, Some("k1"), claims("alice", -60)),
            "expired beyond the skew",
        );
        let mut c = claims("alice", 600);
        c["aud"] = "someone-else".into();
        refused(token(&k1, Some("k1"), c), "wrong audience");
        let mut c = claims("alice", 600);
        c["iss"] = "https://evil.test".into();
        refused(token(&k1, Some("k1"), c), "wrong issuer");
        let mut c = claims("alice", 600);
        c.as_object_mut().unwrap().remove("iat");
        refused(token(&k1, Some("k1"), c), "no iat");
        let mut c = claims("alice", 600);
        c["sub"] = "  ".into();
        refused(token(&k1, Some("k1"), c), "blank subject");
        let mut c = claims("alice", 600);
        c["scope"] = serde_json::json!(["a", "a"]);
        refused(token(&k1, Some("k1"), c), "duplicate scope");
        // Within the 5 s skew an expired token still passes, as jose4j allows.
        assert!(v
            .validate(&token(&k1, Some("k1"), claims("alice", -2)))
            .is_ok());

        // alg none, and garbage, on a JWKS listener.
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(&claims("alice", 600).to_string())
        );
        assert!(v.validate(&none).is_err());
        assert!(v.validate("not.a.jwt").is_err());
    }

    #[test]
    fn the_client_message_carries_the_token() {
        let (k1, jwk1) = ec_key("k1");
        let v = TokenValidator::Jwks(Arc::new(validator(vec![jwk1])));
        let t = token(&k1, Some("k1"), claims("carol", 600));
        let message = format!("n,,\u{1}auth=Bearer {t}\u{1}\u{1}");
        assert_eq!(
            v.authenticate(message.as_bytes()).unwrap().principal,
            "carol"
        );
        let as_carol = format!("n,a=carol,\u{1}auth=Bearer {t}\u{1}\u{1}");
        assert_eq!(
            v.authenticate(as_carol.as_bytes()).unwrap().principal,
            "carol"
        );
        let as_dave = format!("n,a=dave,\u{1}auth=Bearer {t}\u{1}\u{1}");
        assert!(matches!(
            v.authenticate(as_dave.as_bytes()),
            Err(Refusal::Failed(_))
        ));
        let bad_gs2 = format!("p,,\u{1}auth=Bearer {t}\u{1}\u{1}");
        assert!(matches!(
            v.authenticate(bad_gs2.as_bytes()),
            Err(Refusal::Failed(_))
        ));
        assert!(matches!(
            v.authenticate(b"n,,\x01\x01"),
            Err(Refusal::Failed(_))
        ));
        let other = format!("n,,\u{1}auth=Bearer {}x\u{1}\u{1}", &t[..t.len() - 1]);
        assert!(matches!(
            v.authenticate(other.as_bytes()),
            Err(Refusal::InvalidToken(_))
        ));
    }

    #[test]
    fn an_unknown_key_type_is_skipped_and_a_missing_file_stops_the_start() {
        let (k1, jwk1) = ec_key("k1");
        let strange = serde_json::json!({"kty": "XYZ", "kid": "x"});
        let v = validator(vec![strange, jwk1]);
        assert_eq!(v.keys.read().unwrap().keys.len(), 1);
        assert!(v
            .validate(&token(&k1, Some("k1"), claims("dave", 600)))
            .is_ok());
        let settings = |k: &str| {
            (k == "sasl.oauthbearer.jwks.endpoint.url")
                .then(|| "file:///nonexistent/jwks.json".to_string())
        };
        assert!(JwksValidator::from_settings(&settings).is_err());
        let ftp =
            |k: &str| (k == "sasl.oauthbearer.jwks.endpoint.url").then(|| "ftp://x/".to_string());
        let e = JwksValidator::from_settings(&ftp).err().unwrap();
        assert!(e.contains("http://"), "{e}");
    }
}
