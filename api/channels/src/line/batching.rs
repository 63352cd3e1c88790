//! The reply-mode rule: waiting agent messages packed into as few LINE reply calls as allowed.
//!
//! In `REPLY` mode an agent's messages wait as `UNSENT` until the customer writes
//! again; then they go out in order on the new reply token, consecutive texts
//! joined into one text with `"\n"`, images kept in place between them. LINE
//! limits what one call can carry, so [`batch_messages`] also:
//! - starts a new text object where joining would pass [`MAX_TEXT_LENGTH`];
//!   texts are joined whole, and only a single text longer than the limit is cut
//!   (at character boundaries) into several objects, so no bubble ends mid-message
//!   unless that message alone is too long for one bubble;
//! - puts at most [`MAX_MESSAGES_PER_CALL`] objects in a call.
//!
//! A reply token answers one call only, so a sender in reply mode sends the
//! first [`MessageBatch`] and leaves the rest waiting for the next token (or
//! pushes them, where the channel allows).
//!
//! Every produced object lists the queued messages it *finishes*: a message cut
//! into several objects is listed on its last part only, so every id appears
//! exactly once, and a message counts as sent once the object listing it was
//! accepted.

use crate::line::OutboundMessage;

/// LINE's limit on one text object, counted in UTF-16 code units.
///
/// LINE documents "5000 characters"; its servers count UTF-16 code units (an
/// emoji outside the Basic Multilingual Plane counts 2), which is also never less
/// than the number of code points, so this is the safe reading.
pub const MAX_TEXT_LENGTH: usize = 5000;

/// LINE's limit on message objects in one reply or push call.
pub const MAX_MESSAGES_PER_CALL: usize = 5;

/// Returns the length of `text` as LINE counts it against [`MAX_TEXT_LENGTH`]:
/// UTF-16 code units.
pub fn text_length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// An agent message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage<Id> {
    /// The caller's ID for the message.
    pub id: Id,
    /// What to send.
    pub message: OutboundMessage,
}

impl<Id> QueuedMessage<Id> {
    /// Returns a queued message.
    pub fn new(id: Id, message: OutboundMessage) -> Self {
        Self { id, message }
    }
}

/// One message object of a call, with the queued messages it finishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchedMessage<Id> {
    /// The object to send.
    pub message: OutboundMessage,
    /// The queued messages whose content ends in this object, in order; empty for
    /// a leading part of a text that was too long for one object.
    pub source_ids: Vec<Id>,
}

/// The message objects of one reply (or push) call, at most [`MAX_MESSAGES_PER_CALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBatch<Id> {
    /// The objects, in sending order.
    pub messages: Vec<BatchedMessage<Id>>,
}

impl<Id> MessageBatch<Id> {
    /// Returns the objects to put in the call's `messages`.
    pub fn outbound(&self) -> Vec<OutboundMessage> {
        self.messages.iter().map(|m| m.message.clone()).collect()
    }

    /// Returns the queued messages this call finishes, in order.
    pub fn source_ids(&self) -> impl Iterator<Item = &Id> {
        self.messages.iter().flat_map(|m| &m.source_ids)
    }
}

/// Packs queued messages, in order, into reply calls (see the module docs for the rule).
pub fn batch_messages<Id>(queued: impl IntoIterator<Item = QueuedMessage<Id>>) -> Vec<MessageBatch<Id>> {
    let mut objects: Vec<BatchedMessage<Id>> = Vec::new();
    // The text object still open for joining, if the last object is one.
    let mut open_text: Option<(String, Vec<Id>)> = None;

    for QueuedMessage { id, message } in queued {
        let text = match message {
            OutboundMessage::Text { text } => text,
            other => {
                close_text(&mut open_text, &mut objects);
                objects.push(BatchedMessage { message: other, source_ids: vec![id] });
                continue;
            }
        };
        let length = text_length(&text);
        if let Some((joined, ids)) = open_text.as_mut()
            && text_length(joined) + 1 + length <= MAX_TEXT_LENGTH
        {
            joined.push('\n');
            joined.push_str(&text);
            ids.push(id);
            continue;
        }
        close_text(&mut open_text, &mut objects);
        if length <= MAX_TEXT_LENGTH {
            open_text = Some((text, vec![id]));
            continue;
        }
        // Too long for any object: every part but the last stands alone, and the
        // last one may take the texts that follow.
        let mut parts = split_text(&text, MAX_TEXT_LENGTH);
        let last = parts.pop().unwrap_or_default();
        objects.extend(
            parts
                .into_iter()
                .map(|part| BatchedMessage { message: OutboundMessage::Text { text: part }, source_ids: Vec::new() }),
        );
        open_text = Some((last, vec![id]));
    }
    close_text(&mut open_text, &mut objects);

    let mut batches = Vec::with_capacity(objects.len().div_ceil(MAX_MESSAGES_PER_CALL));
    let mut objects = objects.into_iter().peekable();
    while objects.peek().is_some() {
        batches.push(MessageBatch { messages: objects.by_ref().take(MAX_MESSAGES_PER_CALL).collect() });
    }
    batches
}

fn close_text<Id>(open_text: &mut Option<(String, Vec<Id>)>, objects: &mut Vec<BatchedMessage<Id>>) {
    if let Some((text, source_ids)) = open_text.take() {
        objects.push(BatchedMessage { message: OutboundMessage::Text { text }, source_ids });
    }
}

/// Cuts `text` at character boundaries into parts of at most `limit` UTF-16 code
/// units (`limit` ≥ 2, so a surrogate pair always fits).
fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut part_length = 0;
    for character in text.chars() {
        let length = character.len_utf16();
        if part_length + length > limit {
            parts.push(std::mem::take(&mut part));
            part_length = 0;
        }
        part.push(character);
        part_length += length;
    }
    parts.push(part);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(id: u32, text: &str) -> QueuedMessage<u32> {
        QueuedMessage::new(id, OutboundMessage::text(text))
    }

    fn image(id: u32) -> QueuedMessage<u32> {
        QueuedMessage::new(
            id,
            OutboundMessage::image(
                format!("https://cdn.example/{id}.jpg"),
                format!("https://cdn.example/{id}-small.jpg"),
            ),
        )
    }

    fn shape(batches: &[MessageBatch<u32>]) -> Vec<Vec<(String, Vec<u32>)>> {
        batches
            .iter()
            .map(|batch| {
                batch
                    .messages
                    .iter()
                    .map(|m| {
                        let label = match &m.message {
                            OutboundMessage::Text { text } => format!("text:{text}"),
                            OutboundMessage::Image { .. } => "image".to_owned(),
                        };
                        (label, m.source_ids.clone())
                    })
                    .collect()
            })
            .collect()
    }

    fn object(label: &str, ids: &[u32]) -> (String, Vec<u32>) {
        (label.to_owned(), ids.to_vec())
    }

    #[test]
    fn nothing_queued_makes_no_calls() {
        assert!(batch_messages::<u32>([]).is_empty());
    }

    #[test]
    fn consecutive_texts_are_joined_with_newlines() {
        let batches = batch_messages([text(1, "hello"), text(2, "how can I help?"), text(3, "…")]);

        assert_eq!(shape(&batches), [[object("text:hello\nhow can I help?\n…", &[1, 2, 3])]]);
    }

    #[test]
    fn images_stay_in_place_between_texts() {
        let batches = batch_messages([text(1, "a"), text(2, "b"), image(3), text(4, "c"), image(5), image(6)]);

        assert_eq!(
            shape(&batches),
            [[
                object("text:a\nb", &[1, 2]),
                object("image", &[3]),
                object("text:c", &[4]),
                object("image", &[5]),
                object("image", &[6]),
            ]]
        );
    }

    #[test]
    fn a_sixth_object_starts_a_second_call() {
        let batches =
            batch_messages([image(1), text(2, "a"), image(3), text(4, "b"), image(5), text(6, "c"), image(7)]);

        assert_eq!(
            shape(&batches),
            [
                vec![
                    object("image", &[1]),
                    object("text:a", &[2]),
                    object("image", &[3]),
                    object("text:b", &[4]),
                    object("image", &[5]),
                ],
                vec![object("text:c", &[6]), object("image", &[7])],
            ]
        );
    }

    #[test]
    fn texts_that_would_pass_the_limit_together_go_in_separate_objects() {
        let first = "a".repeat(3000);
        let second = "b".repeat(2000);

        let batches = batch_messages([text(1, &first), text(2, &second), text(3, "c")]);

        assert_eq!(
            shape(&batches),
            [[object(&format!("text:{first}"), &[1]), object(&format!("text:{second}\nc"), &[2, 3])]]
        );
    }

    #[test]
    fn texts_filling_the_limit_exactly_are_joined() {
        let first = "a".repeat(2999);
        let second = "b".repeat(2000);

        let batches = batch_messages([text(1, &first), text(2, &second)]);

        assert_eq!(batches[0].messages.len(), 1);
        assert_eq!(text_length(batches[0].messages[0].message.as_text().unwrap()), 5000);
    }

    #[test]
    fn a_text_longer_than_the_limit_is_split_not_truncated() {
        let long = "x".repeat(12_001);

        let batches = batch_messages([text(1, "before"), text(2, &long), text(3, "after")]);

        assert_eq!(
            shape(&batches),
            [[
                object("text:before", &[1]),
                object(&format!("text:{}", "x".repeat(5000)), &[]),
                object(&format!("text:{}", "x".repeat(5000)), &[]),
                object(&format!("text:{}\nafter", "x".repeat(2001)), &[2, 3]),
            ]]
        );
    }

    #[test]
    fn lengths_count_utf16_code_units() {
        assert_eq!(text_length("abc"), 3);
        assert_eq!(text_length("窓口"), 2);
        assert_eq!(text_length("😀"), 2);
    }

    #[test]
    fn a_split_never_cuts_a_surrogate_pair() {
        let long = format!("{}😀😀", "a".repeat(4999));

        let batches = batch_messages([text(1, &long)]);

        let texts: Vec<&str> = batches[0].messages.iter().map(|m| m.message.as_text().unwrap()).collect();
        assert_eq!(texts, [&"a".repeat(4999) as &str, "😀😀"]);
    }

    #[test]
    fn ids_can_be_any_type() {
        let batches = batch_messages([QueuedMessage::new("first".to_owned(), OutboundMessage::text("a"))]);

        assert_eq!(batches[0].source_ids().collect::<Vec<_>>(), ["first"]);
        assert_eq!(batches[0].outbound(), [OutboundMessage::text("a")]);
    }

    fn queued_messages() -> impl Strategy<Value = Vec<QueuedMessage<usize>>> {
        let content = prop_oneof![
            4 => "[a-z😀窓\n]{0,12}".prop_map(OutboundMessage::text),
            1 => (1usize..4, "[a-z😀]{1,3}").prop_map(|(n, unit)| OutboundMessage::text(unit.repeat(n * 1700))),
            // Lengths whose joins land on and around the limit.
            2 => prop_oneof![2495usize..=2505, 4995usize..=5005].prop_map(|n| OutboundMessage::text("a".repeat(n))),
            2 => Just(OutboundMessage::image("https://cdn.example/a.jpg", "https://cdn.example/a-small.jpg")),
        ];
        proptest::collection::vec(content, 0..30).prop_map(|contents| {
            contents.into_iter().enumerate().map(|(id, message)| QueuedMessage::new(id, message)).collect()
        })
    }

    /// Splits the queue into runs of consecutive texts and single images.
    fn runs(queued: &[QueuedMessage<usize>]) -> Vec<Vec<&QueuedMessage<usize>>> {
        let mut runs: Vec<Vec<&QueuedMessage<usize>>> = Vec::new();
        for message in queued {
            let joins = message.message.as_text().is_some()
                && runs.last().and_then(|run| run.last()).is_some_and(|last| last.message.as_text().is_some());
            if joins {
                runs.last_mut().unwrap().push(message);
            } else {
                runs.push(vec![message]);
            }
        }
        runs
    }

    proptest! {
        #[test]
        fn every_id_appears_exactly_once_in_order(queued in queued_messages()) {
            let expected: Vec<usize> = queued.iter().map(|m| m.id).collect();

            let batches = batch_messages(queued);

            let ids: Vec<usize> = batches.iter().flat_map(|b| b.source_ids().copied()).collect();
            prop_assert_eq!(ids, expected);
        }

        #[test]
        fn no_call_has_more_than_five_objects_and_none_is_empty(queued in queued_messages()) {
            let batches = batch_messages(queued);

            for batch in &batches {
                prop_assert!(!batch.messages.is_empty());
                prop_assert!(batch.messages.len() <= MAX_MESSAGES_PER_CALL);
            }
        }

        #[test]
        fn no_text_passes_the_limit(queued in queued_messages()) {
            let batches = batch_messages(queued);

            for message in batches.iter().flat_map(|b| &b.messages) {
                if let Some(text) = message.message.as_text() {
                    prop_assert!(text_length(text) <= MAX_TEXT_LENGTH, "{}", text_length(text));
                }
            }
        }

        #[test]
        fn only_full_calls_are_followed_by_another(queued in queued_messages()) {
            let batches = batch_messages(queued);

            for batch in batches.iter().rev().skip(1) {
                prop_assert_eq!(batch.messages.len(), MAX_MESSAGES_PER_CALL);
            }
        }

        #[test]
        fn each_run_reads_the_same_as_the_joined_original(queued in queued_messages()) {
            // Rebuild every run from the produced objects: parts of one message
            // follow each other directly, whole messages are separated by "\n".
            let expected: Vec<OutboundMessage> = runs(&queued)
                .into_iter()
                .map(|run| match run[0].message.as_text() {
                    Some(_) => OutboundMessage::text(
                        run.iter().map(|m| m.message.as_text().unwrap()).collect::<Vec<_>>().join("\n"),
                    ),
                    None => run[0].message.clone(),
                })
                .collect();

            let batches = batch_messages(queued);

            let mut rebuilt: Vec<OutboundMessage> = Vec::new();
            let mut previous_finished_a_message = false;
            for object in batches.iter().flat_map(|b| &b.messages) {
                match (&object.message, rebuilt.last_mut()) {
                    (OutboundMessage::Text { text }, Some(OutboundMessage::Text { text: run })) => {
                        if previous_finished_a_message {
                            run.push('\n');
                        }
                        run.push_str(text);
                    }
                    (message, _) => rebuilt.push(message.clone()),
                }
                previous_finished_a_message = !object.source_ids.is_empty();
            }
            prop_assert_eq!(rebuilt, expected);
        }
    }
}
