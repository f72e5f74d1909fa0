//! Puts the commit the binary is built from into `--version`: `GALAXY_RUNTIME_COMMIT` is the
//! environment's when set (a build from a source archive, an image build), else
//! `git rev-parse`'s, else `unknown` (no git and no variable: said as such, never guessed).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=GALAXY_RUNTIME_COMMIT");
    // A new commit or checkout changes these, and so the version.
    for path in ["HEAD", "logs/HEAD"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    let commit = std::env::var("GALAXY_RUNTIME_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GALAXY_RUNTIME_COMMIT={commit}");
}
