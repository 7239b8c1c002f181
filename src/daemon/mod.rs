//! The daemon (being written).

use anyhow::Result;

use crate::cli::run::RunArgs;

pub fn run(_args: RunArgs) -> Result<()> {
    anyhow::bail!("banhammer run: not yet implemented")
}
