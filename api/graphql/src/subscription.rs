//! Subscriptions, served over graphql-transport-ws on `/graphql/ws`.

use async_graphql::{Context, Result, Subscription};
use futures::{Stream, StreamExt};
use madoguchi_core::Error;

use crate::context::{OrGraphql, caller, core, to_graphql};
use crate::types::Event;

#[derive(Default, Debug)]
pub struct OrganizationSubscription;

/// Parses a cursor given by a client; absent means "from now on".
pub(crate) fn parse_cursor(after: Option<&str>) -> madoguchi_core::Result<Option<i64>> {
    after
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|cursor| *cursor >= 0)
                .ok_or_else(|| Error::invalid_argument("malformed cursor"))
        })
        .transpose()
}

#[Subscription]
impl OrganizationSubscription {
    /// Every event of the organization's log (admins): organization,
    /// department, agent and API key changes. With `after`, replays what
    /// followed that cursor first, then continues live.
    async fn organization_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let caller = caller(ctx)?;
        let after = parse_cursor(after.as_deref()).graphql()?;
        // Boxed while it runs, as `chatEvents` is: the subscription's stream
        // keeps this future for as long as it lives.
        let events = Box::pin(core(ctx).follow_organization_log(&caller, after)).await.graphql()?;
        Ok(events.map(|event| event.map(Event::from).map_err(to_graphql)))
    }
}
