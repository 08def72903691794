//! `pat-admin store copy --to URL|DIR`: the front end of [`crate::store::copy`].

use super::Ctx;
use crate::cli::StoreCommand;
use crate::error::{Result, exit};
use crate::store::copy;
use crate::store::db::Location;

/// Runs a `store` subcommand.
pub fn run(ctx: &mut Ctx, command: StoreCommand) -> Result<u8> {
    match command {
        StoreCommand::Copy { to } => {
            let to = Location::parse(&to);
            let copied = copy::copy(&mut ctx.store, &to)?;
            ctx.emit(&copied, || {
                let mut text = format!(
                    "Copied {} into {}:\n",
                    ctx.store.location(),
                    copied.to
                );
                for (table, rows) in &copied.tables {
                    text.push_str(&format!("  {table:<16} {rows}\n"));
                }
                text.push_str(&format!(
                    "  {:<16} {}\nPoint pat-admin (--store, PAT_ADMIN_STORE) and every serve replica at the new store; the old one is unchanged.\n",
                    "signing keys", copied.keys
                ));
                text
            })?;
            Ok(exit::OK)
        }
    }
}
