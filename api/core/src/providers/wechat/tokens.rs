//! One WeChat access token per channel, shared by every server process on
//! the database: sealed in `provider_tokens`, used until a margin before
//! WeChat's expiry, and refreshed by whichever process takes the row lease
//! (a conditional update) — the others keep using the old token while it is
//! valid, or wait for the new one. A token WeChat refuses (`40001`, `42001`)
//! is dropped only if it is still the stored one, so a process never drops
//! the fresh token another just fetched.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use madoguchi_channels::wechat::client::{IssuedToken, WechatAccessToken, WechatError, codes};
use madoguchi_entity::{channels, provider_tokens};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use crate::Core;
use crate::error::{Error, Result};
use crate::secrets::SealedAt;

/// How long one process may hold the refresh before another takes over.
const REFRESH_LEASE: Duration = Duration::seconds(30);
/// How long a process waits for another's refresh before giving up: longer
/// than the lease, so a holder that died is taken over rather than given up on.
const WAIT_FOR_REFRESH: StdDuration = StdDuration::from_secs(40);
const WAIT_STEP: StdDuration = StdDuration::from_millis(25);

/// A token as it is stored: the sealed bytes identify it when dropping.
#[derive(Clone, Debug)]
pub(crate) struct HeldToken {
    pub token: WechatAccessToken,
    sealed: Vec<u8>,
}

/// The access tokens of WeChat channels.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens<'a> {
    core: &'a Core,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Returns the channel's token, fetching a new one when none is usable.
    pub(crate) async fn get(&self, channel: &channels::Model) -> Result<HeldToken> {
        let started = tokio::time::Instant::now();
        loop {
            let now = self.core.now();
            let row = self.row(channel, now).await?;
            if let Some(held) = self.usable(channel, &row, now)? {
                return Ok(held);
            }
            if let Some(holder) = self.take_lease(channel, now).await? {
                // Dropped while WeChat still considers it current: ask for a
                // new one, not the same.
                let force = row.sealed_token.is_none() && row.expires_at.is_some_and(|at| at > now);
                let lease = LeaseGuard { core: self.core.clone(), channel_id: channel.id, holder, armed: true };
                if let Some(held) = self.refresh(channel, lease, force).await? {
                    return Ok(held);
                }
                // Another process took the lease over meanwhile: use its token.
                continue;
            }
            if started.elapsed() > WAIT_FOR_REFRESH {
                return Err(Error::unavailable("another server is still fetching the WeChat access token"));
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// Drops `held` after WeChat refused it, unless another process already
    /// replaced it.
    pub(crate) async fn drop_refused(&self, channel: &channels::Model, held: &HeldToken) -> Result<()> {
        let forget = provider_tokens::Entity::update_many()
            .col_expr(provider_tokens::Column::SealedToken, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(provider_tokens::Column::UpdatedAt, Expr::value(self.core.now()))
            .filter(provider_tokens::Column::ChannelId.eq(channel.id))
            .filter(provider_tokens::Column::SealedToken.eq(held.sealed.clone()));
        self.core.write_alone(forget).await.map(drop)
    }

    /// Stores a token just fetched (at channel creation, say), replacing
    /// whatever was there, in the caller's transaction.
    pub(crate) async fn store(
        &self,
        db: &impl ConnectionTrait,
        channel: &channels::Model,
        issued: &IssuedToken,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let sealed = self.seal(channel, &issued.token);
        provider_tokens::Entity::insert(provider_tokens::ActiveModel {
            channel_id: Set(channel.id),
            sealed_token: Set(Some(sealed)),
            expires_at: Set(Some(use_until(issued, now))),
            refresh_holder: Set(None),
            refresh_until: Set(None),
            refreshes: Set(1),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(provider_tokens::Column::ChannelId)
                .update_columns([
                    provider_tokens::Column::SealedToken,
                    provider_tokens::Column::ExpiresAt,
                    provider_tokens::Column::RefreshHolder,
                    provider_tokens::Column::RefreshUntil,
                    provider_tokens::Column::UpdatedAt,
                ])
                .value(
                    provider_tokens::Column::Refreshes,
                    Expr::col((provider_tokens::Entity, provider_tokens::Column::Refreshes)).add(1),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        Ok(())
    }

    async fn row(&self, channel: &channels::Model, now: DateTime<Utc>) -> Result<provider_tokens::Model> {
        let find = || provider_tokens::Entity::find_by_id(channel.id);
        if let Some(row) = find().one(self.core.db()).await? {
            return Ok(row);
        }
        let empty = provider_tokens::Entity::insert(provider_tokens::ActiveModel {
            channel_id: Set(channel.id),
            sealed_token: Set(None),
            expires_at: Set(None),
            refresh_holder: Set(None),
            refresh_until: Set(None),
            refreshes: Set(0),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::column(provider_tokens::Column::ChannelId).do_nothing().to_owned());
        self.core.write_alone(empty).await?;
        find().one(self.core.db()).await?.ok_or_else(|| Error::not_found("channel"))
    }

    fn usable(
        &self,
        channel: &channels::Model,
        row: &provider_tokens::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<HeldToken>> {
        match (&row.sealed_token, row.expires_at) {
            (Some(sealed), Some(until)) if until > now => {
                let token = self.core.secrets().open(sealed_at(channel), sealed)?;
                Ok(Some(HeldToken { token: WechatAccessToken::new(token.expose().clone()), sealed: sealed.clone() }))
            }
            _ => Ok(None),
        }
    }

    /// Takes the refresh lease if no one holds it; returns the holder's name.
    async fn take_lease(&self, channel: &channels::Model, now: DateTime<Utc>) -> Result<Option<String>> {
        let holder = uuid::Uuid::new_v4().to_string();
        let take = provider_tokens::Entity::update_many()
            .col_expr(provider_tokens::Column::RefreshHolder, Expr::value(holder.clone()))
            .col_expr(provider_tokens::Column::RefreshUntil, Expr::value(now + REFRESH_LEASE))
            .filter(provider_tokens::Column::ChannelId.eq(channel.id))
            .filter(
                Condition::any()
                    .add(provider_tokens::Column::RefreshUntil.is_null())
                    .add(provider_tokens::Column::RefreshUntil.lt(now)),
            )
            // Someone may have stored a fresh token since this process looked.
            .filter(
                Condition::any()
                    .add(provider_tokens::Column::SealedToken.is_null())
                    .add(provider_tokens::Column::ExpiresAt.is_null())
                    .add(provider_tokens::Column::ExpiresAt.lte(now)),
            );
        let taken = self.core.write_alone(take).await?;
        Ok((taken == 1).then_some(holder))
    }

    /// Fetches and stores a token under `lease`; `None` when the lease was
    /// lost meanwhile (the fetched token is then not used: the stored one is).
    async fn refresh(
        &self,
        channel: &channels::Model,
        mut lease: LeaseGuard,
        force: bool,
    ) -> Result<Option<HeldToken>> {
        // The lease is given back on every way out: an error, a panic, the
        // job's future dropped when its own lease is lost.
        let issued = self.fetch(channel, force).await?;
        let now = self.core.now();
        let sealed = self.seal(channel, &issued.token);
        let store = provider_tokens::Entity::update_many()
            .col_expr(provider_tokens::Column::SealedToken, Expr::value(sealed.clone()))
            .col_expr(provider_tokens::Column::ExpiresAt, Expr::value(use_until(&issued, now)))
            .col_expr(provider_tokens::Column::RefreshHolder, Expr::value(Option::<String>::None))
            .col_expr(provider_tokens::Column::RefreshUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(provider_tokens::Column::Refreshes, Expr::col(provider_tokens::Column::Refreshes).add(1))
            .col_expr(provider_tokens::Column::UpdatedAt, Expr::value(now))
            .filter(provider_tokens::Column::ChannelId.eq(channel.id))
            .filter(provider_tokens::Column::RefreshHolder.eq(lease.holder.clone()));
        let stored = self.core.write_alone(store).await?;
        lease.armed = false;
        if stored != 1 {
            return Ok(None);
        }
        tracing::info!(channel = %channel.id, "fetched a new wechat access token");
        Ok(Some(HeldToken { token: issued.token, sealed }))
    }

    async fn fetch(&self, channel: &channels::Model, force: bool) -> Result<IssuedToken> {
        let app_id = channel.wechat_app_id.clone().unwrap_or_default();
        let secret = self.core.channels().wechat_app_secret(channel)?;
        self.core.wechat().stable_token(&app_id, secret.expose(), force).await.map_err(token_error)
    }

    fn seal(&self, channel: &channels::Model, token: &WechatAccessToken) -> Vec<u8> {
        self.core.secrets().seal(sealed_at(channel), token.expose_secret().as_bytes())
    }
}

/// A held refresh lease, given back when dropped unless it was used up.
struct LeaseGuard {
    core: Core,
    channel_id: uuid::Uuid,
    holder: String,
    armed: bool,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (core, channel_id, holder) = (self.core.clone(), self.channel_id, std::mem::take(&mut self.holder));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let release = provider_tokens::Entity::update_many()
                .col_expr(provider_tokens::Column::RefreshHolder, Expr::value(Option::<String>::None))
                .col_expr(provider_tokens::Column::RefreshUntil, Expr::value(Option::<DateTime<Utc>>::None))
                .filter(provider_tokens::Column::ChannelId.eq(channel_id))
                .filter(provider_tokens::Column::RefreshHolder.eq(holder));
            let released = core.write_alone(release).await;
            if let Err(error) = released {
                tracing::warn!(channel = %channel_id, %error, "cannot give back a token refresh lease; it lapses");
            }
        });
    }
}

/// What a failure to get a token means to the caller: WeChat refusing the
/// account (`FAILED_PRECONDITION`, saying what to fix) or WeChat not
/// answering now (`UNAVAILABLE`, worth retrying).
pub(crate) fn token_error(error: WechatError) -> Error {
    match error.errcode() {
        _ if error.may_pass_when_repeated() || error.errcode().is_none() => {
            Error::unavailable(format!("cannot get an access token from WeChat now: {error}"))
        }
        Some(codes::IP_NOT_ALLOWED) => Error::failed_precondition(format!(
            "WeChat refuses this server's address: add the channel's outbound IP addresses to the account's IP \
             allow-list ({error})"
        )),
        _ => Error::failed_precondition(format!("WeChat refused the account's AppID and AppSecret: {error}")),
    }
}

/// When to stop using a token: five minutes before WeChat's expiry, or a
/// tenth of its life for short-lived ones.
fn use_until(issued: &IssuedToken, now: DateTime<Utc>) -> DateTime<Utc> {
    let life = Duration::from_std(issued.expires_in).unwrap_or(Duration::hours(2));
    let margin = Duration::minutes(5).min(life / 10);
    now + life - margin
}

fn sealed_at(channel: &channels::Model) -> SealedAt<'_> {
    SealedAt {
        organization_id: channel.organization_id,
        table: "provider_tokens",
        row_id: channel.id,
        column: "sealed_token",
    }
}
