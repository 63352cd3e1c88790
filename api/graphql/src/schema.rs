//! Building the schema, with the limits that keep one query from taking the
//! server down.

use async_graphql::Schema;
use madoguchi_core::Core;

use async_graphql::{MergedObject, MergedSubscription};

use crate::helpdesk::{HelpdeskMutation, HelpdeskQuery, TicketMutation, TicketQuery};
use crate::limits::{AliasLimit, OneLoginPerRequest};

use crate::mutation::OrganizationMutation;
use crate::query::OrganizationQuery;
use crate::shared_events::{SharedPayloads, SharedSubscriptions};
use crate::subscription::OrganizationSubscription;
use crate::workspace::{WorkspaceMutation, WorkspaceQuery, WorkspaceSubscription};

#[derive(MergedObject, Default, Debug)]
pub struct Query(OrganizationQuery, WorkspaceQuery, HelpdeskQuery, TicketQuery);

#[derive(MergedObject, Default, Debug)]
pub struct Mutation(OrganizationMutation, WorkspaceMutation, HelpdeskMutation, TicketMutation);

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
        Self { max_depth: 12, max_complexity: 5_000, max_aliases: 30, introspection: true }
    }
}

/// How deep an introspection-only operation may nest: GraphiQL's
/// introspection query follows `ofType` well past any depth an ordinary
/// operation needs, and answering it reads no data.
const INTROSPECTION_MAX_DEPTH: usize = 32;

/// The schema for ordinary operations and, when introspection is on, one
/// that answers introspection-only operations with a deeper depth limit.
#[derive(Clone)]
pub struct Schemas {
    operations: MadoguchiSchema,
    introspection: Option<MadoguchiSchema>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas").field("introspection", &self.introspection.is_some()).finish_non_exhaustive()
    }
}

impl Schemas {
    /// Builds both schemas over a core.
    pub fn build(core: Core, limits: Limits) -> Self {
        let introspection = limits.introspection.then(|| {
            let limits = Limits { max_depth: limits.max_depth.max(INTROSPECTION_MAX_DEPTH), ..limits };
            build_schema(core.clone(), limits)
        });
        Self { operations: build_schema(core, limits), introspection }
    }

    /// The schema for ordinary operations (and subscriptions).
    pub fn operations(&self) -> &MadoguchiSchema {
        &self.operations
    }

    /// What runs a WebSocket's operations: the operations schema, with
    /// `chatEvents` payloads shared between subscribers ([`SharedSubscriptions`]).
    pub fn subscriptions(&self) -> SharedSubscriptions {
        SharedSubscriptions::new(self.operations.clone())
    }

    /// The schema that executes `query`: the introspection one when every
    /// selected top-level field is `__schema`, `__type` or `__typename`.
    pub fn for_query(&self, query: &str, operation_name: Option<&str>) -> &MadoguchiSchema {
        match &self.introspection {
            Some(introspection) if is_introspection_only(query, operation_name) => introspection,
            _ => &self.operations,
        }
    }
}

/// Whether the operation to run selects only introspection fields at its
/// top level (fragments at the top level do not count as such).
pub fn is_introspection_only(query: &str, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
    let Ok(document) = async_graphql::parser::parse_query(query) else { return false };
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => operation,
        (DocumentOperations::Single(_), Some(_)) => return false,
        (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
            Some(operation) => operation,
            None => return false,
        },
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().expect("one operation")
        }
        (DocumentOperations::Multiple(_), None) => return false,
    };
    let operation = &operation.node;
    operation.ty == OperationType::Query
        && !operation.selection_set.node.items.is_empty()
        && operation.selection_set.node.items.iter().all(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type" | "__typename")
            }
            _ => false,
        })
}

/// Builds the schema over a core.
pub fn build_schema(core: Core, limits: Limits) -> MadoguchiSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), Subscription::default())
        .data(core)
        .data(SharedPayloads::default())
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .extension(AliasLimit(limits.max_aliases))
        .extension(OneLoginPerRequest);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// Returns the SDL of the schema, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), Subscription::default()).finish().sdl()
}

#[cfg(test)]
mod tests {
    use super::is_introspection_only;

    #[test]
    fn only_operations_selecting_introspection_fields_alone_are_introspection() {
        assert!(is_introspection_only("{ __schema { types { name } } }", None));
        assert!(is_introspection_only("query IntrospectionQuery { __schema { queryType { name } } }", None));
        assert!(is_introspection_only("query A { me { id } } query B { __type(name: \"Agent\") { name } }", Some("B")));
        assert!(!is_introspection_only("query A { me { id } } query B { __typename }", Some("A")));
        assert!(!is_introspection_only("query A { me { id } } query B { __typename }", None));
        assert!(!is_introspection_only("{ __schema { types { name } } me { id } }", None));
        assert!(!is_introspection_only("{ ...F } fragment F on Query { __typename }", None));
        assert!(!is_introspection_only("mutation { __typename }", None));
        assert!(!is_introspection_only("{ __schema", None));
        assert!(!is_introspection_only("{ __typename }", Some("Other")));
    }
}
