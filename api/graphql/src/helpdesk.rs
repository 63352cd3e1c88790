//! GraphQL for the helpdesk integration (admins): ZSC keys, the link to a
//! helpdesk portal, its rule and department mapping; and tickets (agents) —
//! the same core use cases as gRPC's `HelpdeskService` and `TicketService`.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use madoguchi_core::auth::Email;
use madoguchi_core::helpdesk::{self, LinkHelpdesk, Mapping};
use madoguchi_core::ids::{ChatId, DepartmentId, TicketId};
use madoguchi_core::kinds;
use madoguchi_core::organizations::PortalName;
use madoguchi_core::secrets::Secret;
use madoguchi_core::tickets::{self, CommentText, ConvertChat};

use crate::context::{OrGraphql, caller, core};

mirror_enum!(ChatToTicketRule, kinds::ChatToTicketRule { AllVisitors, Attended, Missed, None });
mirror_enum!(TicketStatus, kinds::TicketStatus { Open, OnHold, Escalated, Closed });
mirror_enum!(MappingMode, kinds::MappingMode { Department, None, ViewOnly, ChooseAsNeeded });
mirror_enum!(RecentTicketsScope, kinds::RecentTicketsScope { AllDepartments, MappedOnly });

/// The chat side's link to a helpdesk portal.
#[derive(SimpleObject, Debug)]
pub struct HelpdeskLink {
    /// The portal it points to, by portal and organization name.
    pub helpdesk_portal_name: String,
    pub helpdesk_organization_name: String,
    pub admin_email: String,
    pub enabled: bool,
    pub rule: ChatToTicketRule,
    pub ticket_status: TicketStatus,
    pub recent_tickets: RecentTicketsScope,
    pub mappings: Vec<DepartmentMapping>,
    pub updated_at: DateTime<Utc>,
}

/// How one chat-side department maps onto the helpdesk.
#[derive(SimpleObject, Debug)]
pub struct DepartmentMapping {
    pub department_id: ID,
    pub department_name: String,
    pub mode: MappingMode,
    pub helpdesk_department_id: Option<ID>,
    pub helpdesk_department_name: Option<String>,
}

impl From<helpdesk::HelpdeskLink> for HelpdeskLink {
    fn from(link: helpdesk::HelpdeskLink) -> Self {
        Self {
            helpdesk_portal_name: link.helpdesk_portal_name,
            helpdesk_organization_name: link.helpdesk_organization_name,
            admin_email: link.admin_email,
            enabled: link.enabled,
            rule: link.rule.into(),
            ticket_status: link.ticket_status.into(),
            recent_tickets: link.recent_tickets.into(),
            mappings: link
                .mappings
                .into_iter()
                .map(|mapping| DepartmentMapping {
                    department_id: mapping.department_id.to_string().into(),
                    department_name: mapping.department_name,
                    mode: mapping.mode.into(),
                    helpdesk_department_id: mapping.helpdesk_department_id.map(|id| id.to_string().into()),
                    helpdesk_department_name: mapping.helpdesk_department_name,
                })
                .collect(),
            updated_at: link.updated_at,
        }
    }
}

/// A new ZSC key, shown only in this answer.
#[derive(SimpleObject)]
pub struct GeneratedZscKey {
    pub zsc_key: String,
    pub prefix: String,
}

impl std::fmt::Debug for GeneratedZscKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedZscKey").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

#[derive(InputObject)]
pub struct LinkHelpdeskInput {
    pub admin_email: String,
    pub portal_name: String,
    /// Not needed for the caller's own portal.
    pub zsc_key: Option<String>,
}

impl std::fmt::Debug for LinkHelpdeskInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkHelpdeskInput")
            .field("admin_email", &self.admin_email)
            .field("portal_name", &self.portal_name)
            .field("zsc_key", &self.zsc_key.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Default, Debug)]
pub struct HelpdeskQuery;

#[Object]
impl HelpdeskQuery {
    /// The organization's link to a helpdesk portal (`NOT_FOUND` without one).
    async fn helpdesk_link(&self, ctx: &Context<'_>) -> Result<HelpdeskLink> {
        core(ctx).helpdesk().get_link(&caller(ctx)?).await.graphql().map(Into::into)
    }
}

#[derive(Default, Debug)]
pub struct HelpdeskMutation;

#[Object]
impl HelpdeskMutation {
    /// Generates this portal's ZSC key, revoking the previous one (admins).
    async fn generate_zsc_key(&self, ctx: &Context<'_>) -> Result<GeneratedZscKey> {
        let generated = core(ctx).helpdesk().generate_zsc_key(&caller(ctx)?).await.graphql()?;
        Ok(GeneratedZscKey { zsc_key: generated.secret.expose().clone(), prefix: generated.key.prefix })
    }

    /// Links to a helpdesk portal, or points the link elsewhere (admins).
    async fn link_helpdesk(&self, ctx: &Context<'_>, input: LinkHelpdeskInput) -> Result<HelpdeskLink> {
        let command = LinkHelpdesk {
            admin_email: Email::parse(&input.admin_email).graphql()?,
            portal_name: PortalName::parse(&input.portal_name).graphql()?,
            zsc_key: input.zsc_key.map(Secret::new),
        };
        core(ctx).helpdesk().link(&caller(ctx)?, command).await.graphql().map(Into::into)
    }

    async fn set_helpdesk_link_enabled(&self, ctx: &Context<'_>, enabled: bool) -> Result<HelpdeskLink> {
        core(ctx).helpdesk().set_enabled(&caller(ctx)?, enabled).await.graphql().map(Into::into)
    }

    /// Which chats become tickets, their status (`OPEN` or `CLOSED`), and
    /// which recent tickets agents see.
    async fn set_chat_to_ticket_rule(
        &self,
        ctx: &Context<'_>,
        rule: ChatToTicketRule,
        ticket_status: TicketStatus,
        recent_tickets: RecentTicketsScope,
    ) -> Result<HelpdeskLink> {
        let (caller, helpdesk) = (caller(ctx)?, core(ctx).helpdesk());
        let link = helpdesk.set_rule(&caller, rule.into(), ticket_status.into(), recent_tickets.into()).await;
        link.graphql().map(Into::into)
    }

    /// Maps a chat-side department: `DEPARTMENT` with `helpdeskDepartmentId`
    /// of the linked portal, or `NONE`, `VIEW_ONLY`, `CHOOSE_AS_NEEDED`.
    async fn set_department_mapping(
        &self,
        ctx: &Context<'_>,
        department_id: ID,
        mode: MappingMode,
        helpdesk_department_id: Option<ID>,
    ) -> Result<HelpdeskLink> {
        let department_id = DepartmentId::parse(&department_id).graphql()?;
        let mapping = match mode {
            MappingMode::Department => {
                let id = helpdesk_department_id.ok_or_else(|| {
                    madoguchi_core::Error::invalid_argument("helpdeskDepartmentId is required with DEPARTMENT")
                });
                Mapping::Department(id.and_then(|id| DepartmentId::parse(&id)).graphql()?)
            }
            MappingMode::None => Mapping::None,
            MappingMode::ViewOnly => Mapping::ViewOnly,
            MappingMode::ChooseAsNeeded => Mapping::ChooseAsNeeded,
        };
        core(ctx).helpdesk().set_mapping(&caller(ctx)?, department_id, mapping).await.graphql().map(Into::into)
    }
}

mirror_enum!(TicketPriority, kinds::TicketPriority { High, Medium, Low });

/// What the helpdesk knows of a chat's visitor.
#[derive(SimpleObject, Debug)]
pub struct DeskInformation {
    /// The portal whose contact this is.
    pub portal_name: String,
    pub contact_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub account_name: Option<String>,
    pub sla_name: Option<String>,
    pub contract_name: Option<String>,
    pub owner_name: Option<String>,
}

/// A helpdesk ticket.
#[derive(SimpleObject, Debug)]
pub struct Ticket {
    pub id: ID,
    /// The helpdesk portal it belongs to.
    pub portal_name: String,
    pub number: i64,
    pub subject: String,
    /// For tickets made from chats, the transcript.
    pub description: Option<String>,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub classification: Option<String>,
    pub department_id: Option<ID>,
    pub email: Option<String>,
    /// The chats that became or joined it.
    pub chat_ids: Vec<ID>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<tickets::Ticket> for Ticket {
    fn from(ticket: tickets::Ticket) -> Self {
        Self {
            id: ticket.id.to_string().into(),
            portal_name: ticket.portal_name,
            number: ticket.number,
            subject: ticket.subject,
            description: ticket.description,
            status: ticket.status.into(),
            priority: ticket.priority.into(),
            classification: ticket.classification,
            department_id: ticket.department_id.map(|id| id.to_string().into()),
            email: ticket.email,
            chat_ids: ticket.chat_ids.into_iter().map(|id| id.to_string().into()).collect(),
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
        }
    }
}

/// An agent's comment on a ticket.
#[derive(SimpleObject, Debug)]
pub struct TicketComment {
    pub id: ID,
    /// The portal of the author's organization.
    pub author_portal_name: String,
    pub author_agent_id: Option<ID>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl From<tickets::Comment> for TicketComment {
    fn from(comment: tickets::Comment) -> Self {
        Self {
            id: comment.id.to_string().into(),
            author_portal_name: comment.author_portal_name,
            author_agent_id: comment.author_agent_id.map(|id| id.to_string().into()),
            body: comment.body,
            created_at: comment.created_at,
        }
    }
}

/// What the agent chooses when converting a chat; taken where the chat's
/// department maps as `CHOOSE_AS_NEEDED` (a mapped department decides them
/// otherwise).
#[derive(InputObject, Debug, Default)]
pub struct ConvertChatInput {
    pub subject: Option<String>,
    pub helpdesk_department_id: Option<ID>,
    pub priority: Option<TicketPriority>,
    pub status: Option<TicketStatus>,
    pub classification: Option<String>,
}

fn ticket_id_of(id: &ID) -> madoguchi_core::Result<TicketId> {
    TicketId::parse(id)
}

#[derive(Default, Debug)]
pub struct TicketQuery;

#[Object]
impl TicketQuery {
    /// A ticket the caller reaches (its portal's, or through the helpdesk link).
    async fn ticket(&self, ctx: &Context<'_>, id: ID) -> Result<Ticket> {
        let id = ticket_id_of(&id).graphql()?;
        core(ctx).tickets().get(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// The chat's visitor's recent tickets (by their email), newest first,
    /// of the departments the helpdesk link's setting shows.
    async fn recent_tickets(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        #[graphql(default = 10)] first: u64,
    ) -> Result<Vec<Ticket>> {
        let chat_id = ChatId::parse(&chat_id).graphql()?;
        let found = core(ctx).tickets().recent_for_chat(&caller(ctx)?, chat_id, first).await.graphql()?;
        Ok(found.into_iter().map(Into::into).collect())
    }

    /// The classifications a conversion may choose: the linked portal's
    /// while the link holds, otherwise this organization's own.
    async fn ticket_classifications(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        core(ctx).tickets().classifications(&caller(ctx)?).await.graphql()
    }

    /// What the helpdesk knows of the chat's visitor (account, SLA,
    /// contract, owner); null when the visitor is linked to no contact.
    async fn desk_information(&self, ctx: &Context<'_>, chat_id: ID) -> Result<Option<DeskInformation>> {
        let chat_id = ChatId::parse(&chat_id).graphql()?;
        let found = core(ctx).tickets().desk_information(&caller(ctx)?, chat_id).await.graphql()?;
        Ok(found.map(|desk| DeskInformation {
            portal_name: desk.portal_name,
            contact_name: desk.contact_name,
            email: desk.email,
            phone: desk.phone,
            account_name: desk.account_name,
            sla_name: desk.sla_name,
            contract_name: desk.contract_name,
            owner_name: desk.owner_name,
        }))
    }

    /// A ticket's comments, oldest first.
    async fn ticket_comments(&self, ctx: &Context<'_>, ticket_id: ID) -> Result<Vec<TicketComment>> {
        let id = ticket_id_of(&ticket_id).graphql()?;
        let comments = core(ctx).tickets().comments(&caller(ctx)?, id).await.graphql()?;
        Ok(comments.into_iter().map(Into::into).collect())
    }

    /// Tickets by number, email or subject, newest first.
    async fn search_tickets(
        &self,
        ctx: &Context<'_>,
        text: String,
        #[graphql(default = 20)] first: u64,
    ) -> Result<Vec<Ticket>> {
        let found = core(ctx).tickets().search(&caller(ctx)?, &text, first).await.graphql()?;
        Ok(found.into_iter().map(Into::into).collect())
    }
}

#[derive(Default, Debug)]
pub struct TicketMutation;

#[Object]
impl TicketMutation {
    /// Converts a chat into a ticket of the linked helpdesk portal; needs
    /// the visitor's email (link them to a contact with one first).
    async fn convert_chat_to_ticket(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        #[graphql(default)] input: ConvertChatInput,
    ) -> Result<Ticket> {
        let chat_id = ChatId::parse(&chat_id).graphql()?;
        let command = ConvertChat {
            subject: input.subject,
            helpdesk_department_id: input
                .helpdesk_department_id
                .as_ref()
                .map(|id| DepartmentId::parse(id))
                .transpose()
                .graphql()?,
            priority: input.priority.map(Into::into),
            status: input.status.map(Into::into),
            classification: input.classification,
        };
        core(ctx).tickets().convert_chat(&caller(ctx)?, chat_id, command).await.graphql().map(Into::into)
    }

    /// Merges a chat into an existing ticket: its transcript is appended.
    async fn merge_chat_into_ticket(&self, ctx: &Context<'_>, chat_id: ID, ticket_id: ID) -> Result<Ticket> {
        let (chat_id, ticket_id) = (ChatId::parse(&chat_id).graphql()?, ticket_id_of(&ticket_id).graphql()?);
        core(ctx).tickets().merge_chat(&caller(ctx)?, chat_id, ticket_id).await.graphql().map(Into::into)
    }

    /// Comments on a ticket (not where the mapping is `VIEW_ONLY`).
    async fn comment_on_ticket(&self, ctx: &Context<'_>, ticket_id: ID, body: String) -> Result<TicketComment> {
        let (id, body) = (ticket_id_of(&ticket_id).graphql()?, CommentText::parse(&body).graphql()?);
        core(ctx).tickets().comment(&caller(ctx)?, id, body).await.graphql().map(Into::into)
    }

    /// Replaces this portal's ticket classifications (admins): 1 to 100
    /// distinct names, in the order agents see them.
    async fn set_ticket_classifications(&self, ctx: &Context<'_>, names: Vec<String>) -> Result<Vec<String>> {
        core(ctx).tickets().set_classifications(&caller(ctx)?, &names).await.graphql()
    }

    /// Reopens, closes or otherwise moves a ticket.
    async fn set_ticket_status(&self, ctx: &Context<'_>, id: ID, status: TicketStatus) -> Result<Ticket> {
        let id = ticket_id_of(&id).graphql()?;
        core(ctx).tickets().set_status(&caller(ctx)?, id, status.into()).await.graphql().map(Into::into)
    }
}
