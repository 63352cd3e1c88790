//! Organizations (tenants) and their departments.

use chrono::{DateTime, Utc};
use madoguchi_entity::{agents, departments, organizations, ticket_classifications};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::Core;
use crate::auth::{Caller, Email, Password, Permission, Role, hash_password};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{AgentId, DepartmentId, OrganizationId};

/// The classifications a new portal starts with (the spec's examples).
pub const DEFAULT_CLASSIFICATIONS: [&str; 3] = ["Question", "Problem", "Feature request"];
/// A tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub portal_name: String,
    pub created_at: DateTime<Utc>,
    /// When the platform's operator disabled it, if it is.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A team within an organization.
#[derive(Clone, Debug, PartialEq)]
pub struct Department {
    pub id: DepartmentId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A display name: trimmed, 1 to 200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(text: &str) -> Result<Self> {
        let name = text.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::invalid_argument("a name must have 1 to 200 characters"));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A portal name: 3 to 63 lower-case letters, digits and hyphens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalName(String);

impl PortalName {
    pub fn parse(text: &str) -> Result<Self> {
        let name = text.trim().to_lowercase();
        let valid = (3..=63).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if valid {
            Ok(Self(name))
        } else {
            Err(Error::invalid_argument("a portal name has 3 to 63 lower-case letters, digits and inner hyphens"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new organization with its first admin.
#[derive(Clone, Debug)]
pub struct CreateOrganization {
    pub name: Name,
    pub portal_name: PortalName,
    pub admin_email: Email,
    pub admin_name: Name,
    pub admin_password: Password,
}

/// Organization and department use cases.
#[derive(Debug, Clone, Copy)]
pub struct Organizations<'a> {
    core: &'a Core,
}

impl<'a> Organizations<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Returns how many organizations exist (zero on a fresh database).
    pub async fn count(&self) -> Result<u64> {
        Ok(organizations::Entity::find().count(self.core.db()).await?)
    }

    /// Creates an organization and its first admin. Operators only: this runs
    /// at first start and from the command line, never from an API.
    pub async fn create(&self, command: CreateOrganization) -> Result<(Organization, AgentId)> {
        let now = self.core.now();
        let password_hash = hash_password(&command.admin_password).await?;
        let organization_id = OrganizationId::generate();
        let admin_id = AgentId::generate();
        let mut write = self.core.write().await?;
        let organization = organizations::ActiveModel {
            id: Set(organization_id.uuid()),
            name: Set(command.name.as_str().to_owned()),
            portal_name: Set(command.portal_name.as_str().to_owned()),
            event_seq: Set(0),
            ticket_seq: Set(0),
            created_at: Set(now),
            disabled_at: Set(None),
        }
        .insert(&*write)
        .await
        .map_err(|error| match Error::from(error) {
            error if error.code() == crate::ErrorCode::Conflict => Error::conflict("portal name is taken"),
            error => error,
        })?;
        agents::ActiveModel {
            id: Set(admin_id.uuid()),
            organization_id: Set(organization_id.uuid()),
            email: Set(command.admin_email.as_str().to_owned()),
            name: Set(command.admin_name.as_str().to_owned()),
            role: Set(Role::Admin.as_str().to_owned()),
            password_hash: Set(password_hash),
            active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            token_version: Set(0),
        }
        .insert(&*write)
        .await?;
        // A portal starts with the usual classifications; its admin edits them.
        let classifications =
            DEFAULT_CLASSIFICATIONS.iter().enumerate().map(|(index, name)| ticket_classifications::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                organization_id: Set(organization_id.uuid()),
                name: Set((*name).to_owned()),
                created_at: Set(now + chrono::Duration::microseconds(index as i64)),
            });
        ticket_classifications::Entity::insert_many(classifications).exec_without_returning(&*write).await?;
        write
            .append(
                organization_id,
                NewEvent::new(
                    "organization.created",
                    json!({"organizationId": organization_id, "portalName": command.portal_name.as_str(), "adminId": admin_id}),
                    now,
                ),
            )
            .await?;
        write.commit().await?;
        Ok((organization.into(), admin_id))
    }

    /// Returns the caller's organization.
    pub async fn get(&self, caller: &Caller) -> Result<Organization> {
        caller.require(Permission::ReadOrganization)?;
        organizations::Entity::find_by_id(caller.organization_id().uuid())
            .one(self.core.db())
            .await?
            .map(Into::into)
            .ok_or_else(|| Error::not_found("organization"))
    }

    /// Returns the organization with a portal name (operators).
    pub async fn find_by_portal(&self, portal_name: &PortalName) -> Result<Organization> {
        organizations::Entity::find()
            .filter(organizations::Column::PortalName.eq(portal_name.as_str()))
            .one(self.core.db())
            .await?
            .map(Into::into)
            .ok_or_else(|| Error::not_found("organization"))
    }

    /// Lists the caller's departments by name.
    pub async fn departments(&self, caller: &Caller) -> Result<Vec<Department>> {
        caller.require(Permission::ReadOrganization)?;
        let rows = departments::Entity::find()
            .filter(departments::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .order_by_asc(departments::Column::Name)
            .all(self.core.db())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Returns one of the caller's departments; another tenant's is `NotFound`.
    pub async fn department(&self, caller: &Caller, id: DepartmentId) -> Result<Department> {
        caller.require(Permission::ReadOrganization)?;
        self.find_department(caller.organization_id(), id).await.map(Into::into)
    }

    pub(crate) async fn find_department(
        &self,
        organization_id: OrganizationId,
        id: DepartmentId,
    ) -> Result<departments::Model> {
        departments::Entity::find_by_id(id.uuid())
            .filter(departments::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("department"))
    }

    /// Creates a department; names are unique within the organization.
    pub async fn create_department(&self, caller: &Caller, name: Name) -> Result<Department> {
        caller.require(Permission::ManageDepartments)?;
        let organization_id = caller.organization_id();
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let department = departments::ActiveModel {
            id: Set(DepartmentId::generate().uuid()),
            organization_id: Set(organization_id.uuid()),
            name: Set(name.as_str().to_owned()),
            created_at: Set(now),
        }
        .insert(&*write)
        .await
        .map_err(department_name_taken)?;
        let department = Department::from(department);
        crate::helpdesk::map_new_department(&write, &department, now).await?;
        append_department_event(&mut write, "department.created", &department, now).await?;
        write.commit().await?;
        Ok(department)
    }

    /// Renames a department.
    pub async fn rename_department(&self, caller: &Caller, id: DepartmentId, name: Name) -> Result<Department> {
        caller.require(Permission::ManageDepartments)?;
        let now = self.core.now();
        let existing = self.find_department(caller.organization_id(), id).await?;
        let mut write = self.core.write().await?;
        let mut row: departments::ActiveModel = existing.into();
        row.name = Set(name.as_str().to_owned());
        let department = Department::from(row.update(&*write).await.map_err(department_name_taken)?);
        append_department_event(&mut write, "department.renamed", &department, now).await?;
        write.commit().await?;
        Ok(department)
    }

    /// Deletes a department that no channel or chat belongs to.
    pub async fn delete_department(&self, caller: &Caller, id: DepartmentId) -> Result<()> {
        caller.require(Permission::ManageDepartments)?;
        let now = self.core.now();
        let existing = Department::from(self.find_department(caller.organization_id(), id).await?);
        let mut write = self.core.write().await?;
        departments::Entity::delete_by_id(id.uuid()).exec(&*write).await.map_err(|error| match Error::from(error) {
            error if error.code() == crate::ErrorCode::FailedPrecondition => {
                Error::failed_precondition("the department still has channels or chats")
            }
            error => error,
        })?;
        append_department_event(&mut write, "department.deleted", &existing, now).await?;
        write.commit().await
    }
}

fn department_name_taken(error: sea_orm::DbErr) -> Error {
    match Error::from(error) {
        error if error.code() == crate::ErrorCode::Conflict => Error::conflict("a department with that name exists"),
        error => error,
    }
}

async fn append_department_event(
    write: &mut Write<'_>,
    kind: &'static str,
    department: &Department,
    now: DateTime<Utc>,
) -> Result<()> {
    write
        .append(
            department.organization_id,
            NewEvent::new(kind, json!({"departmentId": department.id, "name": department.name}), now),
        )
        .await
}

impl From<organizations::Model> for Organization {
    fn from(row: organizations::Model) -> Self {
        Self {
            id: row.id.into(),
            name: row.name,
            portal_name: row.portal_name,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        }
    }
}

impl From<departments::Model> for Department {
    fn from(row: departments::Model) -> Self {
        Self {
            id: row.id.into(),
            organization_id: row.organization_id.into(),
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// The ids of organizations that are not disabled, as a sub-select: every
/// way in (sessions, API keys, webhooks) filters by it in its own query.
pub(crate) fn active_organization_ids() -> sea_orm::sea_query::SelectStatement {
    use sea_orm::{QuerySelect, QueryTrait};
    organizations::Entity::find()
        .select_only()
        .column(organizations::Column::Id)
        .filter(organizations::Column::DisabledAt.is_null())
        .into_query()
}
