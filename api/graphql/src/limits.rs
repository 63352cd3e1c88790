//! Limits async-graphql does not have built in: the number of aliases in one
//! operation (many aliases of one expensive field multiply its cost while
//! staying shallow), and one `login` per request (aliases would otherwise
//! multiply password guesses).

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Refuses documents with more than a number of aliased fields.
#[derive(Clone, Copy, Debug)]
pub struct AliasLimit(pub usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for AliasLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.0 {
            return Err(ServerError::new(format!("too many aliases: {aliases}, at most {}", self.0), None));
        }
        Ok(document)
    }
}

/// Refuses documents that ask for `login` more than once.
#[derive(Clone, Copy, Debug)]
pub struct OneLoginPerRequest;

impl ExtensionFactory for OneLoginPerRequest {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for OneLoginPerRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if count_fields_named(&document, "login") > 1 {
            return Err(ServerError::new("one login per request", None));
        }
        Ok(document)
    }
}

/// Returns how many fields called `name` a document selects, aliased or not,
/// fragments included.
pub fn count_fields_named(document: &ExecutableDocument, name: &str) -> usize {
    fn in_set(set: &SelectionSet, name: &str) -> usize {
        set.items
            .iter()
            .map(|selection| match &selection.node {
                Selection::Field(field) => {
                    usize::from(field.node.name.node.as_str() == name) + in_set(&field.node.selection_set.node, name)
                }
                Selection::InlineFragment(fragment) => in_set(&fragment.node.selection_set.node, name),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize =
        document.operations.iter().map(|(_, operation)| in_set(&operation.node.selection_set.node, name)).sum();
    let fragments: usize =
        document.fragments.values().map(|fragment| in_set(&fragment.node.selection_set.node, name)).sum();
    operations + fragments
}

/// Returns how many aliased fields a document has, fragments included.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    let operations: usize =
        document.operations.iter().map(|(_, operation)| in_set(&operation.node.selection_set.node)).sum();
    let fragments: usize = document.fragments.values().map(|fragment| in_set(&fragment.node.selection_set.node)).sum();
    operations + fragments
}

fn in_set(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => usize::from(field.node.alias.is_some()) + in_set(&field.node.selection_set.node),
            Selection::InlineFragment(fragment) => in_set(&fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let document = async_graphql::parser::parse_query(
            "query { a: me { id } b: me { x: id } ...F } fragment F on Query { c: organization { name } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&document), 4);
    }

    #[test]
    fn logins_are_counted_under_aliases_and_in_fragments() {
        let count = |query: &str| count_fields_named(&async_graphql::parser::parse_query(query).unwrap(), "login");
        assert_eq!(count("mutation { login(input: {}) { token } }"), 1);
        assert_eq!(count("mutation { a: login(input: {}) { token } b: login(input: {}) { token } }"), 2);
        assert_eq!(
            count("mutation { a: login(input: {}) { token } ...F } fragment F on Mutation { login { token } }"),
            2
        );
        assert_eq!(count("query { me { id } }"), 0);
    }
}
