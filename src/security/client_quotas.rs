//! Client quotas as Kafka stores them (`/config/users/<u>`, `/config/clients/<c>`,
//! `/config/users/<u>/clients/<c>`, `<default>` for the default entity): the quota keys and
//! their types, and how a value is written (a whole number for the byte rates, a decimal for
//! `request_percentage`); and `ClientQuotaManager`, which enforces the byte rates and the
//! request percentage.

/// The quota keys of user and client-id entities, and whether a value must be a whole number
/// (Kafka's `QuotaConfigs`: LONG) or may be a decimal (DOUBLE).
pub const QUOTA_KEYS: &[(&str, bool)] = &[
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];

/// Whether `key` is a quota key (a user's configs also hold SCRAM credentials).
pub fn is_quota_key(key: &str) -> bool {
    QUOTA_KEYS.iter().any(|(k, _)| *k == key)
}

/// The stored text of a quota value, or why it cannot be one.
pub fn encode_quota(key: &str, value: f64) -> Result<String, String> {
    let Some(&(_, whole)) = QUOTA_KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("Invalid configuration key {key}"));
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(format!(
            "Quota {key} must be a positive number, not {value}"
        ));
    }
    if whole {
        if value.fract() != 0.0 || value > i64::MAX as f64 {
            return Err(format!("Configuration {key} must be a Long value"));
        }
        Ok(format!("{}", value as i64))
    } else {
        // Java's Double.toString for ordinary values: always a decimal point.
        let text = format!("{value}");
        Ok(if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        })
    }
}

/// A stored quota value as DescribeClientQuotas reports it.
pub fn decode_quota(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_stored_as_kafka_writes_them() {
        assert_eq!(
            encode_quota("producer_byte_rate", 1048576.0).unwrap(),
            "1048576"
        );
        assert_eq!(encode_quota("request_percentage", 200.0).unwrap(), "200.0");
        assert_eq!(encode_quota("request_percentage", 12.5).unwrap(), "12.5");
        assert!(encode_quota("producer_byte_rate", 1.5).is_err());
        assert!(encode_quota("producer_byte_rate", -1.0).is_err());
        assert!(encode_quota("SCRAM-SHA-512", 1.0).is_err());
        assert_eq!(decode_quota("1048576"), Some(1048576.0));
    }
}

/// Which quota a manager enforces: bytes produced or bytes fetched per second, or the share
/// of a thread's time spent on a client's requests (`request_percentage`, 100 = one thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaType {
    Produce,
    Fetch,
    Request,
}

impl QuotaType {
    fn key(self) -> &'static str {
        match self {
            QuotaType::Produce => "producer_byte_rate",
            QuotaType::Fetch => "consumer_byte_rate",
            QuotaType::Request => "request_percentage",
        }
    }

    /// What one unit of the stored value allows per second, in the unit `record` is given:
    /// bytes for the byte rates; nanoseconds of request handling for a percentage (1% of a
    /// thread is 10 ms each second).
    fn scale(self) -> f64 {
        match self {
            QuotaType::Produce | QuotaType::Fetch => 1.0,
            QuotaType::Request => 1e7,
        }
    }
}

/// The longest a client is told to wait: Kafka's `quota.window.num` × `quota.window.size.seconds`.
const MAX_THROTTLE: std::time::Duration = std::time::Duration::from_secs(11);

/// One entity's allowance, as a token bucket (the measure of Kafka's KIP-599 quotas): it fills
/// at the quota's rate up to one second's worth, and each request takes its bytes out. Kafka
/// measures byte rates over 11 one-second samples instead, which lets a client send ten
/// seconds' worth at once each time old samples expire; the bucket holds it to the quota over
/// any span, give or take one second's worth.
struct RateWindow {
    tokens: f64,
    updated: std::time::Instant,
}

impl RateWindow {
    fn new(quota: f64, now: std::time::Instant) -> Self {
        RateWindow {
            tokens: quota,
            updated: now,
        }
    }

    /// Takes `bytes` out; returns how long until the bucket is no longer in debt.
    fn take(&mut self, bytes: f64, quota: f64, now: std::time::Instant) -> std::time::Duration {
        let elapsed = now.duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * quota).min(quota) - bytes;
        self.updated = now;
        if self.tokens >= 0.0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64(-self.tokens / quota).min(MAX_THROTTLE)
    }
}

/// The quota entity that applies to a client, in Kafka's order of precedence: user and
/// client id, user and default client, user, default user and client id, default user and
/// default client, default user, client id, default client.
fn applicable(
    quotas: &std::collections::HashMap<crate::metadata::ConfigEntity, f64>,
    user: &str,
    client_id: &str,
) -> Option<(crate::metadata::ConfigEntity, f64)> {
    use crate::metadata::{ConfigEntity, EntityName};
    let named = |s: &str| Some(EntityName::Named(s.to_string()));
    let default = || Some(EntityName::Default);
    let candidates = [
        (named(user), named(client_id)),
        (named(user), default()),
        (named(user), None),
        (default(), named(client_id)),
        (default(), default()),
        (default(), None),
        (None, named(client_id)),
        (None, default()),
    ];
    candidates.into_iter().find_map(|(user, client_id)| {
        let entity = ConfigEntity { user, client_id };
        quotas.get(&entity).map(|q| (entity, *q))
    })
}

/// Byte-rate quotas of one type (Kafka's `ClientQuotaManager`): the quotas in force, read from
/// the metadata store by `Broker::refresh_client_quotas`, and each throttled entity's bucket. A client over
/// its quota is told how long to wait (throttle_time_ms) and its connection is not read for
/// that long, so that even a client that ignores the hint is held to the rate.
pub struct ClientQuotaManager {
    quota_type: QuotaType,
    quotas: std::sync::RwLock<std::collections::HashMap<crate::metadata::ConfigEntity, f64>>,
    rates: std::sync::Mutex<std::collections::HashMap<crate::metadata::ConfigEntity, RateWindow>>,
}

impl ClientQuotaManager {
    pub fn new(quota_type: QuotaType) -> Self {
        ClientQuotaManager {
            quota_type,
            quotas: Default::default(),
            rates: Default::default(),
        }
    }

    /// Replaces the quotas in force with those in `configs` (every entity's configs).
    pub fn update(
        &self,
        configs: &[(crate::metadata::ConfigEntity, crate::metadata::EntityConfig)],
    ) {
        let key = self.quota_type.key();
        let scale = self.quota_type.scale();
        let quotas = configs
            .iter()
            .filter_map(|(entity, config)| {
                Some((entity.clone(), decode_quota(config.get(key)?)? * scale))
            })
            .collect::<std::collections::HashMap<_, _>>();
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        rates.retain(|entity, _| quotas.contains_key(entity));
        *self.quotas.write().unwrap_or_else(|p| p.into_inner()) = quotas;
    }

    /// Whether any quota of this type is in force (the request quota's timing is skipped
    /// otherwise).
    pub fn is_active(&self) -> bool {
        !self
            .quotas
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// How long a client must still wait for what it used before, without recording anything
    /// (the request quota: a request's cost is known only after it is handled).
    pub fn debt(&self, user: &str, client_id: &str) -> std::time::Duration {
        self.record(user, client_id, 0)
    }

    /// Records `bytes` (for the request quota: nanoseconds of handling) for a client and
    /// returns how long it must wait (zero within its quota).
    pub fn record(&self, user: &str, client_id: &str, bytes: usize) -> std::time::Duration {
        let found = {
            let quotas = self.quotas.read().unwrap_or_else(|p| p.into_inner());
            if quotas.is_empty() {
                return std::time::Duration::ZERO;
            }
            applicable(&quotas, user, client_id)
        };
        let Some((entity, quota)) = found else {
            return std::time::Duration::ZERO;
        };
        let now = std::time::Instant::now();
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        rates
            .entry(entity)
            .or_insert_with(|| RateWindow::new(quota, now))
            .take(bytes as f64, quota, now)
    }
}

#[cfg(test)]
mod manager_tests {
    use super::*;
    use crate::metadata::{ConfigEntity, EntityName};

    fn entity(user: Option<&str>, client: Option<&str>) -> ConfigEntity {
        let name = |n: &str| {
            if n == "<default>" {
                EntityName::Default
            } else {
                EntityName::Named(n.to_string())
            }
        };
        ConfigEntity {
            user: user.map(name),
            client_id: client.map(name),
        }
    }

    fn config(key: &str, value: &str) -> crate::metadata::EntityConfig {
        [(key.to_string(), value.to_string())].into_iter().collect()
    }

    #[test]
    fn the_most_specific_entity_applies() {
        let m = ClientQuotaManager::new(QuotaType::Produce);
        m.update(&[
            (
                entity(None, Some("<default>")),
                config("producer_byte_rate", "100"),
            ),
            (
                entity(None, Some("c1")),
                config("producer_byte_rate", "200"),
            ),
            (
                entity(Some("alice"), None),
                config("producer_byte_rate", "300"),
            ),
            (entity(Some("bob"), None), config("consumer_byte_rate", "5")),
        ]);
        let quotas = m.quotas.read().unwrap();
        assert_eq!(applicable(&quotas, "alice", "c1").unwrap().1, 300.0);
        assert_eq!(applicable(&quotas, "ANONYMOUS", "c1").unwrap().1, 200.0);
        assert_eq!(applicable(&quotas, "bob", "c2").unwrap().1, 100.0);
        assert_eq!(quotas.len(), 3, "bob's fetch quota is not a produce quota");
    }

    #[test]
    fn a_client_over_its_rate_is_throttled_in_proportion() {
        let m = ClientQuotaManager::new(QuotaType::Produce);
        m.update(&[(
            entity(None, Some("c1")),
            config("producer_byte_rate", "1000"),
        )]);
        assert_eq!(m.record("u", "other", 1_000_000), std::time::Duration::ZERO);
        // One second's worth may go at once.
        assert_eq!(m.record("u", "c1", 1_000), std::time::Duration::ZERO);
        // 3000 more: three seconds in debt (less the moment that passed).
        let wait = m.record("u", "c1", 3_000);
        assert!(wait > std::time::Duration::from_millis(2900), "{wait:?}");
        assert!(wait <= std::time::Duration::from_secs(3), "{wait:?}");
        // A debt beyond Kafka's longest wait is capped at it.
        let wait = m.record("u", "c1", 100_000);
        assert_eq!(wait, MAX_THROTTLE);
        m.update(&[]);
        assert_eq!(m.record("u", "c1", 1_000_000), std::time::Duration::ZERO);
    }

    #[test]
    fn a_request_percentage_is_a_share_of_a_thread() {
        let m = ClientQuotaManager::new(QuotaType::Request);
        assert!(!m.is_active());
        m.update(&[(
            entity(None, Some("c1")),
            config("request_percentage", "10.0"),
        )]);
        assert!(m.is_active());
        // 10% of a thread: 100 ms of handling each second. 100 ms at once is allowed...
        assert_eq!(m.record("u", "c1", 100_000_000), std::time::Duration::ZERO);
        assert_eq!(m.debt("u", "c1"), std::time::Duration::ZERO);
        // ... 50 ms more is half a second in debt, which `debt` then reports.
        let wait = m.record("u", "c1", 50_000_000);
        assert!(wait > std::time::Duration::from_millis(450), "{wait:?}");
        assert!(m.debt("u", "c1") > std::time::Duration::from_millis(400));
    }
}
