//! Bounds on free input that reaches the database: short texts (a contact's
//! labels, what is searched for) and lists of ids. Past them a request gets
//! a clear error naming the field, before it costs a query.

use crate::error::{Error, Result};

/// The most characters of a short text: a label or a search.
pub const SHORT_TEXT_CHARS: usize = 200;

/// The most ids one list in a request may hold (agents of a channel,
/// departments of an agent): well under the databases' limits on the
/// parameters of one statement.
pub const MAX_LISTED_IDS: usize = 1_000;

/// Refuses `text` longer than [`SHORT_TEXT_CHARS`].
pub(crate) fn short_text(field: &str, text: &str) -> Result<()> {
    if text.chars().count() > SHORT_TEXT_CHARS {
        return Err(Error::invalid_field(field, format!("at most {SHORT_TEXT_CHARS} characters")));
    }
    Ok(())
}

/// Refuses a list of more than [`MAX_LISTED_IDS`] ids.
pub(crate) fn listed_ids<T>(field: &str, ids: &[T]) -> Result<()> {
    if ids.len() > MAX_LISTED_IDS {
        return Err(Error::invalid_field(field, format!("at most {MAX_LISTED_IDS} ids")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_counted_in_characters_and_lists_in_items() {
        assert!(short_text("name", &"あ".repeat(SHORT_TEXT_CHARS)).is_ok());
        let long = short_text("accountName", &"a".repeat(SHORT_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!(long.field(), Some("accountName"));
        assert!(listed_ids("agentIds", &vec![0; MAX_LISTED_IDS]).is_ok());
        assert!(listed_ids("agentIds", &vec![0; MAX_LISTED_IDS + 1]).is_err());
    }
}
