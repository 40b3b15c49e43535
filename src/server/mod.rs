//! The network side: `listener` accepts connections, `connection` serves one client,
//! `send` writes its responses (file ranges with sendfile), `shutdown` tells both when to
//! stop, `heap_release` gives the memory of a burst of connections back, `metrics_http`
//! serves Prometheus' scrapes.

pub mod connection;
pub mod heap_release;
pub mod listener;
pub mod metrics_http;
pub mod sasl_authenticator;
pub mod send;
pub mod shutdown;

pub use listener::run;
pub use shutdown::Shutdown;
