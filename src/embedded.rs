//! The config tree shipped inside the binary (`config/` at build time).
//!
//! A `--config-dir DIR` overlays it file by file (see `banhammer_config::ConfigTree`).

include!(concat!(env!("OUT_DIR"), "/embedded_config.rs"));
