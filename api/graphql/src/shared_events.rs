//! `chatEvents` payloads resolved once per event for every subscriber that
//! asked for them the same way, not once per subscriber.
//!
//! Every agent watching an organization's chat list runs the same
//! subscription; resolving its selection (the chat, its end user) for each
//! of a thousand subscribers cost more than everything else an event costs
//! them. [`SharedSubscriptions`], the WebSocket's executor, marks a
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

use std::borrow::Cow;
use std::sync::Arc;

use async_graphql::futures_util::stream::BoxStream;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::{
    ContextSelectionSet, Data, Executor, OutputType, Positioned, Request, Response, ServerResult, Value,
};
use madoguchi_core::ids::OrganizationId;
use madoguchi_core::once_per_key::OncePerKey;

use crate::schema::MadoguchiSchema;
use crate::workspace::ChatEvent;

/// How many resolved payloads are remembered: enough for every subscriber
/// to take a burst of events before the first is forgotten (a forgotten
/// one is only resolved again).
const REMEMBERED: usize = 1_024;

/// Deeper than any selection of the shared fields needs; a fragment that
/// spreads itself (refused later by validation) stops here.
const MAX_NESTING: usize = 16;

/// Runs the schema for one WebSocket, marking the subscriptions whose
/// payloads can be shared.
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
}

impl Executor for SharedSubscriptions {
    async fn execute(&self, request: Request) -> Response {
        self.0.execute(request).await
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let request = match shared_selection(&request) {
            Some(selection) => request.data(selection),
            None => request,
        };
        self.0.execute_stream_with_session_data(request, session_data.unwrap_or_default())
    }
}

/// The request, as the key of the payloads it shares.
#[derive(Clone, Debug)]
pub(crate) struct SharedSelection(Arc<str>);

/// Payloads resolved once per (request, event), in the schema's data.
pub(crate) struct SharedPayloads(OncePerKey<(Arc<str>, OrganizationId, i64), Value>);

impl Default for SharedPayloads {
    fn default() -> Self {
        Self(OncePerKey::new(REMEMBERED))
    }
}

/// Returns the request's key when it is a `chatEvents` subscription, alone,
/// selecting only fields whose values are the same whoever asks.
fn shared_selection(request: &Request) -> Option<SharedSelection> {
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
    Some(SharedSelection(format!("{operation_name}\0{variables}\0{}", request.query).into()))
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

/// A `ChatEvent` as a subscription yields it: resolved once for every
/// subscriber of the same shared request, or on its own.
#[derive(Debug)]
pub struct LiveChatEvent {
    pub(crate) event: ChatEvent,
    pub(crate) shared: Option<SharedSelection>,
}

impl OutputType for LiveChatEvent {
    fn type_name() -> Cow<'static, str> {
        <ChatEvent as OutputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <ChatEvent as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        let (Some(SharedSelection(request)), Some(SharedPayloads(payloads))) =
            (&self.shared, ctx.data_opt::<SharedPayloads>())
        else {
            return self.event.resolve(ctx, field).await;
        };
        let source = &self.event.source.event;
        let cell = payloads.cell(&(request.clone(), source.organization_id, source.seq));
        cell.get_or_try_init(|| self.event.resolve(ctx, field)).await.cloned()
    }
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
            shared_selection(&request).expect("shared").0
        };
        let query = "subscription($skip: Boolean!) { chatEvents { kind chat @skip(if: $skip) { id } } }";
        assert_ne!(key(query, serde_json::json!({"skip": true})), key(query, serde_json::json!({"skip": false})));
        assert_eq!(key(query, serde_json::json!({"skip": true})), key(query, serde_json::json!({"skip": true})));
    }
}
