//! `EventService`: the organization's event log as a resumable stream.

use futures::{Stream, StreamExt};
use madoguchi_core::Core;
use madoguchi_core::events::{Event, KindFilter};
use std::pin::Pin;
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, caller, timestamp, to_status};
use crate::pb;

/// Serves `madoguchi.v1.EventService`.
#[derive(Debug, Clone)]
pub struct EventApi {
    core: Core,
}

impl EventApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::StreamEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for EventApi {
    type StreamEventsStream = EventStream;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let caller = caller(&request)?;
        let after = request.get_ref().after_cursor;
        let kinds = KindFilter::parse(&request.get_ref().kinds).status()?;
        let events = self.core.follow_organization_log(&caller, after).await.status()?;
        let stream = events
            .filter(move |event| std::future::ready(event.as_ref().map_or(true, |event| kinds.matches(&event.kind))))
            .map(|event| event.map(|event| pb::StreamEventsResponse { event: Some(event.into()) }).map_err(to_status));
        Ok(Response::new(Box::pin(stream)))
    }
}

impl From<Event> for pb::Event {
    fn from(value: Event) -> Self {
        Self {
            cursor: value.seq,
            kind: value.kind,
            channel_id: value.channel_id.map(|id| id.to_string()).unwrap_or_default(),
            chat_id: value.chat_id.map(|id| id.to_string()).unwrap_or_default(),
            payload: Some(json_to_struct(value.payload)),
            create_time: Some(timestamp(value.created_at)),
        }
    }
}

fn json_to_struct(value: serde_json::Value) -> prost_types::Struct {
    match json_to_value(value).kind {
        Some(prost_types::value::Kind::StructValue(object)) => object,
        other => prost_types::Struct {
            fields: [("value".to_owned(), prost_types::Value { kind: other })].into_iter().collect(),
        },
    }
}

fn json_to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(json_to_value).collect() })
        }
        serde_json::Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields.into_iter().map(|(key, value)| (key, json_to_value(value))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}
