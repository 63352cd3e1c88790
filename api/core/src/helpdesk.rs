//! The integration between an organization's chats (the chat side) and a
//! helpdesk portal (another organization on this platform, or itself): the
//! helpdesk's ZSC key, the link made with it, the chat-to-ticket rule and
//! the department mapping. Linking is the one place where one tenant names
//! another, so every check of the other side is here: the portal exists and
//! is enabled, the key is its current one, the email is one of its admins.

use chrono::{DateTime, Utc};
use madoguchi_entity::{agents, department_mappings, departments, helpdesk_links, organizations, zsc_keys};
use sea_orm::sea_query::{Expr, LockType, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Core;
use crate::auth::{ALPHANUMERIC, Caller, Email, Permission, Role, random_string};
use crate::error::{Error, ErrorCode, Result};
use crate::events::NewEvent;
use crate::ids::{DepartmentId, OrganizationId};
use crate::kinds::{ChatToTicketRule, MappingMode, RecentTicketsScope, TicketStatus};
use crate::organizations::{PortalName, active_organization_ids};
use crate::secrets::{SealedAt, Secret};

/// What a ZSC key starts with.
const ZSC_TAG: &str = "zsc";

/// A ZSC key as listed: never the secret.
#[derive(Clone, Debug, PartialEq)]
pub struct ZscKey {
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

/// A generated ZSC key: the secret is shown this once.
#[derive(Clone, Debug)]
pub struct GeneratedZscKey {
    pub key: ZscKey,
    pub secret: Secret<String>,
}

/// How to link: the helpdesk admin's email, the portal, and its ZSC key
/// (not needed when the portal is the caller's own).
#[derive(Clone, Debug)]
pub struct LinkHelpdesk {
    pub admin_email: Email,
    pub portal_name: PortalName,
    pub zsc_key: Option<Secret<String>>,
}

/// The chat side's link to a helpdesk portal.
#[derive(Clone, Debug, PartialEq)]
pub struct HelpdeskLink {
    /// The portal it points to, by name and by organization name, so a link
    /// to the wrong portal is visible.
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
#[derive(Clone, Debug, PartialEq)]
pub struct DepartmentMapping {
    pub department_id: DepartmentId,
    pub department_name: String,
    pub mode: MappingMode,
    /// With [`MappingMode::Department`].
    pub helpdesk_department_id: Option<DepartmentId>,
    pub helpdesk_department_name: Option<String>,
}

/// A mapping to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    Department(DepartmentId),
    None,
    ViewOnly,
    ChooseAsNeeded,
}

/// Helpdesk integration use cases.
#[derive(Debug, Clone, Copy)]
pub struct Helpdesk<'a> {
    core: &'a Core,
}

impl<'a> Helpdesk<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Generates the portal's ZSC key (helpdesk admins), revoking the one
    /// before it: rotating is generating again. Shown once.
    pub async fn generate_zsc_key(&self, caller: &Caller) -> Result<GeneratedZscKey> {
        caller.require(Permission::ManageHelpdesk)?;
        let organization_id = caller.organization_id();
        let now = self.core.now();
        let prefix = random_string(ALPHANUMERIC, 8);
        let secret = Secret::new(format!("{ZSC_TAG}_{prefix}_{}", random_string(ALPHANUMERIC, 40)));
        let mut write = self.core.write().await?;
        // The organization's row first: generations one after another, so
        // each revokes the one before and one key stays live.
        organizations::Entity::update_many()
            .col_expr(organizations::Column::TicketSeq, Expr::col(organizations::Column::TicketSeq))
            .filter(organizations::Column::Id.eq(organization_id.uuid()))
            .exec(&*write)
            .await?;
        zsc_keys::Entity::update_many()
            .col_expr(zsc_keys::Column::RevokedAt, Expr::value(now))
            .filter(zsc_keys::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(zsc_keys::Column::RevokedAt.is_null())
            .exec(&*write)
            .await?;
        zsc_keys::Entity::insert(zsc_keys::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(organization_id.uuid()),
            digest: Set(digest(secret.expose())),
            prefix: Set(prefix.clone()),
            created_by_agent_id: Set(caller.agent().map(|agent| agent.agent_id.uuid())),
            created_at: Set(now),
            revoked_at: Set(None),
        })
        .exec_without_returning(&*write)
        .await?;
        write
            .append(organization_id, NewEvent::new("helpdesk.zsc_key_generated", json!({"prefix": prefix}), now))
            .await?;
        write.commit().await?;
        Ok(GeneratedZscKey { key: ZscKey { prefix, created_at: now }, secret })
    }

    /// Links the caller's organization to a helpdesk portal, or points its
    /// link at another (chat-side admins). Each check of the other side
    /// fails with its own message and changes nothing. Same-name
    /// departments are mapped; the others start as `CHOOSE_AS_NEEDED`.
    pub async fn link(&self, caller: &Caller, command: LinkHelpdesk) -> Result<HelpdeskLink> {
        caller.require(Permission::ManageHelpdesk)?;
        let organization_id = caller.organization_id();
        let portal = organizations::Entity::find()
            .filter(organizations::Column::PortalName.eq(command.portal_name.as_str()))
            .filter(organizations::Column::Id.in_subquery(active_organization_ids()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::NotFound,
                    format!("there is no helpdesk portal named {:?}", command.portal_name.as_str()),
                )
            })?;
        let own = portal.id == organization_id.uuid();
        let now = self.core.now();
        let mut write = self.core.write().await?;
        if !own {
            let presented = command
                .zsc_key
                .as_ref()
                .ok_or_else(|| Error::invalid_argument("give the helpdesk portal's ZSC key"))?;
            // A no-op update takes the key's row: a rotation at the same
            // moment waits for this link, or this link sees it revoked.
            let current = zsc_keys::Entity::update_many()
                .col_expr(zsc_keys::Column::Prefix, Expr::col(zsc_keys::Column::Prefix))
                .filter(zsc_keys::Column::OrganizationId.eq(portal.id))
                .filter(zsc_keys::Column::Digest.eq(digest(presented.expose())))
                .filter(zsc_keys::Column::RevokedAt.is_null())
                .exec(&*write)
                .await?;
            if current.rows_affected != 1 {
                return Err(Error::permission_denied(format!(
                    "the ZSC key is not the current key of portal {:?}: ask its admin for the key shown when it \
                     was generated",
                    portal.portal_name
                )));
            }
        }
        let admin = agents::Entity::find()
            .filter(agents::Column::OrganizationId.eq(portal.id))
            .filter(agents::Column::Email.eq(command.admin_email.as_str()))
            .filter(agents::Column::Role.eq(Role::Admin.as_str()))
            .filter(agents::Column::Active.eq(true))
            .one(&*write)
            .await?;
        if admin.is_none() {
            return Err(Error::permission_denied(format!(
                "could not recognise {} as a helpdesk administrator of portal {:?}",
                command.admin_email.as_str(),
                portal.portal_name
            )));
        }
        let previous = helpdesk_links::Entity::find()
            .filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
            .one(&*write)
            .await?;
        let same_portal = previous.as_ref().is_some_and(|link| link.helpdesk_organization_id == Some(portal.id));
        let sealed = command.zsc_key.as_ref().map(|key| self.seal(organization_id, key)).unwrap_or_default();
        helpdesk_links::Entity::insert(helpdesk_links::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(organization_id.uuid()),
            helpdesk_portal_name: Set(portal.portal_name.clone()),
            helpdesk_organization_id: Set(Some(portal.id)),
            admin_email: Set(command.admin_email.as_str().to_owned()),
            zsc_key: Set(sealed),
            enabled: Set(true),
            auto_ticket_rule: Set(ChatToTicketRule::None.as_str().into()),
            ticket_status_on_create: Set(TicketStatus::Open.as_str().into()),
            recent_tickets_scope: Set(RecentTicketsScope::AllDepartments.as_str().into()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        // One link per organization: linking again points it elsewhere.
        .on_conflict(
            OnConflict::column(helpdesk_links::Column::OrganizationId)
                .update_columns([
                    helpdesk_links::Column::HelpdeskPortalName,
                    helpdesk_links::Column::HelpdeskOrganizationId,
                    helpdesk_links::Column::AdminEmail,
                    helpdesk_links::Column::ZscKey,
                    helpdesk_links::Column::Enabled,
                    helpdesk_links::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&*write)
        .await?;
        let link = helpdesk_links::Entity::find()
            .filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
            .one(&*write)
            .await?
            .ok_or_else(|| Error::not_found("helpdesk link"))?;
        // Mapped afresh against a portal it did not point to; linking the
        // same portal again keeps the admin's mappings, adding missing ones.
        if !same_portal {
            department_mappings::Entity::delete_many()
                .filter(department_mappings::Column::LinkId.eq(link.id))
                .exec(&*write)
                .await?;
        }
        let ours = departments_of(&*write, organization_id.uuid()).await?;
        let theirs = departments_of(&*write, portal.id).await?;
        if !ours.is_empty() {
            department_mappings::Entity::insert_many(ours.iter().map(|department| {
                let same_name = theirs.iter().find(|other| other.name == department.name);
                department_mappings::ActiveModel {
                    link_id: Set(link.id),
                    department_id: Set(department.id),
                    mode: Set(match same_name {
                        Some(_) => MappingMode::Department.as_str().into(),
                        None => MappingMode::ChooseAsNeeded.as_str().into(),
                    }),
                    helpdesk_department_id: Set(same_name.map(|other| other.id)),
                    updated_at: Set(now),
                }
            }))
            .on_conflict(
                OnConflict::columns([department_mappings::Column::LinkId, department_mappings::Column::DepartmentId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&*write)
            .await?;
        }
        write
            .append(
                organization_id,
                NewEvent::new("helpdesk.linked", json!({"helpdeskPortalName": portal.portal_name}), now),
            )
            .await?;
        write.commit().await?;
        self.get_link(caller).await
    }

    /// Returns the caller's link with its mappings.
    pub async fn get_link(&self, caller: &Caller) -> Result<HelpdeskLink> {
        caller.require(Permission::ReadOrganization)?;
        let link = self.link_row(caller.organization_id()).await?;
        let portal = match link.helpdesk_organization_id {
            Some(id) => organizations::Entity::find_by_id(id).one(self.core.db()).await?,
            None => None,
        };
        let ours = departments_of(self.core.db(), link.organization_id).await?;
        let theirs = match &portal {
            Some(portal) => departments_of(self.core.db(), portal.id).await?,
            None => Vec::new(),
        };
        let rows = department_mappings::Entity::find()
            .filter(department_mappings::Column::LinkId.eq(link.id))
            .all(self.core.db())
            .await?;
        let mut mappings = Vec::with_capacity(ours.len());
        for department in &ours {
            let row = rows.iter().find(|row| row.department_id == department.id);
            let mode = match row {
                Some(row) => MappingMode::parse(&row.mode)?,
                // Added after the link, with no same-name match then.
                None => MappingMode::ChooseAsNeeded,
            };
            let helpdesk = row
                .and_then(|row| row.helpdesk_department_id)
                .and_then(|id| theirs.iter().find(|other| other.id == id));
            mappings.push(DepartmentMapping {
                department_id: department.id.into(),
                department_name: department.name.clone(),
                mode,
                helpdesk_department_id: helpdesk.map(|other| other.id.into()),
                helpdesk_department_name: helpdesk.map(|other| other.name.clone()),
            });
        }
        Ok(HelpdeskLink {
            helpdesk_portal_name: link.helpdesk_portal_name,
            helpdesk_organization_name: portal.map(|portal| portal.name).unwrap_or_default(),
            admin_email: link.admin_email,
            enabled: link.enabled,
            rule: ChatToTicketRule::parse(&link.auto_ticket_rule)?,
            ticket_status: TicketStatus::parse(&link.ticket_status_on_create)?,
            recent_tickets: RecentTicketsScope::parse(&link.recent_tickets_scope)?,
            mappings,
            updated_at: link.updated_at,
        })
    }

    /// Disables or enables the link (chat-side admins); disabled, no ticket
    /// is made or read through it.
    pub async fn set_enabled(&self, caller: &Caller, enabled: bool) -> Result<HelpdeskLink> {
        caller.require(Permission::ManageHelpdesk)?;
        let link = self.link_row(caller.organization_id()).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let changed = helpdesk_links::Entity::update_many()
            .col_expr(helpdesk_links::Column::Enabled, Expr::value(enabled))
            .col_expr(helpdesk_links::Column::UpdatedAt, Expr::value(now))
            .filter(helpdesk_links::Column::Id.eq(link.id))
            .filter(helpdesk_links::Column::Enabled.eq(!enabled))
            .exec(&*write)
            .await?;
        if changed.rows_affected == 1 {
            let kind = if enabled { "helpdesk.enabled" } else { "helpdesk.disabled" };
            write.append(caller.organization_id(), NewEvent::new(kind, json!({}), now)).await?;
        }
        write.commit().await?;
        self.get_link(caller).await
    }

    /// Sets which chats become tickets, in which status, and which recent
    /// tickets agents see (chat-side admins).
    pub async fn set_rule(
        &self,
        caller: &Caller,
        rule: ChatToTicketRule,
        ticket_status: TicketStatus,
        recent_tickets: RecentTicketsScope,
    ) -> Result<HelpdeskLink> {
        caller.require(Permission::ManageHelpdesk)?;
        if !matches!(ticket_status, TicketStatus::Open | TicketStatus::Closed) {
            return Err(Error::invalid_argument("tickets made from chats are OPEN or CLOSED"));
        }
        let link = self.link_row(caller.organization_id()).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        helpdesk_links::Entity::update_many()
            .col_expr(helpdesk_links::Column::AutoTicketRule, Expr::value(rule.as_str()))
            .col_expr(helpdesk_links::Column::TicketStatusOnCreate, Expr::value(ticket_status.as_str()))
            .col_expr(helpdesk_links::Column::RecentTicketsScope, Expr::value(recent_tickets.as_str()))
            .col_expr(helpdesk_links::Column::UpdatedAt, Expr::value(now))
            .filter(helpdesk_links::Column::Id.eq(link.id))
            .exec(&*write)
            .await?;
        write
            .append(
                caller.organization_id(),
                NewEvent::new("helpdesk.rule_changed", json!({"rule": rule, "ticketStatus": ticket_status}), now),
            )
            .await?;
        write.commit().await?;
        self.get_link(caller).await
    }

    /// Maps one chat-side department (chat-side admins): onto a department
    /// of the linked portal, or `NONE`, `VIEW_ONLY`, `CHOOSE_AS_NEEDED` —
    /// which also undoes an automatic mapping.
    pub async fn set_mapping(
        &self,
        caller: &Caller,
        department_id: DepartmentId,
        mapping: Mapping,
    ) -> Result<HelpdeskLink> {
        caller.require(Permission::ManageHelpdesk)?;
        let organization_id = caller.organization_id();
        self.core.organizations().find_department(organization_id, department_id).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // The link as it stands, locked until this commits against a link
        // to another portal (which replaces the mappings): the department
        // is checked against the portal the link points to when the mapping
        // is written.
        let link = link_of(organization_id).lock(LockType::Share).one(&*write).await?.ok_or_else(not_linked)?;
        let (mode, helpdesk_department_id) = match mapping {
            Mapping::Department(id) => {
                // Only a department of the portal the link points to.
                let portal = link.helpdesk_organization_id.ok_or_else(|| Error::not_found("helpdesk department"))?;
                self.core.organizations().find_department(OrganizationId::from(portal), id).await.map_err(|error| {
                    match error.code() {
                        ErrorCode::NotFound => Error::new(
                            ErrorCode::NotFound,
                            "that department is not in the linked helpdesk portal".to_owned(),
                        ),
                        _ => error,
                    }
                })?;
                (MappingMode::Department, Some(id.uuid()))
            }
            Mapping::None => (MappingMode::None, None),
            Mapping::ViewOnly => (MappingMode::ViewOnly, None),
            Mapping::ChooseAsNeeded => (MappingMode::ChooseAsNeeded, None),
        };
        department_mappings::Entity::insert(department_mappings::ActiveModel {
            link_id: Set(link.id),
            department_id: Set(department_id.uuid()),
            mode: Set(mode.as_str().into()),
            helpdesk_department_id: Set(helpdesk_department_id),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([department_mappings::Column::LinkId, department_mappings::Column::DepartmentId])
                .update_columns([
                    department_mappings::Column::Mode,
                    department_mappings::Column::HelpdeskDepartmentId,
                    department_mappings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&*write)
        .await?;
        write
            .append(
                organization_id,
                NewEvent::new("helpdesk.mapping_changed", json!({"departmentId": department_id, "mode": mode}), now),
            )
            .await?;
        write.commit().await?;
        self.get_link(caller).await
    }

    async fn link_row(&self, organization_id: OrganizationId) -> Result<helpdesk_links::Model> {
        link_of(organization_id).one(self.core.db()).await?.ok_or_else(not_linked)
    }

    fn seal(&self, organization_id: OrganizationId, key: &Secret<String>) -> Vec<u8> {
        self.core.secrets().seal(link_key_at(organization_id), key.expose().as_bytes())
    }
}

/// Maps a department just added, in its transaction: on the chat side onto
/// the linked portal's department of the same name, else
/// `CHOOSE_AS_NEEDED`; on the helpdesk side, every linked chat side's
/// same-name department that is still `CHOOSE_AS_NEEDED` onto it.
pub(crate) async fn map_new_department(
    write: &crate::db::Write<'_>,
    department: &crate::organizations::Department,
    now: DateTime<Utc>,
) -> Result<()> {
    let organization_id = department.organization_id.uuid();
    if let Some(link) = helpdesk_links::Entity::find()
        .filter(helpdesk_links::Column::OrganizationId.eq(organization_id))
        .one(&**write)
        .await?
    {
        let same_name = match link.helpdesk_organization_id {
            Some(portal) => {
                departments::Entity::find()
                    .filter(departments::Column::OrganizationId.eq(portal))
                    .filter(departments::Column::Name.eq(department.name.as_str()))
                    .one(&**write)
                    .await?
            }
            None => None,
        };
        let mode = if same_name.is_some() { MappingMode::Department } else { MappingMode::ChooseAsNeeded };
        department_mappings::Entity::insert(department_mappings::ActiveModel {
            link_id: Set(link.id),
            department_id: Set(department.id.uuid()),
            mode: Set(mode.as_str().into()),
            helpdesk_department_id: Set(same_name.map(|other| other.id)),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([department_mappings::Column::LinkId, department_mappings::Column::DepartmentId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
    }
    let links = helpdesk_links::Entity::find()
        .filter(helpdesk_links::Column::HelpdeskOrganizationId.eq(organization_id))
        .all(&**write)
        .await?;
    for link in links {
        let Some(theirs) = departments::Entity::find()
            .filter(departments::Column::OrganizationId.eq(link.organization_id))
            .filter(departments::Column::Name.eq(department.name.as_str()))
            .one(&**write)
            .await?
        else {
            continue;
        };
        // Only over a mapping nobody chose: an admin's choice stays.
        department_mappings::Entity::update_many()
            .col_expr(department_mappings::Column::Mode, Expr::value(MappingMode::Department.as_str()))
            .col_expr(department_mappings::Column::HelpdeskDepartmentId, Expr::value(department.id.uuid()))
            .col_expr(department_mappings::Column::UpdatedAt, Expr::value(now))
            .filter(department_mappings::Column::LinkId.eq(link.id))
            .filter(department_mappings::Column::DepartmentId.eq(theirs.id))
            .filter(department_mappings::Column::Mode.eq(MappingMode::ChooseAsNeeded.as_str()))
            .filter(department_mappings::Column::HelpdeskDepartmentId.is_null())
            .exec(&**write)
            .await?;
    }
    Ok(())
}

fn link_key_at(organization_id: OrganizationId) -> SealedAt<'static> {
    SealedAt {
        organization_id: organization_id.uuid(),
        table: "helpdesk_links",
        row_id: organization_id.uuid(),
        column: "zsc_key",
    }
}

/// Opens the ZSC key a link was made with.
pub(crate) fn open_link_key(core: &Core, organization_id: OrganizationId, sealed: &[u8]) -> Result<Secret<String>> {
    core.secrets().open(link_key_at(organization_id), sealed)
}

async fn departments_of(
    db: &impl sea_orm::ConnectionTrait,
    organization_id: uuid::Uuid,
) -> Result<Vec<departments::Model>> {
    Ok(departments::Entity::find()
        .filter(departments::Column::OrganizationId.eq(organization_id))
        .order_by_asc(departments::Column::Name)
        .all(db)
        .await?)
}

pub(crate) fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The organization's helpdesk link.
fn link_of(organization_id: OrganizationId) -> Select<helpdesk_links::Entity> {
    helpdesk_links::Entity::find().filter(helpdesk_links::Column::OrganizationId.eq(organization_id.uuid()))
}

fn not_linked() -> Error {
    Error::new(ErrorCode::NotFound, "the organization is not linked to a helpdesk portal".to_owned())
}
