//! Text that comes from outside — container names, labels, image references, engine and daemon
//! messages — is shown escaped, so that it can never forge a log line, move a terminal cursor or
//! smuggle a newline into a message.

use std::fmt::Write as _;

/// The longest piece of foreign text a log line, an error or a table cell shows, in characters:
/// enough for any container name, label or image reference and for the gist of a daemon's answer.
pub const MESSAGE_CHARS: usize = 200;

/// The longest piece of foreign text in an engine probe failure, in characters.
///
/// Shorter than [`MESSAGE_CHARS`]: one failure may quote several pieces (the endpoint, the URL, a
/// redirect's location, the start of a body), and it becomes the message of a status change,
/// which the store keeps and `galaxy-runtime status` shows on one line.
pub const PROBE_FAILURE_CHARS: usize = 120;

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

/// `text` with what can act on a terminal or reorder what it shows written as `\u{…}`: control
/// characters (C0, DEL, C1, so every escape
/// sequence loses its ESC), and the invisible format characters of bidirectional text
/// (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069). Everything else, printable
/// Unicode included, is kept, and nothing is cut: for whole lines (log lines, error messages)
/// that may quote foreign text, such as a parser's message quoting its input, where
/// [`escape_foreign`] is for the foreign piece itself.
///
/// ```
/// use galaxy_runtime_model::text::escape_controls;
///
/// assert_eq!(escape_controls("pass done in 0.1s: 3 games…"), "pass done in 0.1s: 3 games…");
/// assert_eq!(escape_controls("unknown field `\x1b[2J`"), "unknown field `\\u{1b}[2J`");
/// assert_eq!(escape_controls("abc\u{202e}fed"), "abc\\u{202e}fed");
/// ```
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_control(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether `c` acts on a terminal or on the direction of text.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Like [`escape_foreign`] for bytes that may not be UTF-8 (header values, bodies): what is not
/// UTF-8 is shown as `\u{fffd}`.
///
/// ```
/// use galaxy_runtime_model::text::escape_foreign_bytes;
///
/// assert_eq!(escape_foreign_bytes(b"ok\xff", 80), "ok\\u{fffd}");
/// ```
pub fn escape_foreign_bytes(bytes: &[u8], max_chars: usize) -> String {
    escape_foreign(&String::from_utf8_lossy(bytes), max_chars)
}

/// Whether `text` is a host address a URL may be built on: an IP address (IPv6 with or without
/// brackets) or a DNS host name (dot-separated labels of ASCII letters, digits and inner
/// hyphens, 253 characters at most). Nothing else — no user, port, path or space — ever
/// becomes the host of an endpoint.
///
/// ```
/// use galaxy_runtime_model::text::is_host_address;
///
/// assert!(is_host_address("10.0.0.2"));
/// assert!(is_host_address("[fd00::2]"));
/// assert!(is_host_address("docker-eu-1.example"));
/// assert!(!is_host_address("user@host"));
/// assert!(!is_host_address("host:2375"));
/// assert!(!is_host_address(""));
/// ```
pub fn is_host_address(text: &str) -> bool {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<std::net::IpAddr>().is_ok()
        || (text.len() <= 253
            && text.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }))
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

    #[test]
    fn each_use_has_its_length() {
        assert_eq!(
            escape_foreign("/galaxy-game-1", MESSAGE_CHARS),
            "/galaxy-game-1"
        );
        assert_eq!(escape_foreign("a\nb\x1b", MESSAGE_CHARS), "a\\u{a}b\\u{1b}");
        assert_eq!(
            escape_foreign(&"x".repeat(300), MESSAGE_CHARS)
                .chars()
                .count(),
            201
        );
        let shown = escape_foreign(&"x".repeat(500), PROBE_FAILURE_CHARS);
        assert_eq!(shown.chars().count(), PROBE_FAILURE_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_then_escaped() {
        assert_eq!(escape_foreign_bytes(b"\xff", 80), "\\u{fffd}");
        assert_eq!(escape_foreign_bytes(b"a\nb", 80), "a\\u{a}b");
    }
}
