//! Mutations.

use async_graphql::{Context, ID, InputObject, Object, Result};
use madoguchi_core::agents::{CreateAgent, Login, UpdateAgent};
use madoguchi_core::auth::{Email, Password, Scopes};
use madoguchi_core::ids::{AgentId, ApiKeyId, DepartmentId};
use madoguchi_core::organizations::{Name, PortalName};
use madoguchi_core::secrets::Secret;

use crate::context::{ClientAddress, OrGraphql, caller, core};
use crate::types::{Agent, AgentRole, ApiKey, CreatedApiKey, Department, Session};

#[derive(Default, Debug)]
pub struct OrganizationMutation;

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Needed only when the email belongs to agents of several portals.
    pub portal: Option<String>,
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    pub email: String,
    pub name: String,
    pub role: AgentRole,
    pub password: String,
    #[graphql(default)]
    pub department_ids: Vec<ID>,
}

#[derive(InputObject, Default)]
pub struct UpdateAgentInput {
    pub name: Option<String>,
    pub role: Option<AgentRole>,
    pub active: Option<bool>,
    pub password: Option<String>,
    pub department_ids: Option<Vec<ID>>,
}

// Passwords never reach a log through `Debug`.
impl std::fmt::Debug for LoginInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginInput")
            .field("email", &self.email)
            .field("password", &"***")
            .field("portal", &self.portal)
            .finish()
    }
}

impl std::fmt::Debug for CreateAgentInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateAgentInput")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("password", &"***")
            .field("department_ids", &self.department_ids)
            .finish()
    }
}

impl std::fmt::Debug for UpdateAgentInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateAgentInput")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("active", &self.active)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("department_ids", &self.department_ids)
            .finish()
    }
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
            password: Secret::new(input.password),
            portal: input.portal.as_deref().map(PortalName::parse).transpose().graphql()?,
            client_address: ctx.data_opt::<ClientAddress>().map(|address| address.0),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_carrying_passwords_print_them_masked() {
        let login = LoginInput { email: "a@b.example".into(), password: "hunter2 hunter2".into(), portal: None };
        let create = CreateAgentInput {
            email: "a@b.example".into(),
            name: "A".into(),
            role: AgentRole::Agent,
            password: "hunter2 hunter2".into(),
            department_ids: Vec::new(),
        };
        let update = UpdateAgentInput { password: Some("hunter2 hunter2".into()), ..Default::default() };
        for printed in [format!("{login:?}"), format!("{create:?}"), format!("{update:?}")] {
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("***"), "{printed}");
        }
    }
}
