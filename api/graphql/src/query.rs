//! Queries.

use async_graphql::{Context, ID, Object, Result};
use madoguchi_core::ids::{AgentId, DepartmentId};

use crate::context::{OrGraphql, caller, core};
use crate::types::{Agent, ApiKey, Department, Organization};

#[derive(Default, Debug)]
pub struct OrganizationQuery;

#[Object]
impl OrganizationQuery {
    /// The agent calling.
    async fn me(&self, ctx: &Context<'_>) -> Result<Agent> {
        core(ctx).agents().me(&caller(ctx)?).await.graphql().map(Into::into)
    }

    /// The caller's organization.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        core(ctx).organizations().get(&caller(ctx)?).await.graphql().map(Into::into)
    }

    async fn departments(&self, ctx: &Context<'_>) -> Result<Vec<Department>> {
        let departments = core(ctx).organizations().departments(&caller(ctx)?).await.graphql()?;
        Ok(departments.into_iter().map(Into::into).collect())
    }

    async fn department(&self, ctx: &Context<'_>, id: ID) -> Result<Department> {
        let id = DepartmentId::parse(&id).graphql()?;
        core(ctx).organizations().department(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    async fn agents(&self, ctx: &Context<'_>) -> Result<Vec<Agent>> {
        let agents = core(ctx).agents().list(&caller(ctx)?).await.graphql()?;
        Ok(agents.into_iter().map(Into::into).collect())
    }

    async fn agent(&self, ctx: &Context<'_>, id: ID) -> Result<Agent> {
        let id = AgentId::parse(&id).graphql()?;
        core(ctx).agents().get(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// The organization's API keys (admins), newest first.
    async fn api_keys(&self, ctx: &Context<'_>) -> Result<Vec<ApiKey>> {
        let keys = core(ctx).api_keys().list(&caller(ctx)?).await.graphql()?;
        Ok(keys.into_iter().map(Into::into).collect())
    }
}
