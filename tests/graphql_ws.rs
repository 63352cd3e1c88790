//! A small graphql-transport-ws client over tokio-tungstenite, for tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A connected graphql-transport-ws session.
#[derive(Debug)]
pub struct GraphqlWs {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server sent.
#[derive(Debug, PartialEq)]
pub enum Received {
    Message(Value),
    Closed(Option<u16>),
}

impl GraphqlWs {
    /// Connects and sends `connection_init` with the payload; returns the
    /// session after `connection_ack`, or what the server said instead.
    pub async fn connect(url: &str, payload: Value) -> Result<Self, Received> {
        let mut session = Self::open(url, "graphql-transport-ws").await;
        session.send(json!({"type": "connection_init", "payload": payload})).await;
        match session.next().await {
            Received::Message(message) if message["type"] == "connection_ack" => Ok(session),
            other => Err(other),
        }
    }

    /// Connects speaking `protocol` (`graphql-transport-ws`, or the older
    /// `graphql-ws`) and sends nothing yet.
    pub async fn open(url: &str, protocol: &str) -> Self {
        let mut request = url.into_client_request().expect("websocket url");
        request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket connects");
        Self { socket }
    }

    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// Sends a text frame as it is, JSON or not.
    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.into())).await.expect("websocket send");
    }

    /// Starts a subscription with id `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}})).await;
    }

    /// Returns the next message or close, waiting at most 30 seconds.
    pub async fn next(&mut self) -> Received {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("nothing received from the websocket in 30 s");
            match item {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("json message");
                    if value["type"] == "ping" {
                        self.send(json!({"type": "pong"})).await;
                        continue;
                    }
                    return Received::Message(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|frame| frame.code.into()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// Returns the `data` of the next `next` message, panicking on anything else.
    pub async fn next_data(&mut self) -> Value {
        match self.next().await {
            Received::Message(message) if message["type"] == "next" => message["payload"]["data"].clone(),
            other => panic!("expected a next message, got {other:?}"),
        }
    }

    /// Returns whether nothing arrives within `wait`.
    pub async fn is_quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.socket.next()).await.is_err()
    }
}
