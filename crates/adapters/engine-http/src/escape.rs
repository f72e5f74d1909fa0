//! Text that comes from an engine or a container is shown escaped, so that it can never forge
//! a log line, move a terminal cursor or smuggle a newline into a message.

/// The longest piece of foreign text shown in one message, in characters.
pub(crate) const MAX_SHOWN_CHARS: usize = 120;

/// `text` escaped by [`galaxy_runtime_model::text::escape_foreign`] and cut to
/// [`MAX_SHOWN_CHARS`] characters.
pub(crate) fn escape_foreign(text: &str) -> String {
    galaxy_runtime_model::text::escape_foreign(text, MAX_SHOWN_CHARS)
}

/// Like [`escape_foreign`] for bytes that may not be UTF-8 (header values, bodies).
pub(crate) fn escape_foreign_bytes(bytes: &[u8]) -> String {
    escape_foreign(&String::from_utf8_lossy(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_non_ascii_are_escaped() {
        assert_eq!(escape_foreign("ok /status"), "ok /status");
        assert_eq!(
            escape_foreign("a\nb\r\x1b[31m"),
            "a\\u{a}b\\u{d}\\u{1b}[31m"
        );
        assert_eq!(escape_foreign("é\\"), "\\u{e9}\\\\");
        assert_eq!(escape_foreign_bytes(b"\xff"), "\\u{fffd}");
    }

    #[test]
    fn long_text_is_cut() {
        let shown = escape_foreign(&"x".repeat(500));
        assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
    }
}
