//! What packages install beside the binary: shell completions and the manual page, generated
//! from the command line's own definition so that they never drift from it.

use std::io::Write;

use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};

use crate::cli::Cli;

/// The shells completions are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (`/etc/bash_completion.d/`).
    Bash,
    /// zsh (a `_galaxy-runtime` file on `$fpath`).
    Zsh,
    /// fish (`~/.config/fish/completions/galaxy-runtime.fish`).
    Fish,
}

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Prints the completion script of a shell.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "galaxy-runtime", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("writing the completions to standard output")
}

/// Prints the manual page (section 1, roff), with a page section per command.
pub fn man() -> anyhow::Result<()> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context("rendering the manual page")?;
    for sub in command.get_subcommands() {
        writeln!(out, ".SH \"galaxy-runtime {}\"", sub.get_name()).ok();
        let about = sub
            .get_long_about()
            .or(sub.get_about())
            .map(ToString::to_string)
            .unwrap_or_default();
        for paragraph in about.split("\n\n") {
            writeln!(out, ".PP\n{}", roff_text(paragraph)).ok();
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let name = match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("\\-\\-{}", long.replace('-', "\\-")),
                (None, Some(short)) => format!("\\-{short}"),
                (None, None) => arg.get_id().to_string().to_uppercase(),
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            writeln!(out, ".TP\n\\fB{name}\\fR\n{}", roff_text(&help)).ok();
        }
    }
    std::io::stdout()
        .write_all(&out)
        .context("writing the manual page to standard output")
}

/// Text as roff reads it literally: backslashes and hyphens escaped, no line starting with a
/// control character.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e").replace('-', "\\-");
            if line.starts_with(['.', '\'']) {
                format!("\\&{line}")
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
