//! Building the schema, with the limits that keep one query from taking the
//! server down.

use async_graphql::Schema;
use madoguchi_core::Core;

use crate::mutation::Mutation;
use crate::query::Query;
use crate::subscription::Subscription;

/// The schema served on `/graphql`.
pub type MadoguchiSchema = Schema<Query, Mutation, Subscription>;

/// Limits applied to every operation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_depth: 12, max_complexity: 1_000, introspection: true }
    }
}

/// Builds the schema over a core.
pub fn build_schema(core: Core, limits: Limits) -> MadoguchiSchema {
    let mut builder = Schema::build(Query, Mutation, Subscription)
        .data(core)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// Returns the SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query, Mutation, Subscription).finish().sdl()
}
