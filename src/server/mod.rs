//! The network side: `listener` accepts connections, `connection` serves one client,
//! `shutdown` tells both when to stop.

pub mod connection;
pub mod listener;
pub mod shutdown;

pub use listener::run;
pub use shutdown::Shutdown;
