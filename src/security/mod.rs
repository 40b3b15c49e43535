//! Kafka's security model: who a connection is (`principal`), how a TLS listener's certificates
//! are loaded and checked (`tls`), how SASL clients authenticate (`sasl`, `scram`, `oauthbearer`), what a principal may
//! do (`acl`, `authorizer`). The network side (`server`) and the handlers drive them; nothing
//! here knows of the broker object.

pub mod acl;
pub mod authorizer;
pub mod client_quotas;
pub mod encrypted_key;
pub mod jks;
pub mod oauthbearer;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

pub use principal::KafkaPrincipal;
