//! Text that comes from outside — container names, labels, image references, engine and daemon
//! messages — is shown escaped, so that it can never forge a log line, move a terminal cursor or
//! smuggle a newline into a message.

use std::fmt::Write as _;

/// `text` with every character outside printable ASCII written as `\u{…}` (and `\` as `\\`),
/// cut to `max_chars` characters with a trailing `…` when longer.
///
/// ```
/// use galaxy_runtime_model::text::escape_foreign;
///
/// assert_eq!(escape_foreign("galaxy-game-1", 80), "galaxy-game-1");
/// assert_eq!(escape_foreign("evil\n\x1b[2J", 80), "evil\\u{a}\\u{1b}[2J");
/// assert_eq!(escape_foreign("abcdef", 3), "abc…");
/// ```
pub fn escape_foreign(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars.saturating_mul(2)));
    for (shown, c) in text.chars().enumerate() {
        if shown == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_outside_printable_ascii() {
        assert_eq!(
            escape_foreign("a\nb\r\x1b[31m", 80),
            "a\\u{a}b\\u{d}\\u{1b}[31m"
        );
        assert_eq!(escape_foreign("é\\", 80), "\\u{e9}\\\\");
        assert_eq!(escape_foreign("", 80), "");
    }

    #[test]
    fn long_text_is_cut() {
        let shown = escape_foreign(&"x".repeat(500), 120);
        assert_eq!(shown.chars().count(), 121);
        assert!(shown.ends_with('…'));
        assert_eq!(escape_foreign(&"x".repeat(120), 120), "x".repeat(120));
    }
}
