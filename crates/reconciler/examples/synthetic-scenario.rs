//! Prints a generated fleet as scenario JSON, to time `galaxy-runtime plan` on it:
//!
//! ```sh
//! cargo run --release -p galaxy-runtime-reconciler --example synthetic-scenario -- 100000 > fleet.json
//! ```

use std::io::Write;

fn main() {
    let games = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 1_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("synthetic-scenario: the number of games must be a whole number: {e}");
            std::process::exit(2);
        }
    };
    let scenario = galaxy_runtime_testkit::fleet::fleet(games);
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer(&mut out, &scenario)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out));
    if let Err(e) = written {
        eprintln!("synthetic-scenario: cannot write: {e}");
        std::process::exit(1);
    }
}
