//! Tickets: a helpdesk portal's, made from chats on the chat side that links
//! to it (or on the portal itself). Which tickets a caller reaches — its own
//! portal's, or through an enabled link as the department mapping says — is
//! decided in one place, [`Tickets::scopes`], and every use case asks it.

use chrono::{DateTime, Utc};
use madoguchi_entity::{
    channels, chats, contacts, department_mappings, departments, end_users, helpdesk_links, messages, organizations,
    ticket_chats, ticket_classifications, ticket_comments, tickets, zsc_keys,
};
use sea_orm::sea_query::{BinOper, Expr, ExprTrait, Func, LockType};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;

use crate::Core;
use crate::auth::{Caller, Permission};
use crate::bounds;
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{ChannelId, ChatId, DepartmentId, OrganizationId, TicketId};
use crate::kinds::{ChatToTicketRule, MappingMode, MessageDirection, RecentTicketsScope, TicketPriority, TicketStatus};

/// A ticket as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticket {
    pub id: TicketId,
    /// The helpdesk portal it belongs to.
    pub portal_name: String,
    pub number: i64,
    pub subject: String,
    pub description: Option<String>,
    pub status: TicketStatus,
    pub priority: TicketPriority,
    pub classification: Option<String>,
    pub department_id: Option<DepartmentId>,
    pub email: Option<String>,
    pub chat_ids: Vec<ChatId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the helpdesk knows of a chat's visitor.
#[derive(Clone, Debug, PartialEq)]
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

impl DeskInformation {
    fn of(contact: contacts::Model, portal_name: String) -> Self {
        Self {
            portal_name,
            contact_name: contact.name,
            email: contact.email,
            phone: contact.phone,
            account_name: contact.account_name,
            sla_name: contact.sla_name,
            contract_name: contact.contract_name,
            owner_name: contact.owner_name,
        }
    }
}

/// The chat's end user, and the contact they are linked to, if any.
async fn visitor(
    db: &impl sea_orm::ConnectionTrait,
    chat: &chats::Model,
) -> Result<(end_users::Model, Option<contacts::Model>)> {
    let user =
        end_users::Entity::find_by_id(chat.end_user_id).one(db).await?.ok_or_else(|| Error::not_found("end user"))?;
    let contact = match user.contact_id {
        Some(id) => contacts::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    Ok((user, contact))
}

/// A portal's classifications, in the admin's order.
async fn classification_names(db: &impl sea_orm::ConnectionTrait, portal: uuid::Uuid) -> Result<Vec<String>> {
    Ok(ticket_classifications::Entity::find()
        .filter(ticket_classifications::Column::OrganizationId.eq(portal))
        .order_by_asc(ticket_classifications::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.name)
        .collect())
}

/// An agent's comment on a ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: uuid::Uuid,
    pub ticket_id: TicketId,
    /// The portal of the author's organization.
    pub author_portal_name: String,
    pub author_agent_id: Option<crate::ids::AgentId>,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A comment's text: 1 to 10,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentText(String);

impl CommentText {
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::invalid_argument("a comment cannot be empty"));
        }
        if text.chars().count() > 10_000 {
            return Err(Error::invalid_argument("a comment may be at most 10,000 characters"));
        }
        Ok(Self(text.to_owned()))
    }
}

/// Converting a chat: what the agent chose. Department, priority, status
/// and classification are taken only where the chat's department maps as
/// `CHOOSE_AS_NEEDED`; a mapped department decides them otherwise.
#[derive(Clone, Debug, Default)]
pub struct ConvertChat {
    pub subject: Option<String>,
    pub helpdesk_department_id: Option<DepartmentId>,
    pub priority: Option<TicketPriority>,
    pub status: Option<TicketStatus>,
    pub classification: Option<String>,
}

/// A ticket about to be written, made from `chat`.
struct NewTicket<'a> {
    portal: uuid::Uuid,
    chat: &'a chats::Model,
    subject: String,
    transcript: String,
    status: TicketStatus,
    priority: TicketPriority,
    classification: Option<String>,
    department: Option<uuid::Uuid>,
    email: Option<String>,
    contact_id: Option<uuid::Uuid>,
    /// Set for automatic conversions: unique, so each window converts once.
    conversion_key: Option<String>,
}

/// The chat side's link while the portal still accepts it: enabled, the
/// portal not disabled, and — unless it is the organization's own portal —
/// linked with the portal's current ZSC key (rotating the key cuts links
/// made with the old one). Returns the link and the portal's id.
pub(crate) async fn live_link(
    db: &impl sea_orm::ConnectionTrait,
    core: &Core,
    organization_id: OrganizationId,
) -> Result<Option<(helpdesk_links::Model, uuid::Uuid)>> {
    let Some(link) = helpdesk_links::Entity::find()
        .filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
        .filter(helpdesk_links::Column::Enabled.eq(true))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(portal) = link.helpdesk_organization_id else { return Ok(None) };
    let active = organizations::Entity::find_by_id(portal)
        .filter(organizations::Column::DisabledAt.is_null())
        .one(db)
        .await?
        .is_some();
    if !active {
        return Ok(None);
    }
    if portal == organization_id.uuid() {
        return Ok(Some((link, portal)));
    }
    let Ok(key) = crate::helpdesk::open_link_key(core, organization_id, &link.zsc_key) else { return Ok(None) };
    let current = zsc_keys::Entity::find()
        .filter(zsc_keys::Column::OrganizationId.eq(portal))
        .filter(zsc_keys::Column::Digest.eq(crate::helpdesk::digest(key.expose())))
        .filter(zsc_keys::Column::RevokedAt.is_null())
        .one(db)
        .await?;
    Ok(current.map(|_| (link, portal)))
}

/// Which tickets of one portal a caller reaches.
#[derive(Clone, Debug, PartialEq)]
struct Scope {
    portal: uuid::Uuid,
    portal_name: String,
    /// `None`: every department's.
    readable: Option<Vec<uuid::Uuid>>,
    writable: Option<Vec<uuid::Uuid>>,
    /// Which of a visitor's recent tickets agents see beside a chat.
    recent: Option<Vec<uuid::Uuid>>,
}

impl Scope {
    fn reads(&self, department: Option<uuid::Uuid>) -> bool {
        reaches(&self.readable, department)
    }

    fn writes(&self, department: Option<uuid::Uuid>) -> bool {
        reaches(&self.writable, department)
    }
}

fn reaches(departments: &Option<Vec<uuid::Uuid>>, department: Option<uuid::Uuid>) -> bool {
    match departments {
        None => true,
        Some(departments) => department.is_some_and(|department| departments.contains(&department)),
    }
}

/// Ticket use cases.
#[derive(Debug, Clone, Copy)]
pub struct Tickets<'a> {
    core: &'a Core,
}

impl<'a> Tickets<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// The one rule for reaching tickets: the caller's own portal's, all of
    /// them; and, through an enabled link, the linked portal's — of the
    /// helpdesk departments mapped from a chat-side department, or of every
    /// department when any maps as `VIEW_ONLY` or `CHOOSE_AS_NEEDED` (the
    /// seed's note); written only through `DEPARTMENT` and
    /// `CHOOSE_AS_NEEDED` mappings. `NONE` reaches nothing.
    async fn scopes(&self, caller: &Caller) -> Result<Vec<Scope>> {
        let organization_id = caller.organization_id().uuid();
        let own = organizations::Entity::find_by_id(organization_id)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("organization"))?;
        let mut scopes =
            vec![Scope { portal: own.id, portal_name: own.portal_name, readable: None, writable: None, recent: None }];
        let Some((link, portal)) = live_link(self.core.db(), self.core, caller.organization_id()).await? else {
            return Ok(scopes);
        };
        if portal == organization_id {
            return Ok(scopes);
        }
        let rows = department_mappings::Entity::find()
            .filter(department_mappings::Column::LinkId.eq(link.id))
            .all(self.core.db())
            .await?;
        // An agent reaches through the departments of the channels they
        // work on; admins and API keys through every department.
        let departments: Vec<uuid::Uuid> = match self.core.channels().visible_channel_ids(caller).await? {
            Some(channels) => channels::Entity::find()
                .filter(channels::Column::Id.is_in(channels.into_iter().map(ChannelId::uuid)))
                .all(self.core.db())
                .await?
                .into_iter()
                .map(|channel| channel.department_id)
                .collect(),
            None => departments::Entity::find()
                .filter(departments::Column::OrganizationId.eq(organization_id))
                .all(self.core.db())
                .await?
                .into_iter()
                .map(|department| department.id)
                .collect(),
        };
        let (mut modes, mut mapped) = (Vec::new(), Vec::new());
        for department in departments {
            match rows.iter().find(|row| row.department_id == department) {
                Some(row) => {
                    modes.push(MappingMode::parse(&row.mode)?);
                    mapped.extend(row.helpdesk_department_id);
                }
                // Added with no same-name match: as conversion treats it.
                None => modes.push(MappingMode::ChooseAsNeeded),
            }
        }
        let readable = if modes.iter().any(|mode| matches!(mode, MappingMode::ViewOnly | MappingMode::ChooseAsNeeded)) {
            None
        } else {
            Some(mapped.clone())
        };
        let writable = if modes.contains(&MappingMode::ChooseAsNeeded) { None } else { Some(mapped) };
        // Recent tickets: of every department by the link's setting — unless
        // every department the caller works through maps as NONE.
        let recent = match RecentTicketsScope::parse(&link.recent_tickets_scope)? {
            RecentTicketsScope::AllDepartments if modes.iter().any(|mode| *mode != MappingMode::None) => None,
            RecentTicketsScope::AllDepartments => Some(Vec::new()),
            RecentTicketsScope::MappedOnly => readable.clone(),
        };
        scopes.push(Scope { portal, portal_name: link.helpdesk_portal_name, readable, writable, recent });
        Ok(scopes)
    }

    /// Converts a chat into a ticket of the linked helpdesk portal (or of
    /// the caller's own portal when there is no link), as the chat's
    /// department mapping says. Needs the visitor's email: link the visitor
    /// to a contact with one first.
    pub async fn convert_chat(&self, caller: &Caller, chat_id: ChatId, command: ConvertChat) -> Result<Ticket> {
        caller.require(Permission::WriteTickets)?;
        // The ticket carries the chat's transcript.
        caller.require(Permission::ReadChats)?;
        let chat = self.core.chats().visible(caller, chat_id).await?;
        let organization_id = caller.organization_id();
        let link = helpdesk_links::Entity::find()
            .filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?;
        if let Some(link) = &link
            && link.enabled
            && live_link(self.core.db(), self.core, organization_id).await?.is_none()
        {
            return Err(Error::failed_precondition(
                "the helpdesk portal no longer accepts this link (its ZSC key was rotated, or it is disabled): link again",
            ));
        }
        let (portal, department, chosen) = match &link {
            Some(link) if !link.enabled => {
                return Err(Error::failed_precondition("the helpdesk link is disabled"));
            }
            Some(link) => {
                let portal = link
                    .helpdesk_organization_id
                    .ok_or_else(|| Error::failed_precondition("the linked helpdesk portal no longer exists"))?;
                let mapping =
                    department_mappings::Entity::find_by_id((link.id, chat.department_id)).one(self.core.db()).await?;
                let mode = match &mapping {
                    Some(mapping) => MappingMode::parse(&mapping.mode)?,
                    None => MappingMode::ChooseAsNeeded,
                };
                match mode {
                    MappingMode::Department => {
                        (portal, mapping.and_then(|mapping| mapping.helpdesk_department_id), false)
                    }
                    MappingMode::ChooseAsNeeded => {
                        (portal, command.helpdesk_department_id.map(DepartmentId::uuid), true)
                    }
                    MappingMode::None | MappingMode::ViewOnly => {
                        return Err(Error::permission_denied(format!(
                            "the chat's department maps as {}: it makes no tickets",
                            mode.as_str()
                        )));
                    }
                }
            }
            // Not linked: the organization is its own helpdesk.
            None => (organization_id.uuid(), command.helpdesk_department_id.map(DepartmentId::uuid), true),
        };
        if let Some(department) = department {
            self.core
                .organizations()
                .find_department(OrganizationId::from(portal), DepartmentId::from(department))
                .await
                .map_err(|error| match error.code() {
                    crate::ErrorCode::NotFound if chosen => {
                        Error::invalid_argument("that department is not in the helpdesk portal")
                    }
                    crate::ErrorCode::NotFound => Error::failed_precondition(
                        "the department mapping points at a department the helpdesk portal no longer has",
                    ),
                    _ => error,
                })?;
        }
        let status = match (chosen, command.status) {
            (true, Some(status)) => status,
            _ => link
                .as_ref()
                .map_or(Ok(TicketStatus::Open), |link| TicketStatus::parse(&link.ticket_status_on_create))?,
        };
        let priority = if chosen { command.priority.unwrap_or(TicketPriority::Medium) } else { TicketPriority::Medium };
        let classification = if chosen { command.classification.clone() } else { None };
        if let Some(classification) = &classification {
            let names = classification_names(self.core.db(), portal).await?;
            if !names.iter().any(|name| name == classification) {
                return Err(Error::invalid_field("classification", "not one of the helpdesk portal's classifications"));
            }
        }
        let (user, contact) = visitor(self.core.db(), &chat).await?;
        let email = contact.as_ref().and_then(|contact| contact.email.clone()).ok_or_else(|| {
            Error::failed_precondition("the visitor has no email: link them to a contact with an email first")
        })?;
        let visitor = contact.map(|contact| contact.name).or(user.display_name).unwrap_or(user.external_id);
        let subject = match command.subject.as_deref().map(str::trim) {
            Some("") => return Err(Error::invalid_argument("the subject is empty")),
            Some(subject) if subject.chars().count() > 255 => {
                return Err(Error::invalid_argument("the subject is longer than 255 characters"));
            }
            Some(subject) => subject.to_owned(),
            None => format!("Chat with {visitor}"),
        };
        let transcript = self.transcript(chat.id, &visitor, None).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let ticket = NewTicket {
            portal,
            chat: &chat,
            subject,
            transcript,
            status,
            priority,
            classification,
            department,
            email: Some(email),
            contact_id: user.contact_id.filter(|_| portal == organization_id.uuid()),
            conversion_key: None,
        };
        let id = self.create_in(&mut write, ticket, now).await?;
        write.commit().await?;
        self.get(caller, id.into()).await
    }

    /// Turns a chat's ended ticket window — its messages from `from` to `to`
    /// — into a ticket when the rules say so (the README's decision table):
    /// through a live helpdesk link, if its rule takes the chat (attended or
    /// not) and its department mapping makes tickets; with no link at all,
    /// into the organization's own portal, only when the channel's
    /// auto-ticket timer ended the window. Once per window: the
    /// `conversion_key` is unique. Returns the ticket's number, if one was made.
    pub(crate) async fn convert_window(
        &self,
        lease: &crate::jobs::Lease,
        chat_id: ChatId,
        window: (DateTime<Utc>, DateTime<Utc>),
        attended: bool,
        by_timer: bool,
    ) -> Result<Option<i64>> {
        let db = self.core.db();
        let Some(chat) = chats::Entity::find_by_id(chat_id.uuid()).one(db).await? else { return Ok(None) };
        let organization_id = OrganizationId::from(chat.organization_id);
        let linked = helpdesk_links::Entity::find()
            .filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
            .one(db)
            .await?
            .is_some();
        let (portal, department, status) = if !linked {
            if !by_timer {
                return Ok(None);
            }
            (organization_id.uuid(), Some(chat.department_id), TicketStatus::Open)
        } else {
            // A disabled link, or one the portal no longer accepts, makes none.
            let Some((link, portal)) = live_link(db, self.core, organization_id).await? else { return Ok(None) };
            let wanted = match ChatToTicketRule::parse(&link.auto_ticket_rule)? {
                ChatToTicketRule::AllVisitors => true,
                ChatToTicketRule::Attended => attended,
                ChatToTicketRule::Missed => !attended,
                ChatToTicketRule::None => false,
            };
            if !wanted {
                return Ok(None);
            }
            let mapping = department_mappings::Entity::find_by_id((link.id, chat.department_id)).one(db).await?;
            let department = match &mapping {
                None => None,
                Some(mapping) => match MappingMode::parse(&mapping.mode)? {
                    MappingMode::Department => mapping.helpdesk_department_id,
                    // No agent is there to choose: the portal's unassigned tickets.
                    MappingMode::ChooseAsNeeded => None,
                    MappingMode::None | MappingMode::ViewOnly => return Ok(None),
                },
            };
            (portal, department, TicketStatus::parse(&link.ticket_status_on_create)?)
        };
        let (user, contact) = visitor(db, &chat).await?;
        let email = contact.as_ref().and_then(|contact| contact.email.clone());
        let visitor = contact.map(|contact| contact.name).or(user.display_name).unwrap_or(user.external_id);
        let transcript = self.transcript(chat.id, &visitor, Some(window)).await?;
        if transcript.is_empty() {
            return Ok(None);
        }
        let now = self.core.now();
        let mut write = self.core.write().await?.fenced_by(Some(lease));
        let ticket = NewTicket {
            portal,
            chat: &chat,
            subject: format!("Chat with {visitor}"),
            transcript,
            status,
            priority: TicketPriority::Medium,
            classification: None,
            department,
            email,
            contact_id: user.contact_id.filter(|_| portal == organization_id.uuid()),
            conversion_key: Some(format!("auto:{}:{}", chat.id, window.0.timestamp_micros())),
        };
        let id = match self.create_in(&mut write, ticket, now).await {
            Ok(id) => id,
            // Converted already (a timer that fired twice): one ticket.
            Err(error) if error.code() == crate::ErrorCode::Conflict => return Ok(None),
            Err(error) => return Err(error),
        };
        write.commit().await?;
        let number = tickets::Entity::find_by_id(id).one(db).await?.map(|row| row.number);
        Ok(number)
    }

    /// Writes a ticket made from a chat, numbered in its portal, with the
    /// chat in its thread and its events.
    async fn create_in(&self, write: &mut Write<'_>, ticket: NewTicket<'_>, now: DateTime<Utc>) -> Result<uuid::Uuid> {
        let NewTicket { portal, chat, .. } = ticket;
        let organization_id = chat.organization_id;
        let id = uuid::Uuid::now_v7();
        // One lock order: both organizations' rows (the portal's counter, and
        // the event sequences the commit advances) in id order, before
        // anything else, so conversions across mutual links never deadlock.
        let mut rows = vec![portal, organization_id];
        rows.sort_unstable();
        rows.dedup();
        for row in rows {
            organizations::Entity::update_many()
                .col_expr(organizations::Column::TicketSeq, Expr::col(organizations::Column::TicketSeq))
                .filter(organizations::Column::Id.eq(row))
                .exec(&**write)
                .await?;
        }
        // The portal's row is the counter: the update holds it until commit,
        // so concurrent conversions number one after another.
        organizations::Entity::update_many()
            .col_expr(organizations::Column::TicketSeq, Expr::col(organizations::Column::TicketSeq).add(1))
            .filter(organizations::Column::Id.eq(portal))
            .exec(&**write)
            .await?;
        let number = organizations::Entity::find_by_id(portal)
            .one(&**write)
            .await?
            .ok_or_else(|| Error::not_found("helpdesk portal"))?
            .ticket_seq;
        tickets::Entity::insert(tickets::ActiveModel {
            id: Set(id),
            organization_id: Set(portal),
            number: Set(number),
            subject: Set(ticket.subject),
            description: Set(Some(ticket.transcript)),
            status: Set(ticket.status.as_str().into()),
            priority: Set(ticket.priority.as_str().into()),
            classification: Set(ticket.classification),
            department_id: Set(ticket.department),
            contact_id: Set(ticket.contact_id),
            email: Set(ticket.email),
            created_at: Set(now),
            updated_at: Set(now),
            closed_at: Set((ticket.status == TicketStatus::Closed).then_some(now)),
        })
        .exec_without_returning(&**write)
        .await?;
        ticket_chats::Entity::insert(ticket_chats::ActiveModel {
            ticket_id: Set(id),
            chat_id: Set(chat.id),
            conversion_key: Set(ticket.conversion_key),
            created_at: Set(now),
        })
        .exec_without_returning(&**write)
        .await?;
        let payload = json!({"ticketId": id, "number": number, "status": ticket.status, "chatId": chat.id});
        write.append(portal.into(), NewEvent::new("ticket.created", payload.clone(), now)).await?;
        if portal != organization_id {
            let event = NewEvent::new("chat.converted", payload, now)
                .in_channel(chat.channel_id.into())
                .in_chat(chat.id.into());
            write.append(organization_id.into(), event).await?;
        }
        Ok(id)
    }

    /// Merges a chat into a ticket the caller may write: the chat's
    /// transcript is appended to the ticket's description and the chat
    /// joins its thread. A chat joins a ticket once (`CONFLICT` after).
    pub async fn merge_chat(&self, caller: &Caller, chat_id: ChatId, ticket_id: TicketId) -> Result<Ticket> {
        caller.require(Permission::WriteTickets)?;
        let chat = self.core.chats().visible(caller, chat_id).await?;
        let row = self.writable(caller, ticket_id).await?;
        let (user, _) = visitor(self.core.db(), &chat).await?;
        let visitor = user.display_name.unwrap_or(user.external_id);
        let transcript = self.transcript(chat.id, &visitor, None).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // The primary key (ticket, chat) settles a chat merged twice at once.
        ticket_chats::Entity::insert(ticket_chats::ActiveModel {
            ticket_id: Set(row.id),
            chat_id: Set(chat.id),
            conversion_key: Set(None),
            created_at: Set(now),
        })
        .exec_without_returning(&*write)
        .await
        .map_err(|error| match Error::from(error) {
            error if error.code() == crate::ErrorCode::Conflict => {
                Error::conflict("the chat is already in this ticket")
            }
            error => error,
        })?;
        // Appended in the database, so two merges at once both land.
        let addition = format!("\n\n--- chat merged {} ---\n{transcript}", now.format("%Y-%m-%d %H:%M:%S"));
        tickets::Entity::update_many()
            .col_expr(
                tickets::Column::Description,
                Expr::from(Func::coalesce([Expr::col(tickets::Column::Description), Expr::value("")]))
                    .binary(BinOper::Custom("||"), Expr::value(addition)),
            )
            .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
            .filter(tickets::Column::Id.eq(row.id))
            .exec(&*write)
            .await?;
        let payload = json!({"ticketId": row.id, "number": row.number, "chatId": chat.id});
        write.append(row.organization_id.into(), NewEvent::new("ticket.chat_merged", payload, now)).await?;
        write.commit().await?;
        self.get(caller, ticket_id).await
    }

    /// Returns a ticket the caller reaches.
    pub async fn get(&self, caller: &Caller, id: TicketId) -> Result<Ticket> {
        caller.require(Permission::ReadTickets)?;
        let (row, scope) = self.reachable(caller, id).await?;
        self.ticket(row, &scope.portal_name).await
    }

    /// Finds tickets the caller reaches by number, email or subject (which
    /// names the visitor for tickets made from chats), newest first.
    pub async fn search(&self, caller: &Caller, text: &str, limit: u64) -> Result<Vec<Ticket>> {
        caller.require(Permission::ReadTickets)?;
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::invalid_argument("give something to search for"));
        }
        bounds::short_text("text", text)?;
        let pattern = format!("%{}%", text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        // Lower-cased on both sides: SQLite's LIKE ignores ASCII case and
        // PostgreSQL's does not.
        let pattern = pattern.to_lowercase();
        let like = |column: tickets::Column| {
            Expr::from(Func::lower(Expr::col(column))).like(sea_orm::sea_query::LikeExpr::new(&pattern).escape('\\'))
        };
        let mut matches = Condition::any().add(like(tickets::Column::Email)).add(like(tickets::Column::Subject));
        if let Ok(number) = text.trim_start_matches('#').parse::<i64>() {
            matches = matches.add(tickets::Column::Number.eq(number));
        }
        let mut found = Vec::new();
        for scope in self.scopes(caller).await? {
            let mut query = tickets::Entity::find()
                .filter(tickets::Column::OrganizationId.eq(scope.portal))
                .filter(matches.clone())
                .order_by_desc(tickets::Column::Number)
                .limit(limit.clamp(1, 100));
            if let Some(departments) = &scope.readable {
                query = query.filter(tickets::Column::DepartmentId.is_in(departments.clone()));
            }
            for row in query.all(self.core.db()).await? {
                found.push(self.ticket(row, &scope.portal_name).await?);
            }
        }
        found.sort_by_key(|ticket| std::cmp::Reverse(ticket.created_at));
        found.truncate(limit.clamp(1, 100) as usize);
        Ok(found)
    }

    /// The chat's visitor's recent tickets (by their contact's email), newest
    /// first: of the linked portal's departments the link's setting says
    /// (every one, or only mapped ones), and of the caller's own portal.
    pub async fn recent_for_chat(&self, caller: &Caller, chat_id: ChatId, limit: u64) -> Result<Vec<Ticket>> {
        caller.require(Permission::ReadTickets)?;
        caller.require(Permission::ReadChats)?;
        let chat = self.core.chats().visible(caller, chat_id).await?;
        let (_, contact) = visitor(self.core.db(), &chat).await?;
        let Some(email) = contact.and_then(|contact| contact.email) else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        for scope in self.scopes(caller).await? {
            let mut query = tickets::Entity::find()
                .filter(tickets::Column::OrganizationId.eq(scope.portal))
                .filter(Expr::from(Func::lower(Expr::col(tickets::Column::Email))).eq(email.to_lowercase()))
                .order_by_desc(tickets::Column::Number)
                .limit(limit.clamp(1, 50));
            if let Some(departments) = &scope.recent {
                query = query.filter(tickets::Column::DepartmentId.is_in(departments.clone()));
            }
            for row in query.all(self.core.db()).await? {
                found.push(self.ticket(row, &scope.portal_name).await?);
            }
        }
        found.sort_by_key(|ticket| std::cmp::Reverse(ticket.created_at));
        found.truncate(limit.clamp(1, 50) as usize);
        Ok(found)
    }

    /// The classifications agents choose from when converting a chat: the
    /// list of the portal conversions go to (the linked one, while the link
    /// holds; otherwise the caller's own), in the admin's order.
    pub async fn classifications(&self, caller: &Caller) -> Result<Vec<String>> {
        caller.require(Permission::ReadTickets)?;
        let organization_id = caller.organization_id();
        let portal = match live_link(self.core.db(), self.core, organization_id).await? {
            Some((_, portal)) => portal,
            None => organization_id.uuid(),
        };
        classification_names(self.core.db(), portal).await
    }

    /// Replaces the caller's portal's classifications (helpdesk admins):
    /// 1 to 100 distinct names, each 1 to 100 characters, in this order.
    /// Existing tickets keep theirs.
    pub async fn set_classifications(&self, caller: &Caller, names: &[String]) -> Result<Vec<String>> {
        caller.require(Permission::ManageHelpdesk)?;
        let names: Vec<String> = names.iter().map(|name| name.trim().to_owned()).collect();
        if names.is_empty() || names.len() > 100 {
            return Err(Error::invalid_field("names", "1 to 100 classifications"));
        }
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() || name.chars().count() > 100 {
                return Err(Error::invalid_field(format!("names[{index}]"), "1 to 100 characters"));
            }
            if names[..index].iter().any(|other| other.to_lowercase() == name.to_lowercase()) {
                return Err(Error::invalid_field(format!("names[{index}]"), format!("{name:?} is listed twice")));
            }
        }
        let portal = caller.organization_id();
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // Replacements of one portal's list queue on its organization's row
        // (a lock nothing takes before it): two at once would each delete
        // only the rows they saw and leave both lists.
        organizations::Entity::find_by_id(portal.uuid()).lock(LockType::NoKeyUpdate).one(&*write).await?;
        ticket_classifications::Entity::delete_many()
            .filter(ticket_classifications::Column::OrganizationId.eq(portal.uuid()))
            .exec(&*write)
            .await?;
        let rows = names.iter().enumerate().map(|(index, name)| ticket_classifications::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(portal.uuid()),
            name: Set(name.clone()),
            // The admin's order, kept by the creation times.
            created_at: Set(now + chrono::Duration::microseconds(index as i64)),
        });
        ticket_classifications::Entity::insert_many(rows).exec_without_returning(&*write).await?;
        write.append(portal, NewEvent::new("helpdesk.classifications_updated", json!({"names": names}), now)).await?;
        write.commit().await?;
        classification_names(self.core.db(), portal.uuid()).await
    }

    /// What the helpdesk knows of the chat's visitor, shown beside the chat
    /// (the seed's "Desk information"): the contact with the visitor's email
    /// in the linked portal, while the link holds and the caller's mapping
    /// reaches any of its tickets; otherwise the visitor's own contact.
    /// `None` when the visitor is linked to no contact.
    pub async fn desk_information(&self, caller: &Caller, chat_id: ChatId) -> Result<Option<DeskInformation>> {
        caller.require(Permission::ReadTickets)?;
        caller.require(Permission::ReadChats)?;
        let chat = self.core.chats().visible(caller, chat_id).await?;
        let db = self.core.db();
        let (_, contact) = visitor(db, &chat).await?;
        let Some(own) = contact else { return Ok(None) };
        if let Some(email) = own.email.clone() {
            for scope in self.scopes(caller).await? {
                let reaches_any = !matches!(&scope.recent, Some(departments) if departments.is_empty());
                if scope.portal == chat.organization_id || !reaches_any {
                    continue;
                }
                let theirs = contacts::Entity::find()
                    .filter(contacts::Column::OrganizationId.eq(scope.portal))
                    .filter(Expr::from(Func::lower(Expr::col(contacts::Column::Email))).eq(email.to_lowercase()))
                    .one(db)
                    .await?;
                if let Some(contact) = theirs {
                    return Ok(Some(DeskInformation::of(contact, scope.portal_name)));
                }
            }
        }
        let portal = organizations::Entity::find_by_id(chat.organization_id)
            .one(db)
            .await?
            .map(|organization| organization.portal_name)
            .unwrap_or_default();
        Ok(Some(DeskInformation::of(own, portal)))
    }

    /// Comments on a ticket the caller may write (a `VIEW_ONLY` mapping
    /// comments on none).
    pub async fn comment(&self, caller: &Caller, id: TicketId, body: CommentText) -> Result<Comment> {
        caller.require(Permission::WriteTickets)?;
        let row = self.writable(caller, id).await?;
        let now = self.core.now();
        let comment_id = uuid::Uuid::now_v7();
        let mut write = self.core.write().await?;
        ticket_comments::Entity::insert(ticket_comments::ActiveModel {
            id: Set(comment_id),
            organization_id: Set(row.organization_id),
            ticket_id: Set(row.id),
            author_organization_id: Set(caller.organization_id().uuid()),
            author_agent_id: Set(caller.agent().map(|agent| agent.agent_id.uuid())),
            body: Set(body.0),
            created_at: Set(now),
        })
        .exec_without_returning(&*write)
        .await?;
        let payload = json!({"ticketId": row.id, "number": row.number, "commentId": comment_id});
        write.append(row.organization_id.into(), NewEvent::new("ticket.commented", payload, now)).await?;
        write.commit().await?;
        let comments = self.comments(caller, id).await?;
        comments.into_iter().find(|comment| comment.id == comment_id).ok_or_else(|| Error::not_found("comment"))
    }

    /// A ticket's comments, oldest first, for whoever reaches the ticket.
    pub async fn comments(&self, caller: &Caller, id: TicketId) -> Result<Vec<Comment>> {
        self.get(caller, id).await?;
        let rows = ticket_comments::Entity::find()
            .filter(ticket_comments::Column::TicketId.eq(id.uuid()))
            .order_by_asc(ticket_comments::Column::CreatedAt)
            .order_by_asc(ticket_comments::Column::Id)
            .all(self.core.db())
            .await?;
        let authors: Vec<uuid::Uuid> = rows.iter().map(|row| row.author_organization_id).collect();
        let portals =
            organizations::Entity::find().filter(organizations::Column::Id.is_in(authors)).all(self.core.db()).await?;
        Ok(rows
            .into_iter()
            .map(|row| Comment {
                id: row.id,
                ticket_id: row.ticket_id.into(),
                author_portal_name: portals
                    .iter()
                    .find(|portal| portal.id == row.author_organization_id)
                    .map(|portal| portal.portal_name.clone())
                    .unwrap_or_default(),
                author_agent_id: row.author_agent_id.map(Into::into),
                body: row.body,
                created_at: row.created_at,
            })
            .collect())
    }

    /// The ticket's row and the scope the caller reaches it through;
    /// `NOT_FOUND` when it reaches none.
    async fn reachable(&self, caller: &Caller, id: TicketId) -> Result<(tickets::Model, Scope)> {
        let row = tickets::Entity::find_by_id(id.uuid())
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("ticket"))?;
        let scope = self
            .scopes(caller)
            .await?
            .into_iter()
            .find(|scope| scope.portal == row.organization_id && scope.reads(row.department_id))
            .ok_or_else(|| Error::not_found("ticket"))?;
        Ok((row, scope))
    }

    /// The ticket's row, if the caller may write it.
    async fn writable(&self, caller: &Caller, id: TicketId) -> Result<tickets::Model> {
        let (row, scope) = self.reachable(caller, id).await?;
        if !scope.writes(row.department_id) {
            return Err(Error::permission_denied(
                "the department mapping lets this organization only view this ticket",
            ));
        }
        Ok(row)
    }

    /// Reopens, closes or otherwise moves a ticket the caller may write.
    pub async fn set_status(&self, caller: &Caller, id: TicketId, status: TicketStatus) -> Result<Ticket> {
        caller.require(Permission::WriteTickets)?;
        let row = self.writable(caller, id).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let closed_at = (status == TicketStatus::Closed).then_some(now);
        // Conditional on the status read: of two agents racing, one moves it.
        let changed = tickets::Entity::update_many()
            .col_expr(tickets::Column::Status, Expr::value(status.as_str()))
            .col_expr(tickets::Column::ClosedAt, Expr::value(closed_at))
            .col_expr(tickets::Column::UpdatedAt, Expr::value(now))
            .filter(tickets::Column::Id.eq(id.uuid()))
            .filter(tickets::Column::Status.eq(row.status.clone()))
            .exec(&*write)
            .await?;
        if changed.rows_affected != 1 {
            return Err(Error::aborted("the ticket changed meanwhile: look at it again"));
        }
        let payload = json!({"ticketId": id, "number": row.number, "status": status});
        write.append(row.organization_id.into(), NewEvent::new("ticket.updated", payload, now)).await?;
        write.commit().await?;
        self.get(caller, id).await
    }

    async fn ticket(&self, row: tickets::Model, portal_name: &str) -> Result<Ticket> {
        let chat_ids = ticket_chats::Entity::find()
            .filter(ticket_chats::Column::TicketId.eq(row.id))
            .order_by_asc(ticket_chats::Column::CreatedAt)
            .all(self.core.db())
            .await?
            .into_iter()
            .map(|link| link.chat_id.into())
            .collect();
        Ok(Ticket {
            id: row.id.into(),
            portal_name: portal_name.to_owned(),
            number: row.number,
            subject: row.subject,
            description: row.description,
            status: TicketStatus::parse(&row.status)?,
            priority: TicketPriority::parse(&row.priority)?,
            classification: row.classification,
            department_id: row.department_id.map(Into::into),
            email: row.email,
            chat_ids,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// The chat's messages as text, oldest first; of the window's, if given.
    async fn transcript(
        &self,
        chat_id: uuid::Uuid,
        visitor: &str,
        window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    ) -> Result<String> {
        let mut query = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat_id))
            .filter(messages::Column::IsPasscode.eq(false));
        if let Some((from, to)) = window {
            query = query.filter(messages::Column::CreatedAt.between(from, to));
        }
        let rows = query
            .order_by_asc(messages::Column::CreatedAt)
            .order_by_asc(messages::Column::Id)
            .all(self.core.db())
            .await?;
        let lines: Vec<String> = rows
            .iter()
            .map(|row| {
                let who = if row.direction == MessageDirection::Inbound.as_str() { visitor } else { "Agent" };
                let what = row.text.clone().unwrap_or_else(|| format!("[{}]", row.kind.to_lowercase()));
                format!("[{}] {who}: {what}", row.created_at.format("%Y-%m-%d %H:%M:%S"))
            })
            .collect();
        Ok(lines.join("\n"))
    }
}
