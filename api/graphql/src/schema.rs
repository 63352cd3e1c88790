//! Building the schema, with the limits that keep one query from taking the
//! server down.

use async_graphql::Schema;
use madoguchi_core::Core;

use async_graphql::{MergedObject, MergedSubscription};

use crate::limits::AliasLimit;

use crate::mutation::OrganizationMutation;
use crate::query::OrganizationQuery;
use crate::subscription::OrganizationSubscription;
use crate::workspace::{WorkspaceMutation, WorkspaceQuery, WorkspaceSubscription};

#[derive(MergedObject, Default, Debug)]
pub struct Query(OrganizationQuery, WorkspaceQuery);

#[derive(MergedObject, Default, Debug)]
pub struct Mutation(OrganizationMutation, WorkspaceMutation);

#[derive(MergedSubscription, Default, Debug)]
pub struct Subscription(OrganizationSubscription, WorkspaceSubscription);

/// The schema served on `/graphql`.
pub type MadoguchiSchema = Schema<Query, Mutation, Subscription>;

/// Limits applied to every operation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: 12, max_complexity: 1_000, max_aliases: 30, introspection: true }
    }
}

/// Builds the schema over a core.
pub fn build_schema(core: Core, limits: Limits) -> MadoguchiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .data(core)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .extension(AliasLimit(limits.max_aliases));
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// Returns the SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).finish().sdl()
}
