//! Kafka's security model: who a connection is (`principal`), how a TLS listener's certificates
//! are loaded and checked (`tls`), and how SASL clients authenticate (`sasl`). The network side
//! (`server`) drives them; nothing here knows of the broker object.

pub mod client_quotas;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

pub use principal::KafkaPrincipal;
