//! A small `log` logger for the command line: text for people, JSON lines for machines, on
//! standard error.
//!
//! The libraries log through the `log` facade: the executor one `info` line per change
//! (`adopt …`, `set_status …`), the reconciler one `info` summary per pass, which `run` shows at
//! its default level. Other crates (bollard, hyper, diesel) only get through with warnings and
//! errors, unless the level is `trace`.

use std::io::{IsTerminal, Write};

use galaxy_runtime_model::Timestamp;
use galaxy_runtime_model::text::escape_controls;
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::settings::LogFormat;

/// The logger.
pub struct Logger {
    format: LogFormat,
    level: LevelFilter,
    colour: bool,
}

impl Logger {
    /// Installs the logger for the process.
    pub fn install(format: LogFormat, level: LevelFilter) {
        let colour = format == LogFormat::Text
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none();
        let logger = Logger {
            format,
            level,
            colour,
        };
        // Only fails when a logger is already installed, which `main` never does twice.
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(level);
        }
    }

    fn ours(target: &str) -> bool {
        target.starts_with("galaxy_runtime")
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let level = metadata.level();
        if self.level == LevelFilter::Trace {
            return true;
        }
        if Self::ours(target) {
            level <= self.level
        } else {
            level <= self.level.min(LevelFilter::Warn)
        }
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = match self.format {
            LogFormat::Text => text_line(record, self.colour),
            LogFormat::Json => json_line(record),
        };
        // Above the progress line of `reconcile --once` / `observe`, if one is drawn.
        crate::progress::suspend(|| {
            let mut err = std::io::stderr().lock();
            // A closed standard error leaves nowhere to report the failure.
            let _ = writeln!(err, "{line}");
        });
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// `12:00:01 adopt game_id=… ` — the time of day (UTC), the level when it is not info or
/// debug, the message on one line.
fn text_line(record: &Record<'_>, colour: bool) -> String {
    let now = Timestamp::now().to_string();
    // RFC 3339: the time of day sits between the `T` and the fraction or the `Z`.
    let time = now
        .split_once('T')
        .map(|(_, t)| t.get(..8).unwrap_or(t))
        .unwrap_or(&now)
        .to_owned();
    // The last line of defence: whatever a message quotes, nothing in it acts on the terminal.
    let message = escape_controls(&record.args().to_string().replace('\n', "; "));
    let (tag, paint) = match record.level() {
        Level::Error => ("ERROR ", "\x1b[31;1m"),
        Level::Warn => ("WARN ", "\x1b[33m"),
        Level::Info | Level::Debug | Level::Trace => ("", ""),
    };
    if colour {
        let dim = "\x1b[2m";
        let reset = "\x1b[0m";
        let body = if message.starts_with("reconcile pass") {
            format!("{dim}{message}{reset}")
        } else if !paint.is_empty() {
            format!("{paint}{tag}{message}{reset}")
        } else {
            message
        };
        format!("{dim}{time}{reset} {body}")
    } else {
        format!("{time} {tag}{message}")
    }
}

/// `{"ts": "…", "level": "info", "target": "…", "message": "…"}`.
fn json_line(record: &Record<'_>) -> String {
    serde_json::json!({
        "ts": Timestamp::now().to_string(),
        "level": record.level().as_str().to_ascii_lowercase(),
        "target": record.target(),
        // JSON escapes control characters itself; the line breaks stay as they are, the rest
        // (bidi overrides) is escaped as in text lines.
        "message": record
            .args()
            .to_string()
            .split('\n')
            .map(escape_controls)
            .collect::<Vec<_>>()
            .join("\n"),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logger(level: LevelFilter) -> Logger {
        Logger {
            format: LogFormat::Text,
            level,
            colour: false,
        }
    }

    fn meta(target: &str, level: Level) -> Metadata<'_> {
        Metadata::builder().target(target).level(level).build()
    }

    #[test]
    fn our_lines_by_level_others_only_warnings() {
        let l = logger(LevelFilter::Info);
        assert!(l.enabled(&meta("galaxy_runtime_reconciler::execute", Level::Info)));
        assert!(!l.enabled(&meta("galaxy_runtime_reconciler::execute", Level::Debug)));
        assert!(!l.enabled(&meta("hyper_util::client", Level::Info)));
        assert!(l.enabled(&meta("bollard", Level::Warn)));
        let quiet = logger(LevelFilter::Warn);
        assert!(!quiet.enabled(&meta("galaxy_runtime_reconciler::reconciler", Level::Info)));
        assert!(quiet.enabled(&meta("galaxy_runtime_reconciler::execute", Level::Warn)));
    }

    #[test]
    fn lines_are_single_lines() {
        let args = format_args!("a\nb");
        let record = Record::builder()
            .args(args)
            .level(Level::Warn)
            .target("galaxy_runtime_cli")
            .build();
        let text = text_line(&record, false);
        assert!(text.ends_with(" WARN a; b"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&json_line(&record)).unwrap();
        assert_eq!(json["level"], "warn");
        assert_eq!(json["message"], "a\nb");
    }

    #[test]
    fn no_line_can_move_the_cursor_or_turn_text_around() {
        let args = format_args!("unknown field `\x1b[2J\x1b]0;owned\x07` in \u{202e}txt.exe");
        let record = Record::builder()
            .args(args)
            .level(Level::Error)
            .target("galaxy_runtime_cli")
            .build();
        for line in [text_line(&record, false), json_line(&record)] {
            assert!(!line.contains('\x1b') && !line.contains('\x07'), "{line:?}");
            assert!(!line.contains('\u{202e}'), "{line:?}");
            assert!(line.contains("u{1b}[2J"), "{line:?}");
        }
        // Our own colours stay: only the message is escaped.
        assert!(text_line(&record, true).starts_with("\x1b[2m"));
    }
}
