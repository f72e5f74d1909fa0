//! Text that comes from Docker or a container (names, labels, daemon messages) is shown
//! escaped, so that it can never forge a log line or move a terminal cursor.

use std::fmt::Write as _;

/// The longest piece of foreign text shown in one message, in characters.
const MAX_SHOWN_CHARS: usize = 200;

/// `text` with every character outside printable ASCII written as `\u{…}` (and `\` as `\\`),
/// cut to 200 characters with a trailing `…` when longer.
pub(crate) fn escape_foreign(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN_CHARS * 2));
    for (shown, c) in text.chars().enumerate() {
        if shown == MAX_SHOWN_CHARS {
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
    fn escapes_control_characters() {
        assert_eq!(escape_foreign("/galaxy-game-1"), "/galaxy-game-1");
        assert_eq!(escape_foreign("a\nb\x1b"), "a\\u{a}b\\u{1b}");
        assert_eq!(escape_foreign(&"x".repeat(300)).chars().count(), 201);
    }
}
