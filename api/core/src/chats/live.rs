//! Live chat events for subscribers, with each event's chat loaded once per
//! process however many subscribers resolve it.
//!
//! A thousand agents watching one organization all ask for the chat an
//! event is about; loading it for each of them cost a thousand queries per
//! event. [`VisibleChatEvent::chat`] shares one load per (chat, event)
//! instead: the first subscriber to ask loads it, the others wait for that
//! load and share its result. Only [`Chats::follow_visible_chats`] makes a
//! [`VisibleChatEvent`], after deciding the caller may see the event's
//! channel, so the shared chat never reaches anyone the rule keeps out.

use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::Core;
use crate::auth::Caller;
use crate::chats::{Chat, Chats};
use crate::error::Result;
use crate::events::Event;
use crate::ids::ChatId;
use crate::once_per_key::OncePerKey;

/// How many (chat, event) loads are remembered: enough for every subscriber
/// to resolve a burst of events before the first of them is forgotten (a
/// forgotten one is only loaded again).
const REMEMBERED: usize = 1_024;

/// A chat event the caller may see.
#[derive(Clone, Debug)]
pub struct VisibleChatEvent {
    pub event: Event,
    pub chat_id: ChatId,
    core: Core,
}

impl VisibleChatEvent {
    /// Returns the chat as it is now: as loaded by the first subscriber of
    /// this process that asked after this event.
    pub async fn chat(&self) -> Result<Chat> {
        let cell = self.core.chat_snapshots().cell(&(self.chat_id, self.event.seq));
        let chat = cell
            .get_or_try_init(|| async {
                self.core.chats().load(self.event.organization_id, self.chat_id).await.map(Arc::new)
            })
            .await?;
        Ok(Chat::clone(chat))
    }
}

/// Loads of a chat as of an event, shared by every subscriber.
pub(crate) type ChatSnapshots = OncePerKey<(ChatId, i64), Arc<Chat>>;

/// A new core's [`ChatSnapshots`].
pub(crate) fn chat_snapshots() -> ChatSnapshots {
    OncePerKey::new(REMEMBERED)
}

impl Chats<'_> {
    /// Follows the chat events (`chat.*`, `end_user.*` of a chat) of every
    /// chat the caller may see; see [`Chats::follow_visible`].
    pub async fn follow_visible_chats(
        &self,
        caller: &Caller,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<VisibleChatEvent>> + Send + use<>> {
        let core = self.core.clone();
        let events = self.follow_visible(caller, after).await?;
        Ok(events.filter_map(move |event| {
            let core = core.clone();
            async move {
                match event {
                    Ok(event) if event.kind.starts_with("chat.") || event.kind.starts_with("end_user.") => {
                        let chat_id = event.chat_id?;
                        Some(Ok(VisibleChatEvent { event, chat_id, core }))
                    }
                    Ok(_) => None,
                    Err(error) => Some(Err(error)),
                }
            }
        }))
    }
}
