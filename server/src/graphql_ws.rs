//! The GraphQL WebSocket, `/graphql/ws`: graphql-transport-ws, and the
//! older subscriptions-transport-ws (`graphql-ws`) that some clients still
//! speak, authenticated in `connection_init`.
//!
//! Our own rather than async-graphql-axum's so that a payload serialised
//! once for every subscriber ([`Outgoing::Serialized`]) goes out as it is:
//! each subscriber's frame is its subscription's id around the same bytes,
//! where async-graphql would clone, wrap and serialise it again for each.
//! One task serves a connection: its socket, its subscriptions and the
//! end of its session, with no channel between them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{ClientMessage, WebSocketProtocols as Protocols};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::{FutureExt, SinkExt, StreamExt};
use madoguchi_core::Core;
use madoguchi_core::auth::Caller;
use madoguchi_graphql::shared_events::{Outgoing, SharedSubscriptions};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send `connection_init` (graphql-ws's
/// clients send it at once; its server waits 3 s).
const INITIALISATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How soon a session check the database could not answer is tried again.
const SESSION_RECHECK: Duration = Duration::from_secs(1);

/// The most operations one connection runs at once: a client watching a
/// chat list and a few chats needs a handful; each costs a follower.
pub const MAX_OPERATIONS: usize = 100;

/// The protocol a client asks for in `Sec-WebSocket-Protocol`, the first
/// of its list that we speak.
pub fn requested_protocol(headers: &axum::http::HeaderMap) -> Option<Protocols> {
    let protocols = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    protocols.split(',').find_map(|protocol| protocol.trim().parse().ok())
}

/// What `connection_init` decides: the connection's data and, for a
/// session, its end to watch; or why it is refused.
pub type Acceptance = Result<(Data, Option<SessionEnd>), String>;

/// When a session expires, and whose it is (to check after identity changes).
pub type SessionEnd = (DateTime<Utc>, Caller);

/// What the connection needs besides its socket.
pub struct Connection<Authenticate> {
    pub protocol: Protocols,
    pub executor: SharedSubscriptions,
    pub core: Core,
    /// Cancelled when the server shuts down: the socket closes with 1001.
    pub shutdown: CancellationToken,
    /// Decides `connection_init` from its payload.
    pub authenticate: Authenticate,
}

impl<Authenticate> std::fmt::Debug for Connection<Authenticate> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("protocol", &self.protocol).finish_non_exhaustive()
    }
}

/// One subscription, as its items are tagged.
struct Subscription {
    id: String,
    /// Tells this subscription from a later one that reuses its id.
    generation: u64,
    /// `{"type":"next","id":…,"payload":` (`data` in the older protocol).
    next_prefix: String,
}

/// An item of a subscription; `None` when it has ended.
type Tagged = (Arc<Subscription>, Option<Outgoing>);

/// Why the loop stopped waiting.
enum Step {
    Incoming(Option<Result<Message, axum::Error>>),
    Item(Tagged),
    Close(u16, String),
}

/// What a client message leads to.
enum Reply {
    Nothing,
    Send(String),
    Close(u16, String),
    /// The older protocol's refusal: a message, then the close.
    SendAndClose(String, u16, String),
}

/// Serves one connection until either side closes it.
pub async fn serve<Authenticate, Authenticating>(mut socket: WebSocket, connection: Connection<Authenticate>)
where
    Authenticate: FnOnce(serde_json::Value) -> Authenticating,
    Authenticating: Future<Output = Acceptance>,
{
    let Connection { protocol, executor, core, shutdown, authenticate } = connection;
    let mut state = State {
        protocol,
        executor,
        core: core.clone(),
        caller: None,
        revoked: Arc::new(AtomicBool::new(false)),
        authenticate: Some(authenticate),
        session: None,
        active: HashMap::new(),
        subscriptions: SelectAll::new(),
        generations: 0,
    };
    let initialisation = tokio::time::sleep(INITIALISATION_TIMEOUT);
    tokio::pin!(initialisation);
    // The connection closes when the session token expires, or when the
    // session stops holding (the agent deactivated, demoted, or their
    // password changed), checked after every identity change.
    let mut session_end: BoxFuture<'static, &'static str> = std::future::pending().boxed();
    loop {
        let step = tokio::select! {
            () = shutdown.cancelled() => Step::Close(1001, "server shutting down".into()),
            reason = &mut session_end => Step::Close(4401, reason.into()),
            () = &mut initialisation, if state.session.is_none() => {
                Step::Close(4408, "Connection initialisation timeout".into())
            }
            incoming = socket.recv() => Step::Incoming(incoming),
            Some(item) = state.subscriptions.next(), if !state.subscriptions.is_empty() => Step::Item(item),
        };
        let reply = match step {
            Step::Close(code, reason) => Reply::Close(code, reason),
            Step::Item((subscription, item)) => state.item(&subscription, item),
            Step::Incoming(None | Some(Err(_))) => return,
            Step::Incoming(Some(Ok(Message::Close(_)))) => {
                // Sends the close frame the socket queued in reply.
                let _ = socket.close().await;
                return;
            }
            Step::Incoming(Some(Ok(Message::Text(text)))) => match ClientMessage::from_bytes(text.as_str()) {
                Ok(message) => {
                    let reply = state.message(message).await;
                    if let Some((expires_at, caller)) = state.session.as_mut().and_then(|session| session.1.take()) {
                        session_end = watch_session(core.clone(), expires_at, caller).boxed();
                    }
                    reply
                }
                Err(error) => Reply::Close(4400, format!("Invalid message received: {error}")),
            },
            Step::Incoming(Some(Ok(Message::Binary(_)))) => {
                Reply::Close(4400, "Invalid message received: binary frames are not part of the protocol".into())
            }
            // WebSocket pings are answered by the socket itself.
            Step::Incoming(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => Reply::Nothing,
        };
        match reply {
            Reply::Nothing => {}
            Reply::Send(text) => {
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Reply::Close(code, reason) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                return;
            }
            Reply::SendAndClose(text, code, reason) => {
                let _ = socket.send(Message::Text(text.into())).await;
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                return;
            }
        }
    }
}

/// Ends when the session expires or stops holding: checked once as it
/// starts (a change between `connection_init`'s check and the subscription
/// to identity changes would otherwise go unseen) and after every identity
/// change. A check the database could not answer is tried again each
/// second until it can: the session is not taken to hold meanwhile.
async fn watch_session(core: Core, expires_at: DateTime<Utc>, caller: Caller) -> &'static str {
    let mut identity = core.events().identity_changes();
    identity.borrow_and_update();
    let expiry = core.clock().sleep_until(expires_at);
    tokio::pin!(expiry);
    let mut unchecked = true;
    loop {
        if unchecked {
            // Boxed while it queries: this future is allocated for its
            // largest state for as long as the connection lives.
            match Box::pin(core.still_authorized(&caller)).await {
                Ok(()) => unchecked = false,
                Err(error) if error.code() == madoguchi_core::ErrorCode::Unauthenticated => return "session revoked",
                Err(error) => {
                    tracing::warn!(error = ?error.cause(), "cannot check a websocket's session; trying again")
                }
            }
        }
        let retry = async {
            match unchecked {
                true => tokio::time::sleep(SESSION_RECHECK).await,
                false => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut expiry => return "session expired",
            () = retry => {}
            changed = identity.changed() => {
                if changed.is_err() {
                    return std::future::pending().await;
                }
                unchecked = true;
            }
        }
    }
}

struct State<Authenticate> {
    protocol: Protocols,
    executor: SharedSubscriptions,
    core: Core,
    /// Whose session this is, once accepted: checked again as each
    /// operation starts, as a request over HTTP is.
    caller: Option<Caller>,
    /// Set once an operation found the session revoked: the connection
    /// wakes identity checks once, however many operations it sends.
    revoked: Arc<AtomicBool>,
    /// Taken by the first `connection_init`.
    authenticate: Option<Authenticate>,
    /// Once accepted: the data every operation runs with, and the session
    /// to watch until the loop takes it.
    session: Option<(Arc<Data>, Option<SessionEnd>)>,
    /// Running subscriptions by id, with their generation.
    active: HashMap<String, (u64, AbortHandle)>,
    subscriptions: SelectAll<BoxStream<'static, Tagged>>,
    generations: u64,
}

impl<Authenticate, Authenticating> State<Authenticate>
where
    Authenticate: FnOnce(serde_json::Value) -> Authenticating,
    Authenticating: Future<Output = Acceptance>,
{
    async fn initialise(&mut self, payload: serde_json::Value) -> Reply {
        let Some(authenticate) = self.authenticate.take() else {
            return Reply::Close(4429, "Too many initialisation requests".into());
        };
        match authenticate(payload).await {
            Ok((data, session)) => {
                self.caller = session.as_ref().map(|(_, caller)| caller.clone());
                self.session = Some((Arc::new(data), session));
                Reply::Send(json!({"type": "connection_ack"}).to_string())
            }
            Err(message) => match self.protocol {
                // graphql-transport-ws: 4403 Forbidden.
                Protocols::GraphQLWS => Reply::Close(4403, message),
                Protocols::SubscriptionsTransportWS => Reply::SendAndClose(
                    json!({"type": "connection_error", "payload": {"message": message}}).to_string(),
                    4403,
                    "Forbidden".into(),
                ),
            },
        }
    }

    async fn message(&mut self, message: ClientMessage) -> Reply {
        match message {
            ClientMessage::ConnectionInit { payload } => self.initialise(payload.unwrap_or_default()).await,
            ClientMessage::Start { id, payload } => {
                let Some((data, _)) = &self.session else {
                    return Reply::Close(4401, "Unauthorized".into());
                };
                if self.active.contains_key(&id) {
                    return Reply::Close(4409, format!("Subscriber for {id} already exists"));
                }
                if self.active.len() >= MAX_OPERATIONS {
                    // This operation alone fails; the connection and its
                    // other operations go on.
                    let error = json!({"message": format!("at most {MAX_OPERATIONS} operations run at once on one connection")});
                    let payload = match self.protocol {
                        Protocols::GraphQLWS => json!([error]),
                        Protocols::SubscriptionsTransportWS => error,
                    };
                    return Reply::Send(json!({"type": "error", "id": id, "payload": payload}).to_string());
                }
                self.generations += 1;
                let subscription = Arc::new(Subscription {
                    next_prefix: format!(
                        "{{\"type\":\"{}\",\"id\":{},\"payload\":",
                        next_type(self.protocol),
                        serde_json::Value::from(id.as_str())
                    ),
                    id: id.clone(),
                    generation: self.generations,
                });
                let (abort, registration) = AbortHandle::new_pair();
                let operation = self.executor.subscribe(payload, data.clone());
                let operation = match &self.caller {
                    Some(caller) => checked_first(self.core.clone(), caller.clone(), self.revoked.clone(), operation),
                    None => operation,
                };
                let items = Abortable::new(operation, registration);
                let tagged = {
                    let subscription = subscription.clone();
                    items.map(move |item| (subscription.clone(), Some(item)))
                };
                let ended = futures::stream::once(async move { (subscription, None) });
                self.subscriptions.push(tagged.chain(ended).boxed());
                self.active.insert(id, (self.generations, abort));
                Reply::Nothing
            }
            ClientMessage::Stop { id } => {
                let Some((_, abort)) = self.active.remove(&id) else {
                    return Reply::Nothing;
                };
                abort.abort();
                match self.protocol {
                    // The client said `complete` itself: nothing to answer.
                    Protocols::GraphQLWS => Reply::Nothing,
                    // subscriptions-transport-ws confirms a `stop`.
                    Protocols::SubscriptionsTransportWS => {
                        Reply::Send(json!({"type": "complete", "id": id}).to_string())
                    }
                }
            }
            ClientMessage::ConnectionTerminate => Reply::Close(1000, "terminated".into()),
            ClientMessage::Ping { .. } => Reply::Send(json!({"type": "pong"}).to_string()),
            ClientMessage::Pong { .. } => Reply::Nothing,
        }
    }

    /// Ends `subscription` if it is still the one running under its id
    /// (not a later one reusing the id); returns whether it was.
    fn end(&mut self, subscription: &Subscription) -> bool {
        let ours =
            self.active.get(&subscription.id).is_some_and(|(generation, _)| *generation == subscription.generation);
        if ours && let Some((_, abort)) = self.active.remove(&subscription.id) {
            // Nothing more of it goes out, not even its end.
            abort.abort();
        }
        ours
    }

    /// Frames a subscription's item; `complete` when it ended on its own.
    /// In graphql-transport-ws a request that never ran (it did not parse
    /// or validate) ends with `error` and its errors, not `next` and
    /// `complete`; subscriptions-transport-ws's server sent `data`.
    fn item(&mut self, subscription: &Subscription, item: Option<Outgoing>) -> Reply {
        let payload = match item {
            Some(Outgoing::Serialized(payload)) => payload,
            Some(Outgoing::Response(response)) if self.protocol == Protocols::GraphQLWS && never_ran(&response) => {
                if !self.end(subscription) {
                    return Reply::Nothing;
                }
                return match serde_json::to_value(&response.errors) {
                    Ok(errors) => {
                        Reply::Send(json!({"type": "error", "id": subscription.id, "payload": errors}).to_string())
                    }
                    Err(error) => Reply::Close(1011, format!("a response could not be serialised: {error}")),
                };
            }
            Some(Outgoing::Response(response)) => match serde_json::to_string(&response) {
                Ok(payload) => payload.into(),
                Err(error) => return Reply::Close(1011, format!("a response could not be serialised: {error}")),
            },
            None => {
                if !self.end(subscription) {
                    return Reply::Nothing;
                }
                return Reply::Send(json!({"type": "complete", "id": subscription.id}).to_string());
            }
        };
        let mut frame = String::with_capacity(subscription.next_prefix.len() + payload.len() + 1);
        frame.push_str(&subscription.next_prefix);
        frame.push_str(&payload);
        frame.push('}');
        Reply::Send(frame)
    }
}

/// Runs `operation` once `caller`'s session is checked again, as a request
/// over HTTP is checked: a session revoked while no identity change reached
/// this process (another replica's notification lost) runs nothing more.
/// The check is part of the operation's stream, not of the connection's
/// loop, so it never waits for a database connection that the
/// connection's own, unpolled, subscriptions hold.
fn checked_first(
    core: Core,
    caller: Caller,
    revoked: Arc<AtomicBool>,
    operation: BoxStream<'static, Outgoing>,
) -> BoxStream<'static, Outgoing> {
    let checked = async move {
        // Boxed while it queries: the operation's stream is allocated for
        // its largest state for as long as the subscription lives.
        match Box::pin(core.still_authorized(&caller)).await {
            Ok(()) => Ok(operation),
            Err(error) if error.code() == madoguchi_core::ErrorCode::Unauthenticated => {
                // This connection's session watch (and any other that missed
                // the change) checks again and closes it with 4401; once per
                // connection, so its operations cannot make every session
                // in the process check again and again.
                if !revoked.swap(true, Ordering::AcqRel) {
                    core.events().wake_identity();
                }
                Err(refusal(error))
            }
            Err(error) => {
                tracing::warn!(error = ?error.cause(), "cannot check a websocket's session");
                Err(refusal(madoguchi_core::Error::unavailable("the session could not be checked; try again")))
            }
        }
    };
    futures::stream::once(checked)
        .flat_map(|checked| match checked {
            Ok(operation) => operation,
            Err(refused) => futures::stream::once(async move { refused }).boxed(),
        })
        .boxed()
}

/// An operation refused before it ran.
fn refusal(error: madoguchi_core::Error) -> Outgoing {
    let error = madoguchi_graphql::to_graphql(error).into_server_error(Default::default());
    let response = async_graphql::Response::from_errors(vec![error]);
    Outgoing::Response(Box::new(response))
}

/// Whether a response is a request's that never ran: no data, and errors
/// that belong to no field (parse and validation errors have no path).
fn never_ran(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn next_type(protocol: Protocols) -> &'static str {
    match protocol {
        Protocols::GraphQLWS => "next",
        Protocols::SubscriptionsTransportWS => "data",
    }
}
