//! Limits async-graphql does not have built in: the number of aliases in one
//! operation (many aliases of one expensive field multiply its cost while
//! staying shallow).

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
}
