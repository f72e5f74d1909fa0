//! What a package installs beside the binary: `--version` with the commit, shell completions
//! that the shells accept, and a manual page that renders.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn version_names_the_commit() {
    let out = output(bin().arg("--version"));
    assert_success(&out, "--version");
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert_eq!(
        stdout(&out).trim(),
        format!(
            "galaxy-runtime {} (commit {head})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Runs `program args` with `text` on standard input and says whether it succeeded.
fn accepts(program: &str, args: &[&str], text: &[u8]) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{program} does not start: {e}"))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _galaxy__runtime"),
        ("zsh", "#compdef galaxy-runtime"),
        ("fish", "complete -c galaxy-runtime"),
    ] {
        let out = output(bin().args(["completions", shell]));
        assert_success(&out, shell);
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}: {marker:?} missing");
        for command in ["run", "migrate", "status", "observe", "completions"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    // bash is everywhere: its script must parse.
    let bash = output(bin().args(["completions", "bash"]));
    accepts("bash", &["-n"], &bash.stdout).expect("bash accepts its completions");
    let out = output(bin().args(["completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn the_manual_page_renders() {
    let out = output(bin().arg("man"));
    assert_success(&out, "man");
    let page = stdout(&out);
    assert!(
        page.starts_with(".ie") || page.contains(".TH galaxy-runtime 1"),
        "{page}"
    );
    for section in [
        "galaxy-runtime run",
        "galaxy-runtime migrate",
        "\\-\\-http\\-addr",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    // groff comes with man-db: the page renders without a warning (`-k`: UTF-8 input, as man
    // reads it).
    accepts("groff", &["-k", "-man", "-Tutf8", "-ww", "-z"], &out.stdout)
        .expect("groff renders the page without warnings");
}
