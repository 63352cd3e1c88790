//! `ChatService`: the organization's chats as agents see them, and chats
//! partner systems submit from channels we do not host.

use chrono::{DateTime, Duration, Utc};
use madoguchi_core::Core;
use madoguchi_core::Error;
use madoguchi_core::auth::Email;
use madoguchi_core::chats::{Chat, ChatFilter, Message, PageRequest};
use madoguchi_core::ids::{ChatId, DepartmentId};
use madoguchi_core::kinds;
use madoguchi_core::submissions::{SubmitChat, SubmittedMessage};
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, caller, timestamp};
use crate::pb;

/// Serves `madoguchi.v1.ChatService`.
#[derive(Debug, Clone)]
pub struct ChatApi {
    core: Core,
}

impl ChatApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

fn chat_id(text: &str) -> Result<ChatId, Status> {
    ChatId::parse(text).status()
}

fn status_from(status: pb::ChatStatus) -> Result<kinds::ChatStatus, Status> {
    Ok(match status {
        pb::ChatStatus::New => kinds::ChatStatus::New,
        pb::ChatStatus::InProgress => kinds::ChatStatus::InProgress,
        pb::ChatStatus::Completed => kinds::ChatStatus::Completed,
        pb::ChatStatus::Unspecified => {
            return Err(Error::invalid_field("statuses", "CHAT_STATUS_UNSPECIFIED is not a status")).status();
        }
    })
}

fn time_from(field: &str, time: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, Status> {
    let time = time.ok_or_else(|| Error::invalid_field(field, "required")).status()?;
    DateTime::from_timestamp(time.seconds, time.nanos.max(0) as u32)
        .ok_or_else(|| Error::invalid_field(field, "out of range"))
        .status()
}

#[tonic::async_trait]
impl pb::chat_service_server::ChatService for ChatApi {
    async fn list_chats(
        &self,
        request: Request<pb::ListChatsRequest>,
    ) -> Result<Response<pb::ListChatsResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let filter = ChatFilter {
            statuses: body.statuses().map(status_from).collect::<Result<_, _>>()?,
            customer_id: (!body.customer_id.is_empty()).then(|| body.customer_id.clone()),
            department_id: (!body.department_id.is_empty())
                .then(|| DepartmentId::parse(&body.department_id))
                .transpose()
                .status()?,
            ..ChatFilter::default()
        };
        let page = PageRequest {
            first: Some(if body.page_size <= 0 { 20 } else { body.page_size.min(100) as u64 }),
            after: (!body.page_token.is_empty()).then(|| body.page_token.clone()),
        };
        let page = self.core.chats().list(&caller, filter, page).await.status()?;
        let next_page_token = match (page.has_next_page, page.chats.last()) {
            (true, Some((cursor, _))) => cursor.clone(),
            _ => String::new(),
        };
        let chats = page.chats.into_iter().map(|(_, chat)| chat_message(chat)).collect();
        Ok(Response::new(pb::ListChatsResponse { chats, next_page_token }))
    }

    async fn get_chat(&self, request: Request<pb::GetChatRequest>) -> Result<Response<pb::GetChatResponse>, Status> {
        let caller = caller(&request)?;
        let chat = self.core.chats().get(&caller, chat_id(&request.get_ref().chat_id)?).await.status()?;
        Ok(Response::new(pb::GetChatResponse { chat: Some(chat_message(chat)) }))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let id = chat_id(&body.chat_id)?;
        let page_size = if body.page_size <= 0 { 100 } else { body.page_size.min(500) as u64 };
        // A page token is the instant just before the oldest message shown.
        let (from, to) = if body.page_token.is_empty() {
            (None, None)
        } else {
            let to = DateTime::parse_from_rfc3339(&body.page_token)
                .map_err(|_| Error::invalid_field("page_token", "not a token this service gave"))
                .status()?
                .with_timezone(&Utc);
            (Some(DateTime::<Utc>::UNIX_EPOCH), Some(to))
        };
        let messages = self.core.chats().messages(&caller, id, from, to, Some(page_size)).await.status()?;
        let next_page_token = match messages.first() {
            Some(oldest) if messages.len() as u64 == page_size => {
                (oldest.created_at - Duration::microseconds(1)).to_rfc3339()
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.into_iter().map(message_message).collect(),
            next_page_token,
        }))
    }

    async fn submit_chat(
        &self,
        request: Request<pb::SubmitChatRequest>,
    ) -> Result<Response<pb::SubmitChatResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let visitor = body.visitor.clone().unwrap_or_default();
        let transcript = body
            .transcript
            .iter()
            .enumerate()
            .map(|(index, message)| {
                let from_visitor = match message.sender() {
                    pb::MessageSender::Visitor => true,
                    pb::MessageSender::Agent => false,
                    pb::MessageSender::Unspecified => {
                        return Err(Error::invalid_field(format!("transcript[{index}].sender"), "required")).status();
                    }
                };
                let sent_at = time_from(&format!("transcript[{index}].send_time"), message.send_time.as_ref())?;
                Ok(SubmittedMessage { from_visitor, text: message.text.clone(), sent_at })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let department_id = if body.department_id.is_empty() {
            return Err(Error::invalid_field("department_id", "required")).status();
        } else {
            DepartmentId::parse(&body.department_id)
                .map_err(|error| Error::invalid_field("department_id", error))
                .status()?
        };
        let command = SubmitChat {
            partner_chat_id: body.partner_chat_id.clone(),
            visitor_id: visitor.id,
            visitor_name: (!visitor.name.trim().is_empty()).then_some(visitor.name),
            visitor_email: (!visitor.email.is_empty())
                .then(|| Email::parse(&visitor.email).map_err(|error| Error::invalid_field("visitor.email", error)))
                .transpose()
                .status()?,
            department_id,
            transcript,
            attended: body.attended,
        };
        let submitted = self.core.submissions().submit(&caller, command).await.status()?;
        Ok(Response::new(pb::SubmitChatResponse {
            chat: Some(chat_message(submitted.chat)),
            created: submitted.created,
        }))
    }
}

fn chat_message(chat: Chat) -> pb::Chat {
    let status = match chat.status {
        kinds::ChatStatus::New => pb::ChatStatus::New,
        kinds::ChatStatus::InProgress => pb::ChatStatus::InProgress,
        kinds::ChatStatus::Completed => pb::ChatStatus::Completed,
    };
    pb::Chat {
        id: chat.id.to_string(),
        channel_id: chat.channel_id.to_string(),
        department_id: chat.department_id.to_string(),
        status: status.into(),
        customer_id: chat.end_user.external_id,
        customer_name: chat.end_user.display_name.unwrap_or_default(),
        contact_id: chat.end_user.contact_id.map(|id| id.to_string()).unwrap_or_default(),
        claimed_by_agent_id: chat.claimed_by.map(|id| id.to_string()).unwrap_or_default(),
        last_message_preview: chat.last_message_preview.unwrap_or_default(),
        unread_count: chat.unread_count,
        completion_reason: chat.completion_reason.map(|reason| reason.as_str().to_owned()).unwrap_or_default(),
        last_message_time: chat.last_message_at.map(timestamp),
        create_time: Some(timestamp(chat.created_at)),
        update_time: Some(timestamp(chat.updated_at)),
    }
}

fn message_message(message: Message) -> pb::Message {
    let sender = match message.direction {
        kinds::MessageDirection::Inbound => pb::MessageSender::Visitor,
        kinds::MessageDirection::Outbound => pb::MessageSender::Agent,
    };
    pb::Message {
        id: message.id.to_string(),
        chat_id: message.chat_id.to_string(),
        sender: sender.into(),
        kind: message.kind.as_str().to_owned(),
        text: if message.is_passcode { String::new() } else { message.text.unwrap_or_default() },
        delivery_state: message.delivery_state.as_str().to_owned(),
        create_time: Some(timestamp(message.created_at)),
    }
}
