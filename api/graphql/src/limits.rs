//! Limits async-graphql does not have built in: the number of aliases in one
//! operation (many aliases of one expensive field multiply its cost while
//! staying shallow), and one `login` per request (aliases would otherwise
//! multiply password guesses).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Field, Selection, SelectionSet};
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

/// Returns how many fields called `name` a document would execute, aliased
/// or not, fragments included as often as they are spread.
pub fn count_fields_named(document: &ExecutableDocument, name: &str) -> usize {
    count_executed(document, &|field| usize::from(field.name.node.as_str() == name))
}

/// Returns how many aliased fields a document would execute, fragments
/// included as often as they are spread.
pub fn count_aliases(document: &ExecutableDocument) -> usize {
    count_executed(document, &|field| usize::from(field.alias.is_some()))
}

/// Sums `counts` over every field the document's operations would run. A
/// fragment counts once per spread (spreading one fragment many times
/// multiplies what it holds, so counting its definition once would let a
/// limit be passed), each fragment is walked once, and fragments spreading
/// each other in a cycle (which validation refuses afterwards) add nothing
/// more. The sum saturates rather than overflow on nested spreads.
fn count_executed(document: &ExecutableDocument, counts: &dyn Fn(&Field) -> usize) -> usize {
    struct Counter<'a> {
        document: &'a ExecutableDocument,
        counts: &'a dyn Fn(&Field) -> usize,
        fragments: HashMap<&'a str, usize>,
        walking: HashSet<&'a str>,
    }
    impl<'a> Counter<'a> {
        fn set(&mut self, set: &'a SelectionSet) -> usize {
            set.items.iter().fold(0, |sum: usize, selection| {
                let count = match &selection.node {
                    Selection::Field(field) => {
                        (self.counts)(&field.node).saturating_add(self.set(&field.node.selection_set.node))
                    }
                    Selection::InlineFragment(fragment) => self.set(&fragment.node.selection_set.node),
                    Selection::FragmentSpread(spread) => self.fragment(spread.node.fragment_name.node.as_str()),
                };
                sum.saturating_add(count)
            })
        }

        fn fragment(&mut self, name: &'a str) -> usize {
            if let Some(count) = self.fragments.get(name) {
                return *count;
            }
            let Some(fragment) = self.document.fragments.get(name) else { return 0 };
            if !self.walking.insert(name) {
                return 0;
            }
            let count = self.set(&fragment.node.selection_set.node);
            self.walking.remove(name);
            self.fragments.insert(name, count);
            count
        }
    }
    let mut counter = Counter { document, counts, fragments: HashMap::new(), walking: HashSet::new() };
    document
        .operations
        .iter()
        .fold(0, |sum: usize, (_, operation)| sum.saturating_add(counter.set(&operation.node.selection_set.node)))
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
        // A fragment counts as often as it is spread, nested spreads too.
        let spread = "mutation { ...F ...F ...F } fragment F on Mutation { login(input: {}) { token } }";
        assert_eq!(count(spread), 3);
        let nested = "mutation { ...G ...G } fragment G on Mutation { ...F ...F } \
                      fragment F on Mutation { login(input: {}) { token } }";
        assert_eq!(count(nested), 4);
    }

    #[test]
    fn spreads_multiply_aliases_and_cycles_or_bombs_end() {
        let document = async_graphql::parser::parse_query(
            "query { ...F ...F ...F } fragment F on Query { a: me { id } b: me { id } }",
        )
        .unwrap();
        assert_eq!(count_aliases(&document), 6);
        let cycle = async_graphql::parser::parse_query(
            "query { ...A } fragment A on Query { x: me { id } ...B } fragment B on Query { y: me { id } ...A }",
        )
        .unwrap();
        assert_eq!(count_aliases(&cycle), 2);
        // Sixty-four levels of fragments each spreading the one below twice:
        // 2^64 aliases, counted in linear time, saturated.
        let mut bomb = String::from("query { ...F64 } fragment F0 on Query { a: me { id } }");
        for level in 1..=64 {
            bomb.push_str(&format!(" fragment F{level} on Query {{ ...F{} ...F{} }}", level - 1, level - 1));
        }
        let document = async_graphql::parser::parse_query(&bomb).unwrap();
        assert_eq!(count_aliases(&document), usize::MAX);
    }
}
