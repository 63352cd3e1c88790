//! Mutations.

use async_graphql::{Context, ID, InputObject, Object, Result};
use madoguchi_core::agents::{CreateAgent, Login, UpdateAgent};
use madoguchi_core::auth::{Email, Password, Scopes};
use madoguchi_core::ids::{AgentId, ApiKeyId, DepartmentId};
use madoguchi_core::organizations::{Name, PortalName};

use crate::context::{OrGraphql, caller, core};
use crate::types::{Agent, AgentRole, ApiKey, CreatedApiKey, Department, Session};

#[derive(Default, Debug)]
pub struct OrganizationMutation;

#[derive(InputObject, Debug)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Needed only when the email belongs to agents of several portals.
    pub portal: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct CreateAgentInput {
    pub email: String,
    pub name: String,
    pub role: AgentRole,
    pub password: String,
    #[graphql(default)]
    pub department_ids: Vec<ID>,
}

#[derive(InputObject, Debug, Default)]
pub struct UpdateAgentInput {
    pub name: Option<String>,
    pub role: Option<AgentRole>,
    pub active: Option<bool>,
    pub password: Option<String>,
    pub department_ids: Option<Vec<ID>>,
}

fn department_ids(ids: &[ID]) -> madoguchi_core::Result<Vec<DepartmentId>> {
    ids.iter().map(|id| DepartmentId::parse(id)).collect()
}

impl TryFrom<CreateAgentInput> for CreateAgent {
    type Error = madoguchi_core::Error;

    fn try_from(input: CreateAgentInput) -> madoguchi_core::Result<Self> {
        Ok(Self {
            email: Email::parse(&input.email)?,
            name: Name::parse(&input.name)?,
            role: input.role.into(),
            password: Password::parse(&input.password)?,
            department_ids: department_ids(&input.department_ids)?,
        })
    }
}

impl TryFrom<UpdateAgentInput> for UpdateAgent {
    type Error = madoguchi_core::Error;

    fn try_from(input: UpdateAgentInput) -> madoguchi_core::Result<Self> {
        Ok(Self {
            name: input.name.as_deref().map(Name::parse).transpose()?,
            role: input.role.map(Into::into),
            active: input.active,
            password: input.password.as_deref().map(Password::parse).transpose()?,
            department_ids: input.department_ids.as_deref().map(department_ids).transpose()?,
        })
    }
}

#[Object]
impl OrganizationMutation {
    /// Logs in with email and password; returns a session token.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<Session> {
        let login = Login {
            email: Email::parse(&input.email).graphql()?,
            password: input.password,
            portal: input.portal.as_deref().map(PortalName::parse).transpose().graphql()?,
        };
        core(ctx).agents().login(login).await.graphql().map(Into::into)
    }

    async fn create_department(&self, ctx: &Context<'_>, name: String) -> Result<Department> {
        let name = Name::parse(&name).graphql()?;
        core(ctx).organizations().create_department(&caller(ctx)?, name).await.graphql().map(Into::into)
    }

    async fn rename_department(&self, ctx: &Context<'_>, id: ID, name: String) -> Result<Department> {
        let (id, name) = (DepartmentId::parse(&id).graphql()?, Name::parse(&name).graphql()?);
        core(ctx).organizations().rename_department(&caller(ctx)?, id, name).await.graphql().map(Into::into)
    }

    /// Deletes a department that no channel or chat belongs to; returns its id.
    async fn delete_department(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let department_id = DepartmentId::parse(&id).graphql()?;
        core(ctx).organizations().delete_department(&caller(ctx)?, department_id).await.graphql()?;
        Ok(id)
    }

    async fn create_agent(&self, ctx: &Context<'_>, input: CreateAgentInput) -> Result<Agent> {
        let command = CreateAgent::try_from(input).graphql()?;
        core(ctx).agents().create(&caller(ctx)?, command).await.graphql().map(Into::into)
    }

    async fn update_agent(&self, ctx: &Context<'_>, id: ID, input: UpdateAgentInput) -> Result<Agent> {
        let (id, command) = (AgentId::parse(&id).graphql()?, UpdateAgent::try_from(input).graphql()?);
        core(ctx).agents().update(&caller(ctx)?, id, command).await.graphql().map(Into::into)
    }

    /// Creates an API key for a partner system (admins). The secret is in
    /// this response only.
    async fn create_api_key(&self, ctx: &Context<'_>, name: String, scopes: Vec<String>) -> Result<CreatedApiKey> {
        let (name, scopes) = (Name::parse(&name).graphql()?, Scopes::parse(&scopes).graphql()?);
        core(ctx).api_keys().create(&caller(ctx)?, name, scopes).await.graphql().map(Into::into)
    }

    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> Result<ApiKey> {
        let id = ApiKeyId::parse(&id).graphql()?;
        core(ctx).api_keys().revoke(&caller(ctx)?, id).await.graphql().map(Into::into)
    }
}
