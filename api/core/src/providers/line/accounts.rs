//! LINE's side of a channel: its credentials (checked with LINE before
//! anything is stored, sealed at rest, shown masked), reply/push mode and
//! plan, the monthly push quota and its reconciliation with LINE's count.

use chrono::{DateTime, Utc};
use madoguchi_channels::line::client::{AccessToken, LineError};
use madoguchi_entity::{channel_agents, channels, push_usage};
use sea_orm::sea_query::{Alias, Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::auth::{Caller, Permission};
use crate::channels::{Channel, Channels, Icon, channel_event, new_channel_row};
use crate::error::{Error, Result};
use crate::ids::{ChannelId, DepartmentId};
use crate::kinds::{ChannelKind, ChannelStatus, LineMode, LinePlan};
use crate::organizations::Name;
use crate::secrets::{Secret, mask};

/// The LINE side of a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChannel {
    pub channel_id: String,
    /// The bot's user id: the `destination` of its webhooks.
    pub bot_user_id: Option<String>,
    /// The account's basic id (`@…`), for friend-add links.
    pub basic_id: Option<String>,
    pub mode: LineMode,
    pub plan: LinePlan,
    pub channel_secret_masked: String,
    pub access_token_masked: String,
}

/// The settings LINE needs on the account, in the LINE Developers console
/// and the LINE Official Account Manager.
pub const LINE_SETUP: &[&str] = &[
    "Messaging API > Webhook settings: paste the webhook URL, press Verify, turn on \"Use webhook\"",
    "Response settings: Chat off (agents answer here, not in the LINE app)",
    "Response settings: Greeting message off",
    "Response settings: Auto-response messages off",
];

/// A LINE channel ID: digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineChannelId(String);

impl LineChannelId {
    pub fn parse(text: &str) -> Result<Self> {
        let id = text.trim();
        if id.is_empty() || id.len() > 20 || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid_argument("a LINE channel ID is a number like 1234567890"));
        }
        Ok(Self(id.to_owned()))
    }
}

/// A LINE channel secret: 32 hexadecimal characters.
#[derive(Clone, Debug)]
pub struct LineChannelSecret(Secret<String>);

impl LineChannelSecret {
    pub fn parse(text: &str) -> Result<Self> {
        let secret = text.trim();
        if secret.len() != 32 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid_argument("a LINE channel secret is 32 hexadecimal characters"));
        }
        Ok(Self(Secret::new(secret.to_owned())))
    }
}

/// A LINE channel access token (long-lived).
#[derive(Clone, Debug)]
pub struct LineAccessToken(Secret<String>);

impl LineAccessToken {
    pub fn parse(text: &str) -> Result<Self> {
        let token = text.trim();
        if token.is_empty() || token.len() > 2048 || token.chars().any(char::is_whitespace) {
            return Err(Error::invalid_argument("the channel access token is empty or malformed"));
        }
        Ok(Self(Secret::new(token.to_owned())))
    }
}

/// A new LINE channel.
#[derive(Clone, Debug)]
pub struct CreateLineChannel {
    pub name: Name,
    pub icon: Option<Icon>,
    pub line_channel_id: LineChannelId,
    pub channel_secret: LineChannelSecret,
    pub access_token: LineAccessToken,
    pub department_id: DepartmentId,
    pub mode: LineMode,
    pub plan: LinePlan,
}

/// Changes to a LINE channel; `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct UpdateLineChannel {
    pub name: Option<Name>,
    pub icon: Option<Icon>,
    pub channel_secret: Option<LineChannelSecret>,
    pub access_token: Option<LineAccessToken>,
    /// Changing the department removes the channel's agent associations.
    pub department_id: Option<DepartmentId>,
    pub mode: Option<LineMode>,
    pub plan: Option<LinePlan>,
}

/// Pushed messages of one channel in one calendar month (Japan time).
#[derive(Clone, Debug, PartialEq)]
pub struct PushUsage {
    /// `YYYY-MM`.
    pub month: String,
    pub pushed: i64,
    pub limit: i64,
    /// LINE's own count at the last reconciliation.
    pub reconciled_total: Option<i64>,
    pub reconciled_at: Option<DateTime<Utc>>,
}

const SECRET_COLUMN: &str = "line_channel_secret";
const TOKEN_COLUMN: &str = "line_access_token";

impl<'a> Channels<'a> {
    /// Connects a LINE Official Account (admins). The access token is
    /// checked against LINE first; nothing is stored if LINE refuses it.
    pub async fn create_line_channel(&self, caller: &Caller, command: CreateLineChannel) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        self.core.organizations().find_department(organization_id, command.department_id).await?;
        let bot = self.check_line_token(&command.access_token).await?;
        let id = ChannelId::generate();
        let now = self.core.now();
        let icon_blob_key = match &command.icon {
            Some(icon) => Some(self.store_icon(organization_id, id, icon).await?),
            None => None,
        };
        let mut write = self.core.write().await?;
        let row = channels::ActiveModel {
            icon_blob_key: Set(icon_blob_key),
            line_channel_id: Set(Some(command.line_channel_id.0.clone())),
            line_bot_user_id: Set(Some(bot.user_id)),
            line_basic_id: Set(Some(bot.basic_id)),
            line_mode: Set(Some(command.mode.as_str().into())),
            line_plan: Set(Some(command.plan.as_str().into())),
            line_channel_secret: Set(Some(self.seal(organization_id, id, SECRET_COLUMN, &command.channel_secret.0))),
            line_access_token: Set(Some(self.seal(organization_id, id, TOKEN_COLUMN, &command.access_token.0))),
            ..new_channel_row(
                id.uuid(),
                organization_id,
                ChannelKind::Line,
                command.name.as_str(),
                command.department_id,
                now,
            )
        }
        .insert(&*write)
        .await?;
        let channel = self.channel_from_row(row)?;
        write.append(organization_id, channel_event("channel.created", &channel, now)).await?;
        write.commit().await?;
        Ok(channel)
    }

    /// Changes a LINE channel (admins). A new access token is checked
    /// against LINE; a new department removes the agent associations.
    pub async fn update_line_channel(
        &self,
        caller: &Caller,
        id: ChannelId,
        command: UpdateLineChannel,
    ) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let existing = self.find(organization_id, id).await?;
        if existing.status == ChannelStatus::Deleted.as_str() {
            return Err(Error::failed_precondition("the channel is deleted"));
        }
        if let Some(department_id) = command.department_id {
            self.core.organizations().find_department(organization_id, department_id).await?;
        }
        let bot = match &command.access_token {
            Some(token) => Some(self.check_line_token(token).await?),
            None => None,
        };
        let icon_blob_key = match &command.icon {
            Some(icon) => Some(self.store_icon(organization_id, id, icon).await?),
            None => None,
        };
        let now = self.core.now();
        let department_changes = command.department_id.is_some_and(|d| d.uuid() != existing.department_id);
        let mut write = self.core.write().await?;
        let mut row: channels::ActiveModel = existing.into();
        if let Some(name) = command.name {
            row.name = Set(name.as_str().into());
        }
        if let Some(key) = icon_blob_key {
            row.icon_blob_key = Set(Some(key));
        }
        if let Some(secret) = &command.channel_secret {
            row.line_channel_secret = Set(Some(self.seal(organization_id, id, SECRET_COLUMN, &secret.0)));
        }
        if let (Some(token), Some(bot)) = (&command.access_token, bot) {
            row.line_access_token = Set(Some(self.seal(organization_id, id, TOKEN_COLUMN, &token.0)));
            row.line_bot_user_id = Set(Some(bot.user_id));
            row.line_basic_id = Set(Some(bot.basic_id));
        }
        if let Some(department_id) = command.department_id {
            row.department_id = Set(department_id.uuid());
        }
        if let Some(mode) = command.mode {
            row.line_mode = Set(Some(mode.as_str().into()));
        }
        if let Some(plan) = command.plan {
            row.line_plan = Set(Some(plan.as_str().into()));
        }
        row.updated_at = Set(now);
        let channel = self.channel_from_row(row.update(&*write).await?)?;
        if department_changes {
            channel_agents::Entity::delete_many()
                .filter(channel_agents::Column::ChannelId.eq(id.uuid()))
                .exec(&*write)
                .await?;
            write.append(organization_id, channel_event("channel.agents_changed", &channel, now)).await?;
        }
        write.append(organization_id, channel_event("channel.updated", &channel, now)).await?;
        write.commit().await?;
        Ok(channel)
    }

    /// Returns this month's push usage of a LINE channel.
    pub async fn push_usage(&self, caller: &Caller, id: ChannelId) -> Result<PushUsage> {
        let channel = self.get(caller, id).await?;
        let plan = channel
            .line
            .as_ref()
            .map(|line| line.plan)
            .ok_or_else(|| Error::failed_precondition("not a LINE channel"))?;
        let month = japan_month(self.core.now());
        let row = push_usage::Entity::find_by_id((id.uuid(), month.clone())).one(self.core.db()).await?;
        Ok(PushUsage {
            month,
            pushed: row.as_ref().map_or(0, |row| row.pushed),
            limit: plan.monthly_pushes(),
            reconciled_total: row.as_ref().and_then(|row| row.reconciled_total),
            reconciled_at: row.and_then(|row| row.reconciled_at),
        })
    }

    /// Asks LINE how many messages the account sent this month and records
    /// it beside our own count; the allowance check uses the larger.
    pub async fn reconcile_push_usage(&self, caller: &Caller, id: ChannelId) -> Result<PushUsage> {
        caller.require(Permission::ManageChannels)?;
        let row = self.find(caller.organization_id(), id).await?;
        self.reconcile(&row).await?;
        self.push_usage(caller, id).await
    }

    /// Records LINE's count of this month's messages. The figure is stamped
    /// with when it was asked for, and only a figure asked for later
    /// replaces it: a reading that comes back late (a slow answer, a worker
    /// that stalled) never overwrites a newer one.
    pub(crate) async fn reconcile(&self, row: &channels::Model) -> Result<()> {
        let token = self.line_token(row)?;
        let now = self.core.now();
        let total = self
            .core
            .line()
            .quota_consumption(&token)
            .await
            .map_err(|error| Error::unavailable(format!("cannot read the quota from LINE: {error}")))?;
        let month = japan_month(now);
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        // Written only over a reading asked for earlier (or none).
        let reconciled_at = Expr::col((push_usage::Entity, push_usage::Column::ReconciledAt));
        let asked_at = Expr::col((Alias::new("excluded"), push_usage::Column::ReconciledAt));
        let reconciled = push_usage::Entity::insert(push_usage::ActiveModel {
            channel_id: Set(row.id),
            month: Set(month),
            pushed: Set(0),
            reconciled_total: Set(Some(total)),
            reconciled_at: Set(Some(now)),
            updated_at: Set(now),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([push_usage::Column::ChannelId, push_usage::Column::Month])
                .update_columns([
                    push_usage::Column::ReconciledTotal,
                    push_usage::Column::ReconciledAt,
                    push_usage::Column::UpdatedAt,
                ])
                .action_and_where(reconciled_at.clone().is_null().or(reconciled_at.lt(asked_at)))
                .to_owned(),
        );
        self.core.write_alone(reconciled).await.map(drop)
    }

    /// Opens a LINE channel's secret, for verifying its webhooks.
    pub(crate) fn line_secret(&self, row: &channels::Model) -> Result<Secret<String>> {
        self.open(row, SECRET_COLUMN, row.line_channel_secret.as_deref())
    }

    /// Opens a LINE channel's access token, for calling LINE.
    pub(crate) fn line_token(&self, row: &channels::Model) -> Result<AccessToken> {
        self.open(row, TOKEN_COLUMN, row.line_access_token.as_deref())
            .map(|token| AccessToken::new(token.expose().clone()))
    }

    async fn check_line_token(&self, token: &LineAccessToken) -> Result<madoguchi_channels::line::client::BotInfo> {
        let token = AccessToken::new(token.0.expose().clone());
        self.core.line().bot_info(&token).await.map_err(|error| match error {
            LineError::Api { status, .. } if status.is_client_error() => {
                Error::invalid_argument(format!("LINE rejected the channel access token: {error}"))
            }
            other => Error::unavailable(format!("cannot check the credentials with LINE: {other}")),
        })
    }

    /// The LINE side of a channel row, secrets masked.
    pub(crate) fn line_view(&self, row: &channels::Model) -> Result<LineChannel> {
        Ok(LineChannel {
            channel_id: row.line_channel_id.clone().unwrap_or_default(),
            bot_user_id: row.line_bot_user_id.clone(),
            basic_id: row.line_basic_id.clone(),
            mode: LineMode::parse(row.line_mode.as_deref().unwrap_or("REPLY"))?,
            plan: LinePlan::parse(row.line_plan.as_deref().unwrap_or("FREE"))?,
            channel_secret_masked: self.line_secret(row).map(|s| mask(s.expose())).unwrap_or_default(),
            access_token_masked: self.line_token(row).map(|t| mask(t.expose_secret())).unwrap_or_default(),
        })
    }
}

/// Returns the calendar month in Japan time (`YYYY-MM`), LINE's quota period.
pub fn japan_month(now: DateTime<Utc>) -> String {
    let japan = chrono::FixedOffset::east_opt(9 * 3600).expect("+09:00 is a valid offset");
    now.with_timezone(&japan).format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_month_turns_at_midnight_japan_time() {
        let before = DateTime::parse_from_rfc3339("2026-11-30T14:59:59Z").unwrap().with_timezone(&Utc);
        let after = DateTime::parse_from_rfc3339("2026-11-30T15:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(japan_month(before), "2026-11");
        assert_eq!(japan_month(after), "2026-12");
    }

    #[test]
    fn credentials_are_checked_for_shape() {
        assert!(LineChannelSecret::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(LineChannelSecret::parse("not hex at all, not 32 chars").is_err());
        assert!(LineChannelId::parse("1234567890").is_ok());
        assert!(LineChannelId::parse("12ab").is_err());
        assert!(LineAccessToken::parse("with space").is_err());
    }
}
