//! Agents: the people answering chats, their roles and departments, and
//! their sessions (login and token authentication).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use madoguchi_entity::{agent_departments, agents, departments, organizations};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::Core;
use crate::auth::{
    AgentCaller, Caller, Email, Password, Permission, Role, SessionToken, hash_password, verify_against_dummy,
    verify_password,
};
use crate::bounds;
use crate::error::{Error, ErrorCode, Result};
use crate::events::NewEvent;
use crate::ids::{AgentId, DepartmentId, OrganizationId};
use crate::organizations::active_organization_ids;
use crate::organizations::{Name, PortalName};
use crate::rate_limits::{self, Limit, count_attempt, count_attempts};
use crate::secrets::Secret;

/// An agent as the API shows it (never with its password hash).
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    pub id: AgentId,
    pub organization_id: OrganizationId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub active: bool,
    pub department_ids: Vec<DepartmentId>,
    pub created_at: DateTime<Utc>,
}

/// A new agent.
#[derive(Clone, Debug)]
pub struct CreateAgent {
    pub email: Email,
    pub name: Name,
    pub role: Role,
    pub password: Password,
    pub department_ids: Vec<DepartmentId>,
}

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UpdateAgent {
    pub name: Option<Name>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub password: Option<Password>,
    pub department_ids: Option<Vec<DepartmentId>>,
}

/// Credentials for logging in. `portal` picks the organization when one
/// email belongs to agents of several.
#[derive(Clone, Debug)]
pub struct Login {
    pub email: Email,
    /// `Debug` prints `***`.
    pub password: Secret<String>,
    pub portal: Option<PortalName>,
    /// Where the attempt comes from, when the surface knows: attempts are
    /// limited per address as well as per account.
    pub client_address: Option<std::net::IpAddr>,
}

/// Sign-in attempts allowed per account (agent) in one window, successful
/// ones included; a success clears the account's count.
const ACCOUNT_ATTEMPTS: Limit = Limit { max: 10, window: chrono::Duration::minutes(15) };
/// Sign-in attempts allowed per client address in one window.
const ADDRESS_ATTEMPTS: Limit = Limit { max: 100, window: chrono::Duration::minutes(15) };
/// How many portals sharing one email are tried with the password when no
/// portal is named; past that the portal must be named.
const MAX_PORTALS_TRIED: usize = 5;

/// A logged-in agent's session.
#[derive(Clone, Debug)]
pub struct Session {
    pub token: SessionToken,
    pub agent: Agent,
}

/// Agent use cases.
#[derive(Debug, Clone, Copy)]
pub struct Agents<'a> {
    core: &'a Core,
}

impl<'a> Agents<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Checks an email and password and returns a session token.
    ///
    /// Each attempt is counted before the password is checked, per client
    /// address and against every account it tries (see [`ACCOUNT_ATTEMPTS`],
    /// [`ADDRESS_ATTEMPTS`]), so racing guesses cannot pass a limit. An
    /// account's count is its own, keyed by the agent, not by the email: a
    /// success in one portal does not clear the guesses against another
    /// portal's agent of the same email. An unknown email costs the same
    /// hashing as a known one, and an email used in several portals is only
    /// said to be so to someone whose password matches more than one.
    pub async fn login(&self, login: Login) -> Result<Session> {
        let invalid = || Error::unauthenticated("invalid email or password");
        if let Some(address) = login.client_address {
            let key = format!("login:address:{address}");
            count_attempt(self.core, &key, ADDRESS_ATTEMPTS, "too many sign-in attempts from this address").await?;
        }

        let mut query = agents::Entity::find()
            .filter(agents::Column::Email.eq(login.email.as_str()))
            .filter(agents::Column::OrganizationId.in_subquery(active_organization_ids()));
        if let Some(portal) = &login.portal {
            let organization = organizations::Entity::find()
                .filter(organizations::Column::PortalName.eq(portal.as_str()))
                .one(self.core.db())
                .await?;
            query = query.filter(agents::Column::OrganizationId.eq(organization.map(|o| o.id).unwrap_or_default()));
        }
        let candidates =
            query.order_by_asc(agents::Column::Id).limit(MAX_PORTALS_TRIED as u64 + 1).all(self.core.db()).await?;
        if candidates.is_empty() {
            // Spend the same time as a real check, so timing does not reveal
            // which emails exist.
            verify_against_dummy(login.password).await?;
            return Err(invalid());
        }
        if candidates.len() > MAX_PORTALS_TRIED {
            return Err(Error::invalid_argument("give the portal name to sign in"));
        }
        let account_keys: Vec<String> = candidates.iter().map(|candidate| account_key(candidate.id)).collect();
        let refusal = "too many sign-in attempts for this account";
        count_attempts(self.core, &account_keys, ACCOUNT_ATTEMPTS, refusal).await?;
        let mut matching = Vec::new();
        for candidate in candidates {
            if verify_password(candidate.password_hash.clone(), login.password.clone()).await? && candidate.active {
                matching.push(candidate);
            }
        }
        let agent = match matching.as_slice() {
            [agent] => agent.clone(),
            [] => return Err(invalid()),
            _ => return Err(Error::invalid_argument("this email belongs to several portals: give the portal name")),
        };
        rate_limits::clear(self.core, &account_key(agent.id)).await?;
        let caller = AgentCaller {
            organization_id: agent.organization_id.into(),
            agent_id: agent.id.into(),
            role: Role::parse(&agent.role)?,
            session_version: agent.token_version,
        };
        let token = self.core.tokens().issue(&caller, self.core.now())?;
        let agent = self.load(caller.organization_id, caller.agent_id).await?;
        Ok(Session { token, agent })
    }

    /// Turns a session token into a caller. The agent is read afresh, so a
    /// deactivated or demoted agent loses their rights at once.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        self.authenticate_session(token).await.map(|(caller, _)| caller)
    }

    /// Like [`Self::authenticate`], also returning when the token expires
    /// (long-lived connections close then).
    pub async fn authenticate_session(&self, token: &str) -> Result<(Caller, DateTime<Utc>)> {
        let verified = self.core.tokens().verify(token, self.core.now())?;
        let agent = self.current(verified.organization_id, verified.agent_id, verified.version).await?;
        let caller = AgentCaller {
            organization_id: verified.organization_id,
            agent_id: verified.agent_id,
            role: Role::parse(&agent.role)?,
            session_version: verified.version,
        };
        Ok((Caller::Agent(caller), verified.expires_at))
    }

    /// Returns the agent a session stands for while it still does: active,
    /// and at the token version the session was issued at.
    async fn current(&self, organization_id: OrganizationId, agent_id: AgentId, version: i32) -> Result<agents::Model> {
        // A disabled organization's sessions end here, in the same query.
        let agent = agents::Entity::find_by_id(agent_id.uuid())
            .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(agents::Column::OrganizationId.in_subquery(active_organization_ids()))
            .one(self.core.db())
            .await?
            .filter(|agent| agent.active)
            .ok_or_else(|| Error::unauthenticated("invalid session token"))?;
        if agent.token_version != version {
            return Err(Error::unauthenticated("session revoked: sign in again"));
        }
        Ok(agent)
    }

    /// Checks that an agent caller's session still holds, with the role it
    /// was authenticated with (long-lived streams ask after identity changes).
    pub(crate) async fn still_valid(&self, caller: &AgentCaller) -> Result<()> {
        let agent = self.current(caller.organization_id, caller.agent_id, caller.session_version).await?;
        if Role::parse(&agent.role)? != caller.role {
            return Err(Error::unauthenticated("session revoked: sign in again"));
        }
        Ok(())
    }

    /// Returns the calling agent.
    pub async fn me(&self, caller: &Caller) -> Result<Agent> {
        let agent = caller.agent().ok_or_else(|| Error::permission_denied("only agents have a profile"))?;
        self.load(agent.organization_id, agent.agent_id).await
    }

    /// Lists the organization's agents by name.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Agent>> {
        caller.require(Permission::ReadOrganization)?;
        let organization_id = caller.organization_id();
        let rows = agents::Entity::find()
            .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
            .order_by_asc(agents::Column::Name)
            .all(self.core.db())
            .await?;
        let mut memberships: HashMap<uuid::Uuid, Vec<DepartmentId>> = HashMap::new();
        let links = agent_departments::Entity::find()
            .filter(agent_departments::Column::AgentId.is_in(rows.iter().map(|row| row.id)))
            .all(self.core.db())
            .await?;
        for link in links {
            memberships.entry(link.agent_id).or_default().push(link.department_id.into());
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let departments = memberships.remove(&row.id).unwrap_or_default();
                agent_from_row(row, departments)
            })
            .collect())
    }

    /// Returns one agent of the caller's organization.
    pub async fn get(&self, caller: &Caller, id: AgentId) -> Result<Agent> {
        caller.require(Permission::ReadOrganization)?;
        self.load(caller.organization_id(), id).await
    }

    pub(crate) async fn load(&self, organization_id: OrganizationId, id: AgentId) -> Result<Agent> {
        let row = agents::Entity::find_by_id(id.uuid())
            .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("agent"))?;
        let departments = agent_departments::Entity::find()
            .filter(agent_departments::Column::AgentId.eq(id.uuid()))
            .all(self.core.db())
            .await?
            .into_iter()
            .map(|link| link.department_id.into())
            .collect();
        Ok(agent_from_row(row, departments))
    }

    /// Creates an agent (admins).
    pub async fn create(&self, caller: &Caller, command: CreateAgent) -> Result<Agent> {
        caller.require(Permission::ManageAgents)?;
        let organization_id = caller.organization_id();
        let departments = self.own_departments(organization_id, &command.department_ids).await?;
        let password_hash = hash_password(&command.password).await?;
        let now = self.core.now();
        let id = AgentId::generate();
        let mut write = self.core.write().await?;
        agents::ActiveModel {
            id: Set(id.uuid()),
            organization_id: Set(organization_id.uuid()),
            email: Set(command.email.as_str().to_owned()),
            name: Set(command.name.as_str().to_owned()),
            role: Set(command.role.as_str().to_owned()),
            password_hash: Set(password_hash),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            token_version: Set(0),
        }
        .insert(&*write)
        .await
        .map_err(|error| match Error::from(error) {
            error if error.code() == ErrorCode::Conflict => Error::conflict("an agent with that email exists"),
            error => error,
        })?;
        replace_departments(&*write, id, &departments).await?;
        write
            .append(
                organization_id,
                NewEvent::new("agent.created", json!({"agentId": id, "role": command.role.as_str()}), now),
            )
            .await?;
        write.commit().await?;
        self.load(organization_id, id).await
    }

    /// Changes an agent (admins). The last active admin cannot be demoted or
    /// deactivated, so an organization always has someone who can manage it.
    /// A change decided on a role or state that another change has replaced
    /// meanwhile is refused (`ABORTED`) and changes nothing.
    pub async fn update(&self, caller: &Caller, id: AgentId, command: UpdateAgent) -> Result<Agent> {
        caller.require(Permission::ManageAgents)?;
        let organization_id = caller.organization_id();
        let existing = agents::Entity::find_by_id(id.uuid())
            .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("agent"))?;
        let departments = match &command.department_ids {
            Some(ids) => Some(self.own_departments(organization_id, ids).await?),
            None => None,
        };
        let password_hash = match &command.password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let loses_admin = existing.role == Role::Admin.as_str()
            && existing.active
            && (command.role.is_some_and(|role| role != Role::Admin) || command.active == Some(false));
        if loses_admin {
            // The active admins' rows are locked (in id order) before they are
            // counted, so two admins demoting each other at once are
            // serialised and the second sees one admin left. SQLite has one
            // writer at a time anyway.
            let mut admins = agents::Entity::find()
                .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
                .filter(agents::Column::Role.eq(Role::Admin.as_str()))
                .filter(agents::Column::Active.eq(true))
                .order_by_asc(agents::Column::Id);
            if self.core.backend() == sea_orm::DbBackend::Postgres {
                admins = sea_orm::QuerySelect::lock_exclusive(admins);
            }
            let active_admins = admins.all(&*write).await?;
            if active_admins.len() <= 1 || !active_admins.iter().any(|admin| admin.id == existing.id) {
                return Err(Error::failed_precondition("the last active admin cannot be demoted or deactivated"));
            }
        }
        // Deactivation, a new role or a new password revokes every session.
        let revokes = command.role.is_some_and(|role| role.as_str() != existing.role)
            || command.active == Some(false)
            || password_hash.is_some();
        let mut update = agents::Entity::update_many()
            .col_expr(agents::Column::UpdatedAt, Expr::value(now))
            .filter(agents::Column::Id.eq(id.uuid()))
            // The role and state the checks above were decided on: an agent
            // promoted or deactivated since it was read (outside the admins'
            // lock, which only an admin's demotion takes) is not changed on
            // stale grounds, which could leave no active admin.
            .filter(agents::Column::Role.eq(existing.role.as_str()))
            .filter(agents::Column::Active.eq(existing.active));
        if let Some(name) = command.name {
            update = update.col_expr(agents::Column::Name, Expr::value(name.as_str()));
        }
        if let Some(role) = command.role {
            update = update.col_expr(agents::Column::Role, Expr::value(role.as_str()));
        }
        if let Some(active) = command.active {
            update = update.col_expr(agents::Column::Active, Expr::value(active));
        }
        if let Some(hash) = password_hash {
            update = update.col_expr(agents::Column::PasswordHash, Expr::value(hash));
        }
        if revokes {
            // Incremented in the database, not set from the row read above:
            // two revoking changes at once both move the version on.
            update = update.col_expr(agents::Column::TokenVersion, Expr::col(agents::Column::TokenVersion).add(1));
        }
        if update.exec(&*write).await?.rows_affected == 0 {
            return Err(Error::aborted("the agent's role or state changed meanwhile; read it again and retry"));
        }
        if let Some(departments) = departments {
            replace_departments(&*write, id, &departments).await?;
        }
        write.append(organization_id, NewEvent::new("agent.updated", json!({"agentId": id}), now)).await?;
        write.commit().await?;
        self.load(organization_id, id).await
    }

    /// Checks that every department belongs to the organization.
    async fn own_departments(
        &self,
        organization_id: OrganizationId,
        ids: &[DepartmentId],
    ) -> Result<BTreeSet<DepartmentId>> {
        bounds::listed_ids("departmentIds", ids)?;
        let wanted: BTreeSet<DepartmentId> = ids.iter().copied().collect();
        let found = departments::Entity::find()
            .filter(departments::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(departments::Column::Id.is_in(wanted.iter().map(|id| id.uuid())))
            .count(self.core.db())
            .await?;
        if found as usize != wanted.len() {
            return Err(Error::not_found("department"));
        }
        Ok(wanted)
    }
}

/// The key an agent's sign-in attempts are counted under.
fn account_key(agent_id: uuid::Uuid) -> String {
    format!("login:account:{agent_id}")
}

async fn replace_departments(
    db: &impl sea_orm::ConnectionTrait,
    agent_id: AgentId,
    departments: &BTreeSet<DepartmentId>,
) -> Result<()> {
    agent_departments::Entity::delete_many()
        .filter(agent_departments::Column::AgentId.eq(agent_id.uuid()))
        .exec(db)
        .await?;
    if !departments.is_empty() {
        agent_departments::Entity::insert_many(departments.iter().map(|department_id| {
            agent_departments::ActiveModel { agent_id: Set(agent_id.uuid()), department_id: Set(department_id.uuid()) }
        }))
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

fn agent_from_row(row: agents::Model, department_ids: Vec<DepartmentId>) -> Agent {
    Agent {
        id: row.id.into(),
        organization_id: row.organization_id.into(),
        email: row.email,
        name: row.name,
        role: Role::parse(&row.role).unwrap_or(Role::Agent),
        active: row.active,
        department_ids,
        created_at: row.created_at,
    }
}
