//! Listeners: the `NAME://host:port` endpoints of `listeners` and `advertised.listeners`, the
//! security protocol each listener name maps to (`listener.security.protocol.map`), the listener
//! brokers use between themselves (`inter.broker.listener.name`), and the per-listener keys
//! (`listener.name.<name>.<key>`) that the TLS and SASL settings are read from.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{anyhow, bail};

use super::split_list;

/// Kafka's security protocols, with their wire ids (UpdateMetadata's `security_protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's id (`SecurityProtocol.id`).
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    /// The protocol of a Kafka name, case-insensitively.
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// Connections are wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Clients authenticate with SASL before anything else.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `NAME://host:port` endpoint from `listeners` or `advertised.listeners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The listener name, upper-cased as Kafka does, e.g. `PLAINTEXT`.
    pub name: String,
    /// Host or IP address without IPv6 brackets. In `listeners` an empty host (`PLAINTEXT://:9092`)
    /// is stored as `0.0.0.0` (all interfaces).
    pub host: String,
    /// The port; 0 in `listeners` means an ephemeral port chosen at bind time.
    pub port: u16,
    /// What the name maps to in `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// `host:port` for binding or connecting, with IPv6 hosts in brackets.
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, self.host_port())
    }
}

/// An advertised listener: a listener bound to all interfaces (or with an empty host) is advertised
/// as 127.0.0.1.
pub(crate) fn advertisable(mut l: Listener) -> Listener {
    if l.host.is_empty() || l.host == "0.0.0.0" || l.host == "::" {
        l.host = "127.0.0.1".to_string();
    }
    l
}

/// Parses `NAME://host:port[,NAME://host:port...]`. The host may be empty (the caller decides what
/// that means); IPv6 hosts may be bracketed. Names are upper-cased and must be unique, and each
/// must have a security protocol in `protocols` (`listener.security.protocol.map`).
pub(crate) fn parse_listeners(
    key: &str,
    value: &str,
    protocols: &BTreeMap<String, SecurityProtocol>,
) -> anyhow::Result<Vec<Listener>> {
    let bad = |why: &str| anyhow!("Invalid value {value} for configuration {key}: {why}");
    let items = split_list(value);
    if items.is_empty() {
        return Err(bad("at least one listener is required"));
    }
    let mut out: Vec<Listener> = Vec::new();
    for item in items {
        let Some((name, rest)) = item.split_once("://") else {
            return Err(bad(&format!(
                "'{item}' is not of the form NAME://host:port"
            )));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            return Err(bad(&format!(
                "'{item}' has an invalid listener name '{name}'"
            )));
        }
        let (host, port) = if let Some(after) = rest.strip_prefix('[') {
            match after.split_once("]:") {
                Some((h, p)) => (h, p),
                None => return Err(bad(&format!("'{item}' has an unterminated IPv6 address"))),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => return Err(bad(&format!("'{item}' has no port"))),
            }
        };
        if !host
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-%._:".contains(ch))
        {
            return Err(bad(&format!("'{item}' has an invalid host '{host}'")));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("'{item}' has an invalid port '{port}' (0-65535)")))?;
        let name = name.to_ascii_uppercase();
        let Some(&security_protocol) = protocols.get(&name) else {
            return Err(bad(&format!(
                "no security protocol defined for listener {name} in listener.security.protocol.map"
            )));
        };
        let listener = Listener {
            name,
            host: host.to_string(),
            port,
            security_protocol,
        };
        if out.iter().any(|l| l.name == listener.name) {
            return Err(bad(&format!(
                "each listener must have a different name ('{}' repeats)",
                listener.name
            )));
        }
        out.push(listener);
    }
    Ok(out)
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL` pairs, names upper-cased, each once.
pub(crate) fn parse_protocol_map(
    value: &str,
) -> anyhow::Result<BTreeMap<String, SecurityProtocol>> {
    let bad = |why: String| {
        anyhow!("Invalid value {value} for configuration listener.security.protocol.map: {why}")
    };
    let mut out = BTreeMap::new();
    for item in split_list(value) {
        let Some((name, protocol)) = item.split_once(':') else {
            return Err(bad(format!("'{item}' is not of the form NAME:PROTOCOL")));
        };
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            bad(format!(
                "'{protocol}' is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)"
            ))
        })?;
        let name = name.trim().to_ascii_uppercase();
        if out.insert(name.clone(), protocol).is_some() {
            return Err(bad(format!("listener {name} appears more than once")));
        }
    }
    Ok(out)
}

/// The inter-broker listener's name, as Kafka decides it: `inter.broker.listener.name` if set,
/// else the listener named after `security.inter.broker.protocol`; setting both is an error, and
/// the listener must be among the advertised ones.
pub(crate) fn inter_broker_listener(
    explicit_name: Option<&str>,
    explicit_protocol: Option<&str>,
    advertised: &[Listener],
) -> anyhow::Result<String> {
    let name = match (explicit_name, explicit_protocol) {
        (Some(_), Some(_)) => bail!(
            "Only one of inter.broker.listener.name and security.inter.broker.protocol should be set."
        ),
        (Some(name), None) => name.trim().to_ascii_uppercase(),
        (None, protocol) => {
            let protocol = protocol.unwrap_or("PLAINTEXT");
            SecurityProtocol::parse(protocol)
                .ok_or_else(|| {
                    anyhow!("Invalid value {protocol} for configuration security.inter.broker.protocol")
                })?
                .name()
                .to_string()
        }
    };
    if !advertised.iter().any(|l| l.name == name) {
        let names: Vec<&str> = advertised.iter().map(|l| l.name.as_str()).collect();
        bail!(
            "inter.broker.listener.name must be a listener name defined in advertised.listeners. \
             The valid options based on currently configured listeners are {} (set \
             inter.broker.listener.name or security.inter.broker.protocol)",
            names.join(",")
        );
    }
    Ok(name)
}

/// The key that configures `key` for one listener: `listener.name.<name, lower-case>.<key>`.
pub fn listener_prefixed(listener: &str, key: &str) -> String {
    format!("listener.name.{}.{key}", listener.to_ascii_lowercase())
}
