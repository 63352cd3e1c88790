//! API keys for partner systems: created by an admin and shown once, stored
//! as a SHA-256 digest with a lookup prefix, scoped, revocable, last use
//! recorded.

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::api_keys;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::Core;
use crate::auth::{
    ALPHANUMERIC, API_KEY_TAG, ApiKeyCaller, Caller, Permission, Scopes, api_key_digest, parse_api_key, random_string,
};
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{AgentId, ApiKeyId};
use crate::organizations::Name;
use crate::organizations::active_organization_ids;
use crate::secrets::Secret;

/// How stale `last_used_at` may get before a call writes it again.
const LAST_USED_RESOLUTION: Duration = Duration::seconds(60);

/// An API key as listed: never its secret.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub scopes: Scopes,
    pub created_by: Option<AgentId>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created, with the secret shown this once.
#[derive(Clone, Debug)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    pub secret: Secret<String>,
}

/// API key use cases.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'a> {
    core: &'a Core,
}

impl<'a> ApiKeys<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Creates a key (admins and operators). The full key is returned only here.
    pub async fn create(&self, caller: &Caller, name: Name, scopes: Scopes) -> Result<CreatedApiKey> {
        caller.require(Permission::ManageApiKeys)?;
        let organization_id = caller.organization_id();
        let prefix = random_string(ALPHANUMERIC, 12);
        let secret = format!("{API_KEY_TAG}_{prefix}_{}", random_string(ALPHANUMERIC, 40));
        let now = self.core.now();
        let id = ApiKeyId::generate();
        let mut write = self.core.write().await?;
        let row = api_keys::ActiveModel {
            id: Set(id.uuid()),
            organization_id: Set(organization_id.uuid()),
            name: Set(name.as_str().to_owned()),
            prefix: Set(prefix.clone()),
            digest: Set(api_key_digest(&secret)),
            scopes: Set(scopes.to_stored()),
            created_by_agent_id: Set(caller.agent().map(|agent| agent.agent_id.uuid())),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&*write)
        .await?;
        write
            .append(organization_id, NewEvent::new("api_key.created", json!({"apiKeyId": id, "prefix": prefix}), now))
            .await?;
        write.commit().await?;
        Ok(CreatedApiKey { api_key: row.into(), secret: Secret::new(secret) })
    }

    /// Lists the organization's keys, newest first.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<ApiKey>> {
        caller.require(Permission::ManageApiKeys)?;
        let rows = api_keys::Entity::find()
            .filter(api_keys::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .order_by_desc(api_keys::Column::CreatedAt)
            .all(self.core.db())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Revokes a key; it stops working at once. Revoking twice is harmless.
    pub async fn revoke(&self, caller: &Caller, id: ApiKeyId) -> Result<ApiKey> {
        caller.require(Permission::ManageApiKeys)?;
        let organization_id = caller.organization_id();
        let existing = api_keys::Entity::find_by_id(id.uuid())
            .filter(api_keys::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("api key"))?;
        if existing.revoked_at.is_some() {
            return Ok(existing.into());
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let mut row: api_keys::ActiveModel = existing.into();
        row.revoked_at = Set(Some(now));
        let row = row.update(&*write).await?;
        write.append(organization_id, NewEvent::new("api_key.revoked", json!({"apiKeyId": id}), now)).await?;
        write.commit().await?;
        Ok(row.into())
    }

    /// Checks that an API key caller's key is still in force.
    pub(crate) async fn still_valid(&self, caller: &crate::auth::ApiKeyCaller) -> Result<()> {
        let row = api_keys::Entity::find_by_id(caller.api_key_id.uuid())
            .filter(api_keys::Column::OrganizationId.eq(caller.organization_id.uuid()))
            .filter(api_keys::Column::OrganizationId.in_subquery(active_organization_ids()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::unauthenticated("invalid api key"))?;
        if row.revoked_at.is_some() {
            return Err(Error::unauthenticated("api key revoked"));
        }
        Ok(())
    }

    /// Turns a presented key into a caller; records when it was last used.
    pub async fn authenticate(&self, presented: &str) -> Result<Caller> {
        let invalid = || Error::unauthenticated("invalid api key");
        let parsed = parse_api_key(presented)?;
        // A disabled organization's keys stop working here, in the same query.
        let row = api_keys::Entity::find()
            .filter(api_keys::Column::Prefix.eq(parsed.prefix))
            .filter(api_keys::Column::OrganizationId.in_subquery(active_organization_ids()))
            .one(self.core.db())
            .await?
            .ok_or_else(invalid)?;
        let digest = api_key_digest(presented);
        if !bool::from(digest.as_bytes().ct_eq(row.digest.as_bytes())) {
            return Err(invalid());
        }
        if row.revoked_at.is_some() {
            return Err(Error::unauthenticated("api key revoked"));
        }
        let now = self.core.now();
        let caller = ApiKeyCaller {
            organization_id: row.organization_id.into(),
            api_key_id: row.id.into(),
            scopes: Scopes::from_stored(&row.scopes),
        };
        if row.last_used_at.is_none_or(|last| now - last > LAST_USED_RESOLUTION) {
            let used = api_keys::Entity::update_many()
                .col_expr(api_keys::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
                .filter(api_keys::Column::Id.eq(row.id));
            self.core.write_alone(used).await?;
        }
        Ok(Caller::ApiKey(caller))
    }
}

impl From<api_keys::Model> for ApiKey {
    fn from(row: api_keys::Model) -> Self {
        Self {
            id: row.id.into(),
            name: row.name,
            prefix: row.prefix,
            scopes: Scopes::from_stored(&row.scopes),
            created_by: row.created_by_agent_id.map(Into::into),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        }
    }
}
