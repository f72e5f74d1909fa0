//! Text that comes from Docker or a container (names, labels, daemon messages) is shown
//! escaped, so that it can never forge a log line or move a terminal cursor.

/// The longest piece of foreign text shown in one message, in characters.
const MAX_SHOWN_CHARS: usize = 200;

/// `text` escaped by [`galaxy_runtime_model::text::escape_foreign`] and cut to 200 characters.
pub(crate) fn escape_foreign(text: &str) -> String {
    galaxy_runtime_model::text::escape_foreign(text, MAX_SHOWN_CHARS)
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
