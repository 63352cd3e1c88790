//! `TicketService`: converting chats into tickets, reading, searching and
//! moving them, under core's one rule for reaching a portal's tickets.

use madoguchi_core::Core;
use madoguchi_core::ids::{ChatId, DepartmentId, TicketId};
use madoguchi_core::kinds;
use madoguchi_core::tickets::{Comment, CommentText, ConvertChat, Ticket};
use tonic::{Request, Response, Status};

use crate::auth::{OrStatus, caller, timestamp};
use crate::helpdesk::{status_from, status_to};
use crate::pb;

/// Serves `madoguchi.v1.TicketService`.
#[derive(Debug, Clone)]
pub struct TicketApi {
    core: Core,
}

impl TicketApi {
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

fn ticket_id(text: &str) -> Result<TicketId, Status> {
    TicketId::parse(text).status()
}

#[tonic::async_trait]
impl pb::ticket_service_server::TicketService for TicketApi {
    async fn convert_chat(
        &self,
        request: Request<pb::ConvertChatRequest>,
    ) -> Result<Response<pb::ConvertChatResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let chat_id = ChatId::parse(&body.chat_id).status()?;
        let command = ConvertChat {
            subject: (!body.subject.is_empty()).then(|| body.subject.clone()),
            helpdesk_department_id: (!body.helpdesk_department_id.is_empty())
                .then(|| DepartmentId::parse(&body.helpdesk_department_id))
                .transpose()
                .status()?,
            priority: match body.priority() {
                pb::TicketPriority::Unspecified => None,
                pb::TicketPriority::High => Some(kinds::TicketPriority::High),
                pb::TicketPriority::Medium => Some(kinds::TicketPriority::Medium),
                pb::TicketPriority::Low => Some(kinds::TicketPriority::Low),
            },
            status: match body.status() {
                pb::TicketStatus::Unspecified => None,
                status => Some(status_from(status).status()?),
            },
            classification: (!body.classification.is_empty()).then(|| body.classification.clone()),
        };
        let ticket = self.core.tickets().convert_chat(&caller, chat_id, command).await.status()?;
        Ok(Response::new(pb::ConvertChatResponse { ticket: Some(ticket.into()) }))
    }

    async fn merge_chat(
        &self,
        request: Request<pb::MergeChatRequest>,
    ) -> Result<Response<pb::MergeChatResponse>, Status> {
        let caller = caller(&request)?;
        let chat_id = ChatId::parse(&request.get_ref().chat_id).status()?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let ticket = self.core.tickets().merge_chat(&caller, chat_id, id).await.status()?;
        Ok(Response::new(pb::MergeChatResponse { ticket: Some(ticket.into()) }))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = caller(&request)?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let ticket = self.core.tickets().get(&caller, id).await.status()?;
        Ok(Response::new(pb::GetTicketResponse { ticket: Some(ticket.into()) }))
    }

    async fn search_tickets(
        &self,
        request: Request<pb::SearchTicketsRequest>,
    ) -> Result<Response<pb::SearchTicketsResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let page_size = if body.page_size <= 0 { 20 } else { body.page_size.min(100) as u64 };
        let found = self.core.tickets().search(&caller, &body.query, page_size).await.status()?;
        Ok(Response::new(pb::SearchTicketsResponse { tickets: found.into_iter().map(Into::into).collect() }))
    }

    async fn list_recent_tickets(
        &self,
        request: Request<pb::ListRecentTicketsRequest>,
    ) -> Result<Response<pb::ListRecentTicketsResponse>, Status> {
        let caller = caller(&request)?;
        let body = request.get_ref();
        let chat_id = ChatId::parse(&body.chat_id).status()?;
        let page_size = if body.page_size <= 0 { 10 } else { body.page_size.min(50) as u64 };
        let found = self.core.tickets().recent_for_chat(&caller, chat_id, page_size).await.status()?;
        Ok(Response::new(pb::ListRecentTicketsResponse { tickets: found.into_iter().map(Into::into).collect() }))
    }

    async fn comment_on_ticket(
        &self,
        request: Request<pb::CommentOnTicketRequest>,
    ) -> Result<Response<pb::CommentOnTicketResponse>, Status> {
        let caller = caller(&request)?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let body = CommentText::parse(&request.get_ref().body).status()?;
        let comment = self.core.tickets().comment(&caller, id, body).await.status()?;
        Ok(Response::new(pb::CommentOnTicketResponse { comment: Some(comment_message(comment)) }))
    }

    async fn list_ticket_comments(
        &self,
        request: Request<pb::ListTicketCommentsRequest>,
    ) -> Result<Response<pb::ListTicketCommentsResponse>, Status> {
        let caller = caller(&request)?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let comments = self.core.tickets().comments(&caller, id).await.status()?;
        Ok(Response::new(pb::ListTicketCommentsResponse {
            comments: comments.into_iter().map(comment_message).collect(),
        }))
    }

    async fn list_ticket_classifications(
        &self,
        request: Request<pb::ListTicketClassificationsRequest>,
    ) -> Result<Response<pb::ListTicketClassificationsResponse>, Status> {
        let names = self.core.tickets().classifications(&caller(&request)?).await.status()?;
        Ok(Response::new(pb::ListTicketClassificationsResponse { names }))
    }

    async fn set_ticket_classifications(
        &self,
        request: Request<pb::SetTicketClassificationsRequest>,
    ) -> Result<Response<pb::SetTicketClassificationsResponse>, Status> {
        let caller = caller(&request)?;
        let names = self.core.tickets().set_classifications(&caller, &request.get_ref().names).await.status()?;
        Ok(Response::new(pb::SetTicketClassificationsResponse { names }))
    }

    async fn get_desk_information(
        &self,
        request: Request<pb::GetDeskInformationRequest>,
    ) -> Result<Response<pb::GetDeskInformationResponse>, Status> {
        let caller = caller(&request)?;
        let chat_id = ChatId::parse(&request.get_ref().chat_id).status()?;
        let found = self.core.tickets().desk_information(&caller, chat_id).await.status()?;
        Ok(Response::new(pb::GetDeskInformationResponse {
            desk_information: found.map(|desk| pb::DeskInformation {
                portal_name: desk.portal_name,
                contact_name: desk.contact_name,
                email: desk.email.unwrap_or_default(),
                phone: desk.phone.unwrap_or_default(),
                account_name: desk.account_name.unwrap_or_default(),
                sla_name: desk.sla_name.unwrap_or_default(),
                contract_name: desk.contract_name.unwrap_or_default(),
                owner_name: desk.owner_name.unwrap_or_default(),
            }),
        }))
    }

    async fn update_ticket_status(
        &self,
        request: Request<pb::UpdateTicketStatusRequest>,
    ) -> Result<Response<pb::UpdateTicketStatusResponse>, Status> {
        let caller = caller(&request)?;
        let id = ticket_id(&request.get_ref().ticket_id)?;
        let status = status_from(request.get_ref().status()).status()?;
        let ticket = self.core.tickets().set_status(&caller, id, status).await.status()?;
        Ok(Response::new(pb::UpdateTicketStatusResponse { ticket: Some(ticket.into()) }))
    }
}

fn comment_message(comment: Comment) -> pb::TicketComment {
    pb::TicketComment {
        id: comment.id.to_string(),
        author_portal_name: comment.author_portal_name,
        author_agent_id: comment.author_agent_id.map(|id| id.to_string()).unwrap_or_default(),
        body: comment.body,
        create_time: Some(timestamp(comment.created_at)),
    }
}

impl From<Ticket> for pb::Ticket {
    fn from(ticket: Ticket) -> Self {
        let priority = match ticket.priority {
            kinds::TicketPriority::High => pb::TicketPriority::High,
            kinds::TicketPriority::Medium => pb::TicketPriority::Medium,
            kinds::TicketPriority::Low => pb::TicketPriority::Low,
        };
        Self {
            id: ticket.id.to_string(),
            portal_name: ticket.portal_name,
            number: ticket.number,
            subject: ticket.subject,
            description: ticket.description.unwrap_or_default(),
            status: status_to(ticket.status).into(),
            priority: priority.into(),
            classification: ticket.classification.unwrap_or_default(),
            department_id: ticket.department_id.map(|id| id.to_string()).unwrap_or_default(),
            email: ticket.email.unwrap_or_default(),
            chat_ids: ticket.chat_ids.into_iter().map(|id| id.to_string()).collect(),
            create_time: Some(timestamp(ticket.created_at)),
            update_time: Some(timestamp(ticket.updated_at)),
        }
    }
}
