//! The control socket: [`protocol`] (the JSON messages), the server side the daemon runs,
//! and the client side the CLI verbs use.

pub mod client;
pub mod protocol;
pub mod server;
