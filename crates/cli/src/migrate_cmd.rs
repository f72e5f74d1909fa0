//! `galaxy-runtime migrate [--check]`: the schema changed on purpose, by one command.

use anyhow::anyhow;
use clap::Args;
use galaxy_runtime_store::Store;

use crate::cli::CommonFlags;
use crate::connect;
use crate::settings::Settings;

/// Arguments of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Change nothing: exit 0 when the schema is up to date, 1 (saying why) otherwise.
    #[arg(long)]
    pub check: bool,
    /// Settings shared by the commands that use the database.
    #[command(flatten)]
    pub common: CommonFlags,
}

/// Applies the pending migrations, or with `--check` only checks that there are none.
pub async fn run(args: &MigrateArgs, settings: Settings) -> anyhow::Result<()> {
    let database = settings.database();
    if args.check {
        Store::check_schema(&settings.store)
            .await
            .map_err(|e| anyhow!("{}", connect::describe(&e)))?;
        println!("the schema of {database} is up to date");
        return Ok(());
    }
    let applied = Store::migrate(&settings.store)
        .await
        .map_err(|e| connect::store_error(&settings, &e))?;
    if applied.is_empty() {
        println!("the schema of {database} was up to date: nothing applied");
    } else {
        println!("applied migration(s) {} to {database}", applied.join(", "));
    }
    Ok(())
}
