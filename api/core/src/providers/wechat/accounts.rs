//! WeChat's side of a channel: the Official Account's Original ID, AppID and
//! AppSecret (checked by fetching an access token before anything is
//! stored), the callback Token and EncodingAESKey the platform generates (or
//! the admin brings from an account configured elsewhere), shown once and
//! masked after, and the key rotation WeChat's console does: the previous
//! key keeps decrypting until the admin confirms the new one is live.

use madoguchi_channels::wechat::client::codes;
use madoguchi_channels::wechat::crypto::EncodingAesKey;
use madoguchi_entity::{channel_agents, channels};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::auth::{Caller, Permission};
use crate::channels::{Channel, Channels, Icon, channel_event, new_channel_row};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{ChannelId, DepartmentId, OrganizationId};
use crate::kinds::{ChannelKind, ChannelStatus};
use crate::organizations::Name;
use crate::providers::wechat::tokens::Tokens;
use crate::secrets::{Secret, mask};

/// The WeChat side of a channel, secrets masked.
#[derive(Clone, Debug, PartialEq)]
pub struct WechatChannel {
    pub original_id: String,
    pub app_id: String,
    pub app_secret_masked: String,
    pub token_masked: String,
    pub encoding_aes_key_masked: String,
    /// A rotated key is not yet confirmed: the previous one still decrypts.
    pub previous_key_accepted: bool,
    /// The addresses to put on the account's IP allow-list.
    pub outbound_ips: Vec<String>,
}

/// What WeChat's console needs, in the order it asks (Settings and
/// Development > Basic configuration).
pub const WECHAT_SETUP: &[&str] = &[
    "Basic configuration > IP allow-list: add every outbound IP address shown",
    "Server configuration > Modify: paste the callback URL as URL, the Token and the EncodingAESKey",
    "Message encryption mode: Secure mode (plaintext and compatible modes also work)",
    "Submit (WeChat verifies the URL now), then Enable the server configuration",
];

/// A new channel's callback secrets, shown this once.
#[derive(Clone, Debug)]
pub struct WechatChannelCreated {
    pub channel: Channel,
    pub token: Secret<String>,
    pub encoding_aes_key: Secret<String>,
}

/// An Original ID: `gh_` and the account's letters and digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WechatOriginalId(String);

impl WechatOriginalId {
    pub fn parse(text: &str) -> Result<Self> {
        let id = text.trim();
        let rest = id.strip_prefix("gh_").unwrap_or_default();
        if rest.len() < 6 || rest.len() > 32 || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid_argument("a WeChat Original ID looks like gh_1a2b3c4d5e6f"));
        }
        Ok(Self(id.to_owned()))
    }
}

/// An AppID: `wx` and 16 hexadecimal characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WechatAppId(String);

impl WechatAppId {
    pub fn parse(text: &str) -> Result<Self> {
        let id = text.trim();
        let rest = id.strip_prefix("wx").unwrap_or_default();
        if rest.len() != 16 || !rest.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid_argument("a WeChat AppID is wx and 16 hexadecimal characters"));
        }
        Ok(Self(id.to_owned()))
    }
}

/// An AppSecret: 32 hexadecimal characters.
#[derive(Clone, Debug)]
pub struct WechatAppSecret(Secret<String>);

impl WechatAppSecret {
    pub fn parse(text: &str) -> Result<Self> {
        let secret = text.trim();
        if secret.len() != 32 || !secret.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::invalid_argument("a WeChat AppSecret is 32 hexadecimal characters"));
        }
        Ok(Self(Secret::new(secret.to_owned())))
    }
}

/// The callback Token: 3 to 32 letters and digits, as WeChat's console allows.
#[derive(Clone, Debug)]
pub struct WechatToken(Secret<String>);

impl WechatToken {
    pub fn parse(text: &str) -> Result<Self> {
        let token = text.trim();
        if !(3..=32).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid_argument("a WeChat Token is 3 to 32 letters and digits"));
        }
        Ok(Self(Secret::new(token.to_owned())))
    }

    /// A new random Token of 32 letters and digits.
    pub fn generate() -> Self {
        let token: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
        Self(Secret::new(token))
    }
}

/// An EncodingAESKey given by an admin: 43 characters of base64, decoded
/// leniently as WeChat does (published keys have non-zero trailing bits).
#[derive(Clone, Debug)]
pub struct WechatEncodingAesKey(EncodingAesKey);

impl WechatEncodingAesKey {
    pub fn parse(text: &str) -> Result<Self> {
        EncodingAesKey::parse(text.trim())
            .map(Self)
            .map_err(|_| Error::invalid_argument("an EncodingAESKey is 43 characters of base64 (A–Z, a–z, 0–9, +, /)"))
    }
}

/// The callback secrets of an account that is already configured elsewhere.
#[derive(Clone, Debug)]
pub struct ExistingCallback {
    pub token: WechatToken,
    pub encoding_aes_key: WechatEncodingAesKey,
}

/// A new WeChat channel.
#[derive(Clone, Debug)]
pub struct CreateWechatChannel {
    pub name: Name,
    pub icon: Option<Icon>,
    pub original_id: WechatOriginalId,
    pub app_id: WechatAppId,
    pub app_secret: WechatAppSecret,
    pub department_id: DepartmentId,
    /// `None`: the platform generates a Token and an EncodingAESKey.
    pub existing: Option<ExistingCallback>,
}

/// Changes to a WeChat channel; `None` keeps a field. The account itself
/// (AppID, Original ID) is not changed: consumers' OpenIDs belong to it, so
/// another account is another channel.
#[derive(Clone, Debug, Default)]
pub struct UpdateWechatChannel {
    pub name: Option<Name>,
    pub icon: Option<Icon>,
    /// Checked with WeChat before it is stored (after a reset in the console).
    pub app_secret: Option<WechatAppSecret>,
    /// Changing the department removes the channel's agent associations.
    pub department_id: Option<DepartmentId>,
}

const APP_SECRET_COLUMN: &str = "wechat_app_secret";
const TOKEN_COLUMN: &str = "wechat_token";
const KEY_COLUMN: &str = "wechat_encoding_aes_key";
const PREVIOUS_KEY_COLUMN: &str = "wechat_previous_encoding_aes_key";

impl<'a> Channels<'a> {
    /// Connects a WeChat Official Account (admins). AppID and AppSecret are
    /// checked by fetching an access token (kept for sending); nothing is
    /// stored if WeChat refuses them. Returns the callback Token and
    /// EncodingAESKey to paste into WeChat's console, shown only now.
    pub async fn create_wechat_channel(
        &self,
        caller: &Caller,
        command: CreateWechatChannel,
    ) -> Result<WechatChannelCreated> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        self.core.organizations().find_department(organization_id, command.department_id).await?;
        let issued = self.check_wechat_app(&command.app_id, &command.app_secret).await?;
        let (token, key) = match command.existing {
            Some(existing) => (existing.token, existing.encoding_aes_key.0),
            None => (WechatToken::generate(), EncodingAesKey::generate()),
        };
        let key_text = Secret::new(key.expose_text().to_owned());
        let id = ChannelId::generate();
        let now = self.core.now();
        let icon_blob_key = match &command.icon {
            Some(icon) => Some(self.store_icon(organization_id, id, icon).await?),
            None => None,
        };
        let mut write = self.core.write().await?;
        let row = channels::ActiveModel {
            icon_blob_key: Set(icon_blob_key),
            wechat_original_id: Set(Some(command.original_id.0.clone())),
            wechat_app_id: Set(Some(command.app_id.0.clone())),
            wechat_app_secret: Set(Some(self.seal(organization_id, id, APP_SECRET_COLUMN, &command.app_secret.0))),
            wechat_token: Set(Some(self.seal(organization_id, id, TOKEN_COLUMN, &token.0))),
            wechat_encoding_aes_key: Set(Some(self.seal(organization_id, id, KEY_COLUMN, &key_text))),
            ..new_channel_row(
                id.uuid(),
                organization_id,
                ChannelKind::Wechat,
                command.name.as_str(),
                command.department_id,
                now,
            )
        }
        .insert(&*write)
        .await?;
        Tokens::new(self.core).store(&*write, &row, &issued, now).await?;
        let channel = self.channel_from_row(row)?;
        write.append(organization_id, channel_event("channel.created", &channel, now)).await?;
        write.commit().await?;
        Ok(WechatChannelCreated { channel, token: token.0, encoding_aes_key: key_text })
    }

    /// Changes a WeChat channel (admins). A new AppSecret is checked with
    /// WeChat, and the token fetched with it replaces the stored one.
    pub async fn update_wechat_channel(
        &self,
        caller: &Caller,
        id: ChannelId,
        command: UpdateWechatChannel,
    ) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let existing = self.find_wechat(organization_id, id).await?;
        if let Some(department_id) = command.department_id {
            self.core.organizations().find_department(organization_id, department_id).await?;
        }
        let issued = match &command.app_secret {
            Some(secret) => {
                let app_id = WechatAppId(existing.wechat_app_id.clone().unwrap_or_default());
                Some(self.check_wechat_app(&app_id, secret).await?)
            }
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
        if let Some(secret) = &command.app_secret {
            row.wechat_app_secret = Set(Some(self.seal(organization_id, id, APP_SECRET_COLUMN, &secret.0)));
        }
        if let Some(department_id) = command.department_id {
            row.department_id = Set(department_id.uuid());
        }
        row.updated_at = Set(now);
        let updated = row.update(&*write).await?;
        if let Some(issued) = &issued {
            Tokens::new(self.core).store(&*write, &updated, issued, now).await?;
        }
        let channel = self.channel_from_row(updated)?;
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

    /// Generates a new EncodingAESKey (admins), returned only now; the
    /// current one keeps decrypting until [`Self::confirm_wechat_key`].
    /// Rotating again before confirming replaces the new key, keeping the
    /// one that is live at WeChat as the previous.
    pub async fn rotate_wechat_key(&self, caller: &Caller, id: ChannelId) -> Result<(Channel, Secret<String>)> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let existing = self.find_wechat(organization_id, id).await?;
        let key = EncodingAesKey::generate();
        let key_text = Secret::new(key.expose_text().to_owned());
        let now = self.core.now();
        let previous = match existing.wechat_previous_encoding_aes_key.clone() {
            Some(_) => existing.wechat_previous_encoding_aes_key.clone(),
            // Re-sealed under its own column's name.
            None => {
                let current = self.open(&existing, KEY_COLUMN, existing.wechat_encoding_aes_key.as_deref())?;
                Some(self.seal(organization_id, id, PREVIOUS_KEY_COLUMN, &current))
            }
        };
        let mut write = self.core.write().await?;
        // Conditional on the keys read: of two admins rotating at once, one
        // wins and the other is told, so no returned key goes unstored.
        let rotated = channels::Entity::update_many()
            .col_expr(
                channels::Column::WechatEncodingAesKey,
                Expr::value(self.seal(organization_id, id, KEY_COLUMN, &key_text)),
            )
            .col_expr(channels::Column::WechatPreviousEncodingAesKey, Expr::value(previous))
            .col_expr(channels::Column::UpdatedAt, Expr::value(now))
            .filter(channels::Column::Id.eq(id.uuid()))
            .filter(channels::Column::WechatEncodingAesKey.eq(existing.wechat_encoding_aes_key.clone()))
            .filter(match &existing.wechat_previous_encoding_aes_key {
                Some(previous) => channels::Column::WechatPreviousEncodingAesKey.eq(previous.clone()),
                None => channels::Column::WechatPreviousEncodingAesKey.is_null(),
            })
            .exec(&*write)
            .await?;
        if rotated.rows_affected != 1 {
            return Err(Error::aborted("the key was changed meanwhile: look at the channel again"));
        }
        let row =
            channels::Entity::find_by_id(id.uuid()).one(&*write).await?.ok_or_else(|| Error::not_found("channel"))?;
        let channel = self.channel_from_row(row)?;
        write.append(organization_id, channel_event("channel.updated", &channel, now)).await?;
        write.commit().await?;
        Ok((channel, key_text))
    }

    /// Stops accepting the key before the last rotation (admins): the admin
    /// has saved the new one in WeChat's console.
    pub async fn confirm_wechat_key(&self, caller: &Caller, id: ChannelId) -> Result<Channel> {
        caller.require(Permission::ManageChannels)?;
        let organization_id = caller.organization_id();
        let existing = self.find_wechat(organization_id, id).await?;
        if existing.wechat_previous_encoding_aes_key.is_none() {
            return Err(Error::failed_precondition("no EncodingAESKey rotation is waiting for confirmation"));
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // Conditional on the key the admin saw being the current one.
        let confirmed = channels::Entity::update_many()
            .col_expr(channels::Column::WechatPreviousEncodingAesKey, Expr::value(Option::<Vec<u8>>::None))
            .col_expr(channels::Column::UpdatedAt, Expr::value(now))
            .filter(channels::Column::Id.eq(id.uuid()))
            .filter(channels::Column::WechatEncodingAesKey.eq(existing.wechat_encoding_aes_key.clone()))
            .exec(&*write)
            .await?;
        if confirmed.rows_affected != 1 {
            return Err(Error::aborted("the key was changed meanwhile: look at the channel again"));
        }
        let row =
            channels::Entity::find_by_id(id.uuid()).one(&*write).await?.ok_or_else(|| Error::not_found("channel"))?;
        let channel = self.channel_from_row(row)?;
        write.append(organization_id, channel_event("channel.updated", &channel, now)).await?;
        write.commit().await?;
        Ok(channel)
    }

    async fn find_wechat(&self, organization_id: OrganizationId, id: ChannelId) -> Result<channels::Model> {
        let row = self.find(organization_id, id).await?;
        if row.kind != ChannelKind::Wechat.as_str() {
            return Err(Error::failed_precondition("not a WeChat channel"));
        }
        if row.status == ChannelStatus::Deleted.as_str() {
            return Err(Error::failed_precondition("the channel is deleted"));
        }
        Ok(row)
    }

    async fn check_wechat_app(
        &self,
        app_id: &WechatAppId,
        secret: &WechatAppSecret,
    ) -> Result<madoguchi_channels::wechat::client::IssuedToken> {
        self.core.wechat().stable_token(&app_id.0, secret.0.expose(), false).await.map_err(|error| {
            match crate::providers::wechat::tokens::token_error(error.clone()).code() {
                // The admin's input is what WeChat refused.
                ErrorCode::FailedPrecondition if error.errcode() != Some(codes::IP_NOT_ALLOWED) => {
                    Error::invalid_argument(format!("WeChat refused the AppID and AppSecret: {error}"))
                }
                _ => crate::providers::wechat::tokens::token_error(error),
            }
        })
    }

    /// Opens a WeChat channel's AppSecret, for fetching access tokens.
    pub(crate) fn wechat_app_secret(&self, row: &channels::Model) -> Result<Secret<String>> {
        self.open(row, APP_SECRET_COLUMN, row.wechat_app_secret.as_deref())
    }

    /// Opens the callback Token, for verifying signatures.
    pub(crate) fn wechat_token(&self, row: &channels::Model) -> Result<Secret<String>> {
        self.open(row, TOKEN_COLUMN, row.wechat_token.as_deref())
    }

    /// The keys that may decrypt callbacks: the current, then the previous
    /// while a rotation is unconfirmed.
    pub(crate) fn wechat_keys(&self, row: &channels::Model) -> Result<Vec<EncodingAesKey>> {
        let mut keys = Vec::with_capacity(2);
        let current = self.open(row, KEY_COLUMN, row.wechat_encoding_aes_key.as_deref())?;
        keys.push(EncodingAesKey::parse(current.expose()).map_err(Error::internal)?);
        if let Some(previous) = row.wechat_previous_encoding_aes_key.as_deref() {
            let previous = self.open(row, PREVIOUS_KEY_COLUMN, Some(previous))?;
            keys.push(EncodingAesKey::parse(previous.expose()).map_err(Error::internal)?);
        }
        Ok(keys)
    }

    /// The WeChat side of a channel row, secrets masked.
    pub(crate) fn wechat_view(&self, row: &channels::Model) -> WechatChannel {
        let masked = |column: &str, sealed: Option<&[u8]>| {
            self.open(row, column, sealed).map(|secret| mask(secret.expose())).unwrap_or_default()
        };
        WechatChannel {
            original_id: row.wechat_original_id.clone().unwrap_or_default(),
            app_id: row.wechat_app_id.clone().unwrap_or_default(),
            app_secret_masked: masked(APP_SECRET_COLUMN, row.wechat_app_secret.as_deref()),
            token_masked: masked(TOKEN_COLUMN, row.wechat_token.as_deref()),
            encoding_aes_key_masked: masked(KEY_COLUMN, row.wechat_encoding_aes_key.as_deref()),
            previous_key_accepted: row.wechat_previous_encoding_aes_key.is_some(),
            outbound_ips: self.core.outbound_ips().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_for_shape() {
        assert!(WechatAppId::parse("wx1234567890abcdef").is_ok());
        assert!(WechatAppId::parse("wx123").is_err());
        assert!(WechatAppSecret::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(WechatAppSecret::parse("short").is_err());
        assert!(WechatOriginalId::parse("gh_1a2b3c4d5e6f").is_ok());
        assert!(WechatOriginalId::parse("1a2b3c4d5e6f").is_err());
        assert!(WechatToken::parse("ab").is_err());
        assert!(WechatToken::parse("with space").is_err());
        assert_eq!(WechatToken::generate().0.expose().len(), 32);
        // Tencent's published sample key, trailing bits and all.
        assert!(WechatEncodingAesKey::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").is_ok());
        assert!(WechatEncodingAesKey::parse("too short").is_err());
    }
}
