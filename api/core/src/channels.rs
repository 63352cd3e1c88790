//! Channels: the business's accounts on a provider, whatever the provider —
//! status, agents, visibility, icons, sealed credentials, webhook URLs. What
//! is one provider's own (LINE's credentials, modes, plans, quota) lives in
//! its module under [`crate::providers`] (LINE's, WeChat's).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use madoguchi_entity::{agents, channel_agents, channels, chats};
use sea_orm::sea_query::LockType;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::Core;
use crate::auth::{Caller, Permission};
use crate::bounds;
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{AgentId, ChannelId, DepartmentId, OrganizationId};
use crate::kinds::{ChannelKind, ChannelStatus, ChatStatus, MissedCloseWindow};
use crate::providers::line::accounts::LineChannel;
use crate::providers::wechat::accounts::WechatChannel;
use crate::secrets::{SealedAt, Secret};
use crate::timers::ChannelTimers;

/// A channel as the API shows it; secrets masked.
#[derive(Clone, Debug, PartialEq)]
pub struct Channel {
    pub id: ChannelId,
    pub organization_id: OrganizationId,
    pub kind: ChannelKind,
    pub name: String,
    pub department_id: DepartmentId,
    pub status: ChannelStatus,
    pub has_icon: bool,
    pub line: Option<LineChannel>,
    pub wechat: Option<WechatChannel>,
    pub timers: ChannelTimers,
    /// Where the provider must deliver webhooks (none for the partner channel).
    pub webhook_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A channel icon: at most 1 MB, JPEG or PNG (checked by content, not name).
#[derive(Clone, Debug)]
pub struct Icon {
    bytes: Bytes,
    extension: &'static str,
}

impl Icon {
    pub const MAX_BYTES: usize = 1024 * 1024;

    pub fn parse(bytes: Bytes) -> Result<Self> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(Error::invalid_argument("an icon may be at most 1 MB"));
        }
        let extension = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "jpg"
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "png"
        } else {
            return Err(Error::invalid_argument("an icon must be a JPEG or PNG image"));
        };
        Ok(Self { bytes, extension })
    }
}

/// Refuses a deleted channel: deleting is final.
fn not_deleted(row: channels::Model) -> Result<channels::Model> {
    if row.status == ChannelStatus::Deleted.as_str() {
        return Err(Error::failed_precondition("the channel is deleted"));
    }
    Ok(row)
}

/// Channel use cases.
#[derive(Debug, Clone, Copy)]
pub struct Channels<'a> {
    pub(crate) core: &'a Core,
}

impl<'a> Channels<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Disables, enables or deletes a channel (admins). Deleting is final:
    /// chats stay readable, nothing can be sent.
    pub async fn set_status(&self, caller: &Caller, id: ChannelId, status: ChannelStatus) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let existing = not_deleted(self.locked(&write, organization_id, id).await?)?;
        let mut row: channels::ActiveModel = existing.into();
        row.status = Set(status.as_str().into());
        row.updated_at = Set(now);
        if status == ChannelStatus::Deleted {
            row.deleted_at = Set(Some(now));
        }
        let channel = self.channel_from_row(row.update(&*write).await?)?;
        write.append(organization_id, channel_event("channel.updated", &channel, now)).await?;
        write.commit().await?;
        Ok(channel)
    }

    /// Sets a channel's chat timers (admins). Chats open now are armed by
    /// the new settings in the same transaction, so they apply at once.
    pub async fn set_timers(&self, caller: &Caller, id: ChannelId, timers: ChannelTimers) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let existing = not_deleted(self.locked(&write, organization_id, id).await?)?;
        let mut row: channels::ActiveModel = existing.into();
        row.auto_ticket_after_secs = Set(timers.auto_ticket_after_secs);
        row.missed_close_after_secs = Set(timers.missed_close_after.map(MissedCloseWindow::seconds));
        row.idle_close_after_secs = Set(timers.idle_close_after_secs);
        row.updated_at = Set(now);
        let row = row.update(&*write).await?;
        let open = chats::Entity::find()
            .select_only()
            .column(chats::Column::Id)
            .filter(chats::Column::ChannelId.eq(row.id))
            .filter(chats::Column::Status.ne(ChatStatus::Completed.as_str()))
            // Armed in id order, as intake arms them.
            .order_by_asc(chats::Column::Id)
            .into_tuple::<uuid::Uuid>()
            .all(&*write)
            .await?;
        for chat_id in open {
            crate::timers::arm_in(&mut write, &row, chat_id, now).await?;
        }
        let channel = self.channel_from_row(row)?;
        write.append(organization_id, channel_event("channel.updated", &channel, now)).await?;
        write.commit().await?;
        Ok(channel)
    }

    /// Replaces the agents associated with a channel (admins).
    pub async fn set_agents(&self, caller: &Caller, id: ChannelId, agent_ids: &[AgentId]) -> Result<Vec<AgentId>> {
        caller.require(Permission::ManageChannels)?;
        bounds::listed_ids("agentIds", agent_ids)?;
        let organization_id = caller.organization_id();
        let mut wanted: Vec<AgentId> = agent_ids.to_vec();
        wanted.sort();
        wanted.dedup();
        let found = agents::Entity::find()
            .filter(agents::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(agents::Column::Id.is_in(wanted.iter().map(|id| id.uuid())))
            .count(self.core.db())
            .await?;
        if found as usize != wanted.len() {
            return Err(Error::not_found("agent"));
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // Replacements of one channel's agents queue on its row: two at
        // once would each delete only the rows they saw, leaving both lists.
        let channel = self.channel_from_row(self.locked(&write, organization_id, id).await?)?;
        channel_agents::Entity::delete_many()
            .filter(channel_agents::Column::ChannelId.eq(id.uuid()))
            .exec(&*write)
            .await?;
        if !wanted.is_empty() {
            channel_agents::Entity::insert_many(wanted.iter().map(|agent_id| channel_agents::ActiveModel {
                channel_id: Set(id.uuid()),
                agent_id: Set(agent_id.uuid()),
                created_at: Set(now),
            }))
            .exec_without_returning(&*write)
            .await?;
        }
        write.append(organization_id, channel_event("channel.agents_changed", &channel, now)).await?;
        write.commit().await?;
        Ok(wanted)
    }

    /// Returns the agents associated with a channel.
    pub async fn agents(&self, caller: &Caller, id: ChannelId) -> Result<Vec<AgentId>> {
        self.get(caller, id).await?;
        let rows = channel_agents::Entity::find()
            .filter(channel_agents::Column::ChannelId.eq(id.uuid()))
            .order_by_asc(channel_agents::Column::AgentId)
            .all(self.core.db())
            .await?;
        Ok(rows.into_iter().map(|row| row.agent_id.into()).collect())
    }

    /// Lists the channels the caller may see: admins all of the
    /// organization's, agents those they are associated with.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Channel>> {
        caller.require(Permission::ReadChats)?;
        let mut query = channels::Entity::find()
            .filter(channels::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .order_by_asc(channels::Column::Name);
        if let Some(visible) = self.visible_channel_ids(caller).await? {
            query = query.filter(channels::Column::Id.is_in(visible.into_iter().map(ChannelId::uuid)));
        }
        query.all(self.core.db()).await?.into_iter().map(|row| self.channel_from_row(row)).collect()
    }

    /// Returns a channel the caller may see.
    pub async fn get(&self, caller: &Caller, id: ChannelId) -> Result<Channel> {
        caller.require(Permission::ReadChats)?;
        let row = self.find(caller.organization_id(), id).await?;
        if let Some(visible) = self.visible_channel_ids(caller).await?
            && !visible.contains(&id)
        {
            return Err(Error::not_found("channel"));
        }
        self.channel_from_row(row)
    }

    /// Returns the channels an agent is associated with, or `None` when the
    /// caller sees every channel of the organization.
    pub async fn visible_channel_ids(&self, caller: &Caller) -> Result<Option<Vec<ChannelId>>> {
        match caller {
            Caller::Agent(agent) if !caller.is_admin() => {
                let rows = channel_agents::Entity::find()
                    .filter(channel_agents::Column::AgentId.eq(agent.agent_id.uuid()))
                    .all(self.core.db())
                    .await?;
                Ok(Some(rows.into_iter().map(|row| row.channel_id.into()).collect()))
            }
            _ => Ok(None),
        }
    }

    /// Returns the channel's icon bytes.
    pub async fn icon(&self, caller: &Caller, id: ChannelId) -> Result<Bytes> {
        self.get(caller, id).await?;
        let row = self.find(caller.organization_id(), id).await?;
        let key = row.icon_blob_key.ok_or_else(|| Error::not_found("icon"))?;
        self.core.blobs().get(&key).await
    }

    /// The channel, locked until `write` ends: the changes an admin makes
    /// to a channel (its status, timers, agents) read it and write it one
    /// after another, each from the row as the last one left it.
    async fn locked(
        &self,
        write: &Write<'_>,
        organization_id: OrganizationId,
        id: ChannelId,
    ) -> Result<channels::Model> {
        channels::Entity::find_by_id(id.uuid())
            .filter(channels::Column::OrganizationId.eq(organization_id.uuid()))
            .lock(LockType::NoKeyUpdate)
            .one(&**write)
            .await?
            .ok_or_else(|| Error::not_found("channel"))
    }

    pub(crate) async fn find(&self, organization_id: OrganizationId, id: ChannelId) -> Result<channels::Model> {
        channels::Entity::find_by_id(id.uuid())
            .filter(channels::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("channel"))
    }

    pub(crate) fn open(&self, row: &channels::Model, column: &str, sealed: Option<&[u8]>) -> Result<Secret<String>> {
        let sealed = sealed.ok_or_else(|| Error::failed_precondition(format!("the channel has no {column}")))?;
        self.core.secrets().open(sealed_at(row.organization_id.into(), row.id.into(), column), sealed)
    }

    pub(crate) fn seal(
        &self,
        organization_id: OrganizationId,
        id: ChannelId,
        column: &str,
        secret: &Secret<String>,
    ) -> Vec<u8> {
        self.core.secrets().seal(sealed_at(organization_id, id, column), secret.expose().as_bytes())
    }

    pub(crate) async fn store_icon(
        &self,
        organization_id: OrganizationId,
        id: ChannelId,
        icon: &Icon,
    ) -> Result<String> {
        let key = format!("{organization_id}/channels/{id}/icon-{}.{}", uuid::Uuid::new_v4().simple(), icon.extension);
        self.core.blobs().put(&key, icon.bytes.clone()).await?;
        Ok(key)
    }

    pub(crate) fn channel_from_row(&self, row: channels::Model) -> Result<Channel> {
        let kind = ChannelKind::parse(&row.kind)?;
        // The provider's own side of the channel, secrets masked.
        let (line, wechat) = match kind {
            ChannelKind::Line => (Some(self.line_view(&row)?), None),
            ChannelKind::Wechat => (None, Some(self.wechat_view(&row))),
            ChannelKind::Partner => (None, None),
        };
        let id: ChannelId = row.id.into();
        let timers = ChannelTimers::of(&row);
        Ok(Channel {
            id,
            organization_id: row.organization_id.into(),
            kind,
            name: row.name,
            department_id: row.department_id.into(),
            status: ChannelStatus::parse(&row.status)?,
            has_icon: row.icon_blob_key.is_some(),
            line,
            wechat,
            timers,
            webhook_url: (kind != ChannelKind::Partner)
                .then(|| format!("{}/webhooks/{}/{id}", self.core.public_base_url(), kind.as_str().to_lowercase())),
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A new, active channel row with nothing of any provider set and its
/// timers off: each provider's constructor sets its own columns on it.
pub(crate) fn new_channel_row(
    id: uuid::Uuid,
    organization_id: OrganizationId,
    kind: ChannelKind,
    name: &str,
    department_id: DepartmentId,
    now: DateTime<Utc>,
) -> channels::ActiveModel {
    channels::ActiveModel {
        id: Set(id),
        organization_id: Set(organization_id.uuid()),
        kind: Set(kind.as_str().into()),
        name: Set(name.into()),
        department_id: Set(department_id.uuid()),
        brand_id: Set(None),
        status: Set(ChannelStatus::Active.as_str().into()),
        icon_blob_key: Set(None),
        line_channel_id: Set(None),
        line_bot_user_id: Set(None),
        line_basic_id: Set(None),
        line_mode: Set(None),
        line_plan: Set(None),
        wechat_original_id: Set(None),
        wechat_app_id: Set(None),
        line_channel_secret: Set(None),
        line_access_token: Set(None),
        wechat_app_secret: Set(None),
        wechat_token: Set(None),
        wechat_encoding_aes_key: Set(None),
        wechat_previous_encoding_aes_key: Set(None),
        auto_ticket_after_secs: Set(None),
        missed_close_after_secs: Set(None),
        idle_close_after_secs: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        deleted_at: Set(None),
    }
}

/// The channel a provider's webhook names, if it may still receive: of that
/// provider, not deleted, of an organization that is not disabled (one query).
pub(crate) async fn receiving_channel(core: &Core, id: ChannelId, kind: ChannelKind) -> Result<channels::Model> {
    let cache = core.receiving_channels();
    if let Some(channel) = cache.get(id, core.events().configuration_generation()) {
        return if channel.kind == kind.as_str() { Ok(channel) } else { Err(Error::not_found("channel")) };
    }
    // Read before the query: a change committed meanwhile leaves the
    // generation moved, and what this read is not cached.
    let generation = core.events().configuration_generation();
    let channel = channels::Entity::find_by_id(id.uuid())
        .filter(channels::Column::Status.ne(ChannelStatus::Deleted.as_str()))
        .filter(channels::Column::OrganizationId.in_subquery(crate::organizations::active_organization_ids()))
        .one(core.db())
        .await?
        .ok_or_else(|| Error::not_found("channel"))?;
    cache.put(channel.clone(), generation, core.events().configuration_generation());
    if channel.kind != kind.as_str() {
        return Err(Error::not_found("channel"));
    }
    Ok(channel)
}

/// The channels webhooks were delivered to lately, as intake reads them on
/// every delivery: a lookup saved per webhook. An entry goes when a channel
/// or organization event commits in this process, and after
/// [`ReceivingChannels::TTL`] in any case — the bound on how long a change
/// made on another replica takes to reach this one's webhooks.
#[derive(Debug, Default)]
pub(crate) struct ReceivingChannels {
    entries: std::sync::Mutex<ReceivingEntries>,
}

#[derive(Debug, Default)]
struct ReceivingEntries {
    /// The configuration generation the entries were read at.
    generation: u64,
    channels: std::collections::HashMap<ChannelId, (channels::Model, std::time::Instant)>,
}

impl ReceivingChannels {
    /// How long an entry is trusted.
    pub(crate) const TTL: std::time::Duration = std::time::Duration::from_secs(1);
    /// Most channels kept: beyond, the cache starts over.
    const CAPACITY: usize = 10_000;

    /// The channel, if it was read at configuration `current` (the
    /// generation now) less than [`Self::TTL`] ago.
    fn get(&self, id: ChannelId, current: u64) -> Option<channels::Model> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.generation != current {
            return None;
        }
        let (channel, read_at) = entries.channels.get(&id)?;
        (read_at.elapsed() < Self::TTL).then(|| channel.clone())
    }

    /// Keeps `channel`, read at configuration `generation`, if nothing
    /// changed since (`current` is the generation now).
    fn put(&self, channel: channels::Model, generation: u64, current: u64) {
        if generation != current {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if generation < entries.generation {
            return;
        }
        if entries.generation != generation || entries.channels.len() >= Self::CAPACITY {
            entries.channels.clear();
            entries.generation = generation;
        }
        entries.channels.insert(channel.id.into(), (channel, std::time::Instant::now()));
    }
}

fn sealed_at(organization_id: OrganizationId, id: ChannelId, column: &str) -> SealedAt<'_> {
    SealedAt { organization_id: organization_id.uuid(), table: "channels", row_id: id.uuid(), column }
}

pub(crate) fn channel_event(kind: &'static str, channel: &Channel, now: DateTime<Utc>) -> NewEvent {
    NewEvent::new(kind, json!({"channelId": channel.id, "name": channel.name, "status": channel.status}), now)
        .in_channel(channel.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_checked_by_content_and_size() {
        assert!(Icon::parse(Bytes::from_static(b"\x89PNG\r\n\x1a\nrest")).is_ok());
        assert!(Icon::parse(Bytes::from_static(&[0xFF, 0xD8, 0xFF, 0xE0])).is_ok());
        assert!(Icon::parse(Bytes::from_static(b"GIF89a")).is_err());
        let mut big = vec![0xFF, 0xD8, 0xFF];
        big.resize(Icon::MAX_BYTES + 1, 0);
        assert!(Icon::parse(Bytes::from(big)).is_err());
    }
}
