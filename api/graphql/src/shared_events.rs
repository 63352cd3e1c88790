//! `chatEvents` payloads resolved and serialised once per event for every
//! subscriber that asked for them the same way, not once per subscriber.
//!
//! Every agent watching an organization's chat list runs the same
//! subscription; resolving and serialising its selection (the chat, its
//! end user) for each of ten thousand subscribers cost more than everything
//! else an event costs them. [`SharedSubscriptions::subscribe`] marks a
//! `chatEvents` subscription whose selection reads only what is the same
//! for everyone: the event and the chat as loaded once for it
//! ([`madoguchi_core::chats::VisibleChatEvent::chat`]). Fields that depend
//! on the caller (`messages`, `sendWindow`) or that this module does not
//! know keep a subscription unshared. The key is the whole request (query,
//! operation name, variables) with the event's organization and position,
//! so two subscribers share a payload only when they would have resolved
//! the same one. Which events a subscriber gets is still decided per caller
//! before any of this (core's channel visibility), so a shared payload never
//! shows anyone a chat they may not see.
//!
//! A shared subscription starts as any other: async-graphql validates it
//! and runs the `chatEvents` resolver, which follows the caller's events.
//! The resolver then hands that stream over ([`Handoff`]) instead of
//! returning it, and each event is rendered by running the same request
//! again over that one event ([`OneEvent`]), once for every subscriber
//! sharing the key; the WebSocket sends the serialised payload as it is.

use std::sync::{Arc, Mutex};

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Data, Request, Response, Variables};
use futures::StreamExt;
use madoguchi_core::ids::OrganizationId;
use madoguchi_core::once_per_key::OncePerKey;
use tokio::sync::oneshot;

use crate::schema::MadoguchiSchema;
use crate::workspace::ChatEvent;

/// How many serialised payloads are remembered: enough for every
/// subscriber to take a burst of events before the first is forgotten (a
/// forgotten one is only rendered again).
const REMEMBERED: usize = 1_024;

/// Deeper than any selection of the shared fields needs; a fragment that
/// spreads itself (refused later by validation) stops here.
const MAX_NESTING: usize = 16;

/// What a WebSocket sends for one of a subscription's events.
#[derive(Debug)]
pub enum Outgoing {
    /// A response of this subscriber's own, to serialise.
    Response(Box<Response>),
    /// A response serialised once for every subscriber asking the same way.
    Serialized(Arc<str>),
}

/// Runs a WebSocket's subscriptions, sharing the payloads that can be.
#[derive(Clone)]
pub struct SharedSubscriptions(MadoguchiSchema);

impl std::fmt::Debug for SharedSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSubscriptions").finish_non_exhaustive()
    }
}

impl SharedSubscriptions {
    pub fn new(schema: MadoguchiSchema) -> Self {
        Self(schema)
    }

    /// Runs `request`, a query, mutation or subscription, with the
    /// connection's `session` data; a subscription yields one item per event.
    pub fn subscribe(&self, request: Request, session: Arc<Data>) -> BoxStream<'static, Outgoing> {
        let Some(key) = shared_selection(&request) else {
            return self
                .0
                .execute_stream_with_session_data(request, session)
                .map(|response| Outgoing::Response(Box::new(response)))
                .boxed();
        };
        let schema = self.0.clone();
        let template = Template::of(&request);
        let (handoff, handed_over) = oneshot::channel();
        let request = request.data(Handoff(Mutex::new(Some(handoff))));
        let setup = self.0.execute_stream_with_session_data(request, session.clone());
        async_stream::stream! {
            // Validation and the resolver's own errors come as responses;
            // a resolver that follows events hands them over and ends this.
            for await response in setup {
                yield Outgoing::Response(Box::new(response));
            }
            let Ok(mut events) = handed_over.await else { return };
            while let Some(event) = events.next().await {
                // Boxed while it runs: the stream lives as long as the
                // subscription, sized for its largest state.
                yield match event {
                    Ok(event) => Box::pin(shared_payload(&schema, &template, &session, &key, event)).await,
                    Err(error) => Outgoing::Response(Box::new(Box::pin(template.render(&schema, &session, Err(error))).await)),
                };
            }
        }
        .boxed()
    }
}

/// `event`'s payload for the subscribers sharing `key`: rendered and
/// serialised by the first to ask, the same bytes for the rest. A response
/// with errors is not kept (the next subscriber tries again).
async fn shared_payload(
    schema: &MadoguchiSchema,
    template: &Template,
    session: &Arc<Data>,
    key: &SharedKey,
    event: ChatEvent,
) -> Outgoing {
    let source = &event.source.event;
    let cell = shared_payloads(schema).cell(&(key.clone(), source.organization_id, source.seq));
    let rendered = cell
        .get_or_try_init(|| async move {
            let response = template.render(schema, session, Ok(event)).await;
            match response.is_ok() {
                true => serde_json::to_string(&response).map(Arc::from).map_err(|_| response),
                false => Err(response),
            }
        })
        .await;
    match rendered {
        Ok(payload) => Outgoing::Serialized(payload.clone()),
        Err(response) => Outgoing::Response(Box::new(response)),
    }
}

/// The request's key (query, operation name and variables), for the
/// payloads it shares.
type SharedKey = Arc<str>;

/// Serialised payloads, once per (request, event), in the schema's data.
pub(crate) struct SharedPayloads(OncePerKey<(SharedKey, OrganizationId, i64), Arc<str>>);

impl Default for SharedPayloads {
    fn default() -> Self {
        Self(OncePerKey::new(REMEMBERED))
    }
}

fn shared_payloads(schema: &MadoguchiSchema) -> &OncePerKey<(SharedKey, OrganizationId, i64), Arc<str>> {
    &schema.data::<SharedPayloads>().expect("the schema holds SharedPayloads").0
}

/// What a subscriber sent, to run again over one event.
struct Template {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

impl Template {
    fn of(request: &Request) -> Self {
        Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        }
    }

    /// Runs the request over `event` alone and returns its response.
    async fn render(
        &self,
        schema: &MadoguchiSchema,
        session: &Arc<Data>,
        event: async_graphql::Result<ChatEvent>,
    ) -> Response {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        let request = request.data(OneEvent(Mutex::new(Some(event))));
        schema.execute_stream_with_session_data(request, session.clone()).next().await.unwrap_or_default()
    }
}

/// In a shared subscription's data: where the `chatEvents` resolver hands
/// the caller's events over instead of returning them.
pub(crate) struct Handoff(Mutex<Option<oneshot::Sender<BoxStream<'static, async_graphql::Result<ChatEvent>>>>>);

impl Handoff {
    /// Hands `events` over; gives them back when nobody takes them.
    pub(crate) fn hand_over(
        &self,
        events: BoxStream<'static, async_graphql::Result<ChatEvent>>,
    ) -> Option<BoxStream<'static, async_graphql::Result<ChatEvent>>> {
        let sender = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        match sender {
            Some(sender) => sender.send(events).err(),
            None => Some(events),
        }
    }
}

/// In a rendering request's data: the one event the `chatEvents` resolver
/// yields, instead of following the log.
pub(crate) struct OneEvent(Mutex<Option<async_graphql::Result<ChatEvent>>>);

impl OneEvent {
    pub(crate) fn take(&self) -> Option<async_graphql::Result<ChatEvent>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Returns the request's key when it is a `chatEvents` subscription, alone,
/// selecting only fields whose values are the same whoever asks.
fn shared_selection(request: &Request) -> Option<SharedKey> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let [root] = operation.node.selection_set.node.items.as_slice() else { return None };
    let Selection::Field(root) = &root.node else { return None };
    if root.node.name.node != "chatEvents"
        || !only_shared_fields(&document, &root.node.selection_set.node, Shape::ChatEvent, 0)
    {
        return None;
    }
    let variables = serde_json::to_string(&request.variables).ok()?;
    let operation_name = request.operation_name.as_deref().unwrap_or_default();
    Some(format!("{operation_name}\0{variables}\0{}", request.query).into())
}

/// The types a shared selection passes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    ChatEvent,
    Chat,
    EndUser,
    Leaf,
}

/// Returns the shape of a field whose value is the same for every caller
/// who gets the event; `None` for every other field, known or not.
fn shared_field(shape: Shape, name: &str) -> Option<Shape> {
    match (shape, name) {
        (_, "__typename") => Some(Shape::Leaf),
        (Shape::ChatEvent, "cursor" | "kind" | "chatId" | "channelId" | "createdAt") => Some(Shape::Leaf),
        (Shape::ChatEvent, "chat") => Some(Shape::Chat),
        (
            Shape::Chat,
            "id" | "channelId" | "departmentId" | "status" | "claimedBy" | "claimedAt" | "lastMessageAt"
            | "lastMessagePreview" | "unreadCount" | "completedAt" | "completionReason" | "createdAt" | "updatedAt",
        ) => Some(Shape::Leaf),
        (Shape::Chat, "endUser") => Some(Shape::EndUser),
        (
            Shape::EndUser,
            "id" | "customerId" | "displayName" | "pictureUrl" | "contactId" | "blocked" | "unfollowed",
        ) => Some(Shape::Leaf),
        _ => None,
    }
}

fn only_shared_fields(document: &ExecutableDocument, selection: &SelectionSet, shape: Shape, depth: usize) -> bool {
    depth <= MAX_NESTING
        && selection.items.iter().all(|item| match &item.node {
            Selection::Field(field) => match shared_field(shape, &field.node.name.node) {
                Some(Shape::Leaf) => field.node.selection_set.node.items.is_empty(),
                Some(inner) => only_shared_fields(document, &field.node.selection_set.node, inner, depth + 1),
                None => false,
            },
            Selection::FragmentSpread(spread) => {
                document.fragments.get(&spread.node.fragment_name.node).is_some_and(|fragment| {
                    only_shared_fields(document, &fragment.node.selection_set.node, shape, depth + 1)
                })
            }
            Selection::InlineFragment(fragment) => {
                only_shared_fields(document, &fragment.node.selection_set.node, shape, depth + 1)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(query: &str) -> bool {
        shared_selection(&Request::new(query)).is_some()
    }

    #[test]
    fn only_chat_events_selecting_what_everyone_sees_alike_are_shared() {
        assert!(shared(
            "subscription { chatEvents { cursor kind chat { status lastMessagePreview unreadCount endUser { displayName } } } }"
        ));
        assert!(shared(
            "subscription S { chatEvents(after: \"3\") { ...E } } fragment E on ChatEvent { kind chat { ... on Chat { id __typename } } }"
        ));
        // What depends on the caller, or is not known to be the same for everyone.
        assert!(!shared("subscription { chatEvents { chat { messages { id } } } }"));
        assert!(!shared("subscription { chatEvents { chat { sendWindow { open } } } }"));
        assert!(!shared("subscription { chatEvents { ...E } } fragment E on ChatEvent { chat { messages { id } } }"));
        assert!(!shared("subscription { chatEvents { chat { somethingNew } } }"));
        // Other operations, other fields, more than one root field.
        assert!(!shared("query { chatEvents { kind } }"));
        assert!(!shared("subscription { chatMessages(chatId: \"1\") { kind } }"));
        assert!(!shared("subscription { a: chatEvents { kind } b: chatEvents { cursor } }"));
        // A fragment that spreads itself ends the walk.
        assert!(!shared("subscription { chatEvents { ...E } } fragment E on ChatEvent { ...E }"));
    }

    #[test]
    fn the_key_is_the_whole_request() {
        let key = |query: &str, variables: serde_json::Value| {
            let request = Request::new(query).variables(async_graphql::Variables::from_json(variables));
            shared_selection(&request).expect("shared")
        };
        let query = "subscription($skip: Boolean!) { chatEvents { kind chat @skip(if: $skip) { id } } }";
        assert_ne!(key(query, serde_json::json!({"skip": true})), key(query, serde_json::json!({"skip": false})));
        assert_eq!(key(query, serde_json::json!({"skip": true})), key(query, serde_json::json!({"skip": true})));
    }
}
