//! Running the platform: provisioning organizations (tenants) for whoever
//! operates it — create with a first admin, list, disable, enable. This is
//! the one place that acts across organizations, so its credential is
//! another kind of thing: a [`PlatformOperator`] is not a
//! [`Caller`](crate::auth::Caller), and no tenant use case accepts one. It
//! comes from the configured operator key (gRPC) or from the command line,
//! which holds the database anyway.

use chrono::{DateTime, Utc};
use madoguchi_entity::organizations;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Core;
use crate::auth::{self, Email, Password};
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::AgentId;
use crate::organizations::{CreateOrganization, Name, Organization, PortalName};
use crate::secrets::Secret;

/// Whoever runs the platform. Only [`Platform::authenticate`] and
/// [`PlatformOperator::at_the_command_line`] make one.
#[derive(Clone, Debug)]
pub struct PlatformOperator {
    _private: (),
}

impl PlatformOperator {
    /// The operator at the command line, who holds the database already.
    pub fn at_the_command_line() -> Self {
        Self { _private: () }
    }
}

/// The shortest operator key accepted in the settings.
pub const MIN_OPERATOR_KEY_LEN: usize = 32;

/// The SHA-256 of the configured operator key; the key itself is not kept.
#[derive(Clone)]
pub struct OperatorKeyDigest([u8; 32]);

impl OperatorKeyDigest {
    /// Checks a configured key's length and keeps its digest.
    pub fn of(key: &Secret<String>) -> Result<Self> {
        let key = key.expose();
        if key.len() < MIN_OPERATOR_KEY_LEN {
            return Err(Error::invalid_argument(format!(
                "the platform operator key must be at least {MIN_OPERATOR_KEY_LEN} characters"
            )));
        }
        if key.starts_with(&format!("{}_", auth::API_KEY_TAG)) {
            return Err(Error::invalid_argument("the platform operator key must not look like an API key"));
        }
        Ok(Self(Sha256::digest(key.as_bytes()).into()))
    }
}

impl std::fmt::Debug for OperatorKeyDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKeyDigest(***)")
    }
}

/// A new organization and its first admin.
#[derive(Clone, Debug)]
pub struct ProvisionOrganization {
    pub name: Name,
    pub portal_name: PortalName,
    pub admin_email: Email,
    pub admin_name: Name,
}

/// What provisioning made: the admin's generated password is shown once.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub organization: Organization,
    pub admin_id: AgentId,
    pub admin_email: String,
    pub admin_password: Secret<String>,
}

/// Platform use cases.
#[derive(Debug, Clone, Copy)]
pub struct Platform<'a> {
    core: &'a Core,
}

impl<'a> Platform<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Turns a presented operator key into the operator, comparing digests
    /// in constant time; `UNAUTHENTICATED` when none is configured.
    pub fn authenticate(&self, presented: &str) -> Result<PlatformOperator> {
        let Some(expected) = self.core.operator_key() else {
            return Err(Error::unauthenticated("no platform operator key is configured on this server"));
        };
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(presented.ct_eq(&expected.0)) {
            Ok(PlatformOperator::at_the_command_line())
        } else {
            Err(Error::unauthenticated("invalid platform operator key"))
        }
    }

    /// Creates an organization and its first admin, whose password is
    /// generated and returned once. Portal names are unique (`CONFLICT`).
    pub async fn create_organization(
        &self,
        _operator: &PlatformOperator,
        command: ProvisionOrganization,
    ) -> Result<Provisioned> {
        let password = Secret::new(auth::random_string(auth::ALPHANUMERIC, 20));
        let create = CreateOrganization {
            name: command.name,
            portal_name: command.portal_name,
            admin_email: command.admin_email.clone(),
            admin_name: command.admin_name,
            admin_password: Password::parse(password.expose())?,
        };
        let (organization, admin_id) = self.core.organizations().create(create).await?;
        Ok(Provisioned {
            organization,
            admin_id,
            admin_email: command.admin_email.to_string(),
            admin_password: password,
        })
    }

    /// Lists every organization by portal name.
    pub async fn list_organizations(&self, _operator: &PlatformOperator) -> Result<Vec<Organization>> {
        let rows =
            organizations::Entity::find().order_by_asc(organizations::Column::PortalName).all(self.core.db()).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Disables or enables an organization. Disabling stops its webhooks,
    /// sessions (open streams end) and API keys at once; its data stays.
    /// Asking for the state it is in changes nothing.
    pub async fn set_organization_disabled(
        &self,
        _operator: &PlatformOperator,
        portal_name: &PortalName,
        disabled: bool,
    ) -> Result<Organization> {
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let row = organizations::Entity::find()
            .filter(organizations::Column::PortalName.eq(portal_name.as_str()))
            .one(&*write)
            .await?
            .ok_or_else(|| Error::not_found("organization"))?;
        let mut update = organizations::Entity::update_many().filter(organizations::Column::Id.eq(row.id));
        update = if disabled {
            update
                .col_expr(organizations::Column::DisabledAt, Expr::value(now))
                .filter(organizations::Column::DisabledAt.is_null())
        } else {
            update
                .col_expr(organizations::Column::DisabledAt, Expr::value(Option::<DateTime<Utc>>::None))
                .filter(organizations::Column::DisabledAt.is_not_null())
        };
        // A conditional update: of two operators racing, one changes it and
        // writes the event.
        if update.exec(&*write).await?.rows_affected == 1 {
            let kind = if disabled { "organization.disabled" } else { "organization.enabled" };
            write.append(row.id.into(), NewEvent::new(kind, json!({"organizationId": row.id}), now)).await?;
        }
        let row = organizations::Entity::find_by_id(row.id)
            .one(&*write)
            .await?
            .ok_or_else(|| Error::not_found("organization"))?;
        write.commit().await?;
        Ok(row.into())
    }
}
