//! Ban actions: what turns the jails' Ban/Unban decisions into firewall state. Receives
//! jail specs and batches of changes; emits kernel transactions (native nftables) or
//! commands (action.d, being written). The executor and expiry queue live here too
//! (being written).

pub mod command;
pub mod nftables;
