//! GraphQL objects, mapped from core types. Secrets never appear here except
//! in [`CreatedApiKey`], once.

use async_graphql::{Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};
use madoguchi_core::{agents, api_keys, auth, events, organizations};

#[derive(SimpleObject, Debug)]
pub struct Organization {
    pub id: ID,
    pub name: String,
    pub portal_name: String,
    pub created_at: DateTime<Utc>,
}

impl From<organizations::Organization> for Organization {
    fn from(value: organizations::Organization) -> Self {
        Self {
            id: value.id.to_string().into(),
            name: value.name,
            portal_name: value.portal_name,
            created_at: value.created_at,
        }
    }
}

#[derive(SimpleObject, Debug)]
pub struct Department {
    pub id: ID,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<organizations::Department> for Department {
    fn from(value: organizations::Department) -> Self {
        Self { id: value.id.to_string().into(), name: value.name, created_at: value.created_at }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AgentRole {
    Admin,
    Agent,
}

impl From<auth::Role> for AgentRole {
    fn from(value: auth::Role) -> Self {
        match value {
            auth::Role::Admin => Self::Admin,
            auth::Role::Agent => Self::Agent,
        }
    }
}

impl From<AgentRole> for auth::Role {
    fn from(value: AgentRole) -> Self {
        match value {
            AgentRole::Admin => Self::Admin,
            AgentRole::Agent => Self::Agent,
        }
    }
}

#[derive(SimpleObject, Debug)]
pub struct Agent {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub role: AgentRole,
    pub active: bool,
    pub department_ids: Vec<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<agents::Agent> for Agent {
    fn from(value: agents::Agent) -> Self {
        Self {
            id: value.id.to_string().into(),
            email: value.email,
            name: value.name,
            role: value.role.into(),
            active: value.active,
            department_ids: value.department_ids.iter().map(|id| id.to_string().into()).collect(),
            created_at: value.created_at,
        }
    }
}

/// A logged-in agent's session token.
#[derive(SimpleObject, Debug)]
pub struct Session {
    /// Send as `Authorization: Bearer <token>`, or as `authorization` in the
    /// WebSocket `connection_init` payload.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub agent: Agent,
}

impl From<agents::Session> for Session {
    fn from(value: agents::Session) -> Self {
        Self {
            token: value.token.token.expose().clone(),
            expires_at: value.token.expires_at,
            agent: value.agent.into(),
        }
    }
}

#[derive(SimpleObject, Debug)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The public part of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_keys::ApiKey> for ApiKey {
    fn from(value: api_keys::ApiKey) -> Self {
        Self {
            id: value.id.to_string().into(),
            name: value.name,
            prefix: value.prefix,
            scopes: value.scopes.iter().map(|scope| scope.as_str().to_owned()).collect(),
            created_at: value.created_at,
            last_used_at: value.last_used_at,
            revoked_at: value.revoked_at,
        }
    }
}

/// A new API key. `secret` is shown only in this response.
#[derive(SimpleObject, Debug)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    pub secret: String,
}

impl From<api_keys::CreatedApiKey> for CreatedApiKey {
    fn from(value: api_keys::CreatedApiKey) -> Self {
        Self { api_key: value.api_key.into(), secret: value.secret.expose().clone() }
    }
}

/// An entry of the organization's event log.
#[derive(SimpleObject, Debug)]
pub struct Event {
    /// Resume after this event by subscribing with `after: cursor`.
    pub cursor: String,
    pub kind: String,
    pub channel_id: Option<ID>,
    pub chat_id: Option<ID>,
    pub payload: Json<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

impl From<events::Event> for Event {
    fn from(value: events::Event) -> Self {
        Self {
            cursor: value.seq.to_string(),
            kind: value.kind,
            channel_id: value.channel_id.map(|id| id.to_string().into()),
            chat_id: value.chat_id.map(|id| id.to_string().into()),
            payload: Json(value.payload),
            created_at: value.created_at,
        }
    }
}
