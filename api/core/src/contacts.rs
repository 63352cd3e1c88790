//! Contacts (customer records), linking end users to them, and one-time
//! passcodes a customer sends to the official account to link themselves.

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{contacts, end_users, passcodes};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use crate::Core;
use crate::auth::{Caller, Email, Permission};
use crate::bounds;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{ChatId, ContactId, OrganizationId};
use crate::jobs::{JobKind, Lease, NewJob, Outcome};
use crate::organizations::Name;

/// How long a passcode lives when the agent gives no lifetime, in minutes.
pub const DEFAULT_PASSCODE_MINUTES: i64 = 30;
/// The longest a passcode may live, in minutes (7 days).
pub const MAX_PASSCODE_MINUTES: i64 = 7 * 24 * 60;

/// A customer record.
#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    pub id: ContactId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub account_name: Option<String>,
    pub sla_name: Option<String>,
    pub contract_name: Option<String>,
    pub owner_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields of a contact; on update, `None` keeps a field.
#[derive(Clone, Debug, Default)]
pub struct ContactFields {
    pub name: Option<Name>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub account_name: Option<String>,
    pub sla_name: Option<String>,
    pub contract_name: Option<String>,
    pub owner_name: Option<String>,
}

impl ContactFields {
    /// Checks the free-text labels (the name, email and phone are checked
    /// as they are parsed).
    fn check(&self) -> Result<()> {
        for (field, value) in [
            ("accountName", &self.account_name),
            ("slaName", &self.sla_name),
            ("contractName", &self.contract_name),
            ("ownerName", &self.owner_name),
        ] {
            if let Some(value) = value {
                bounds::short_text(field, value)?;
            }
        }
        Ok(())
    }
}

/// A phone number: digits with an optional leading `+`, separators dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(text: &str) -> Result<Self> {
        let trimmed = text.trim();
        let plus = trimmed.starts_with('+');
        let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
        let only_separators = trimmed.chars().all(|c| c.is_ascii_digit() || " -()+.".contains(c));
        if !only_separators || !(4..=20).contains(&digits.len()) {
            return Err(Error::invalid_argument(format!("{text:?} is not a phone number")));
        }
        Ok(Self(if plus { format!("+{digits}") } else { digits }))
    }
}

/// A passcode as customers type it: `@` then three digits, a hyphen, three digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passcode(String);

impl Passcode {
    /// Returns the passcode a message consists of, if it is one.
    pub fn recognise(text: &str) -> Option<Self> {
        let text = text.trim();
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 8
            && bytes[0] == b'@'
            && bytes[4] == b'-'
            && bytes[1..4].iter().chain(&bytes[5..8]).all(u8::is_ascii_digit);
        shaped.then(|| Self(text.to_owned()))
    }

    fn generate() -> Self {
        use rand::Rng;
        let number: u32 = rand::rng().random_range(0..1_000_000);
        Self(format!("@{:03}-{:03}", number / 1000, number % 1000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A passcode issued for a contact.
#[derive(Clone, Debug, PartialEq)]
pub struct IssuedPasscode {
    pub code: String,
    pub contact_id: ContactId,
    pub expires_at: DateTime<Utc>,
}

/// Contact use cases.
#[derive(Debug, Clone, Copy)]
pub struct Contacts<'a> {
    core: &'a Core,
}

impl<'a> Contacts<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    pub async fn create(&self, caller: &Caller, fields: ContactFields) -> Result<Contact> {
        caller.require(Permission::WriteChats)?;
        fields.check()?;
        let name = fields.name.clone().ok_or_else(|| Error::invalid_argument("a contact needs a name"))?;
        let now = self.core.now();
        let organization_id = caller.organization_id();
        let mut write = self.core.write().await?;
        let row = contacts::ActiveModel {
            id: Set(ContactId::generate().uuid()),
            organization_id: Set(organization_id.uuid()),
            name: Set(name.as_str().into()),
            email: Set(fields.email.map(|email| email.as_str().into())),
            phone: Set(fields.phone.map(|phone| phone.0)),
            account_name: Set(fields.account_name),
            sla_name: Set(fields.sla_name),
            contract_name: Set(fields.contract_name),
            owner_name: Set(fields.owner_name),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&*write)
        .await?;
        write.append(organization_id, NewEvent::new("contact.created", json!({"contactId": row.id}), now)).await?;
        write.commit().await?;
        Ok(row.into())
    }

    pub async fn update(&self, caller: &Caller, id: ContactId, fields: ContactFields) -> Result<Contact> {
        caller.require(Permission::WriteChats)?;
        fields.check()?;
        let existing = self.find(caller.organization_id(), id).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let mut row: contacts::ActiveModel = existing.into();
        if let Some(name) = fields.name {
            row.name = Set(name.as_str().into());
        }
        if let Some(email) = fields.email {
            row.email = Set(Some(email.as_str().into()));
        }
        if let Some(phone) = fields.phone {
            row.phone = Set(Some(phone.0));
        }
        for (value, column) in [
            (fields.account_name, &mut row.account_name),
            (fields.sla_name, &mut row.sla_name),
            (fields.contract_name, &mut row.contract_name),
            (fields.owner_name, &mut row.owner_name),
        ] {
            if let Some(value) = value {
                *column = Set(Some(value));
            }
        }
        row.updated_at = Set(now);
        let row = row.update(&*write).await?;
        write
            .append(caller.organization_id(), NewEvent::new("contact.updated", json!({"contactId": row.id}), now))
            .await?;
        write.commit().await?;
        Ok(row.into())
    }

    pub async fn get(&self, caller: &Caller, id: ContactId) -> Result<Contact> {
        caller.require(Permission::ReadChats)?;
        self.find(caller.organization_id(), id).await.map(Into::into)
    }

    /// Searches contacts by part of the name, email or phone, or by id.
    pub async fn search(&self, caller: &Caller, text: &str, limit: u64) -> Result<Vec<Contact>> {
        caller.require(Permission::ReadChats)?;
        let text = text.trim();
        bounds::short_text("text", text)?;
        let mut condition = Condition::any()
            .add(contacts::Column::Name.contains(text))
            .add(contacts::Column::Email.contains(text.to_lowercase()))
            .add(contacts::Column::Phone.contains(text));
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 3 && text.chars().all(|c| c.is_ascii_digit() || " -()+.".contains(c)) {
            // Phones are stored as digits: "1234-5678" finds "+819012345678".
            condition = condition.add(contacts::Column::Phone.contains(digits));
        }
        if let Ok(id) = ContactId::parse(text) {
            condition = condition.add(contacts::Column::Id.eq(id.uuid()));
        }
        let rows = contacts::Entity::find()
            .filter(contacts::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .filter(condition)
            .order_by_asc(contacts::Column::Name)
            .limit(limit.clamp(1, 100))
            .all(self.core.db())
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Links the consumer of a chat to a contact (or unlinks with `None`).
    pub async fn link_chat(
        &self,
        caller: &Caller,
        chat_id: ChatId,
        contact_id: Option<ContactId>,
    ) -> Result<crate::chats::Chat> {
        caller.require(Permission::WriteChats)?;
        let chat = self.core.chats().visible(caller, chat_id).await?;
        if let Some(contact_id) = contact_id {
            self.find(caller.organization_id(), contact_id).await?;
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        end_users::Entity::update_many()
            .col_expr(end_users::Column::ContactId, Expr::value(contact_id.map(ContactId::uuid)))
            .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
            .filter(end_users::Column::Id.eq(chat.end_user_id))
            .exec(&*write)
            .await?;
        let chat = self.core.chats().append_chat_event(&mut write, chat_id, "end_user.linked", now).await?;
        write.commit().await?;
        Ok(chat)
    }

    /// Issues a one-time passcode for a contact, valid for `valid_for`.
    pub async fn issue_passcode(
        &self,
        caller: &Caller,
        contact_id: ContactId,
        valid_minutes: Option<i64>,
    ) -> Result<IssuedPasscode> {
        caller.require(Permission::WriteChats)?;
        let valid_minutes = valid_minutes.unwrap_or(DEFAULT_PASSCODE_MINUTES);
        if !(1..=MAX_PASSCODE_MINUTES).contains(&valid_minutes) {
            return Err(Error::invalid_argument("a passcode is valid for 1 minute up to 7 days"));
        }
        let valid_for = Duration::minutes(valid_minutes);
        let organization_id = caller.organization_id();
        self.find(organization_id, contact_id).await?;
        let now = self.core.now();
        let expires_at = now + valid_for;
        // A handful of tries: collisions with live codes are rare.
        for _ in 0..8 {
            let code = Passcode::generate();
            let mut write = self.core.write().await?;
            // An expired, unused code may be reissued.
            passcodes::Entity::delete_many()
                .filter(passcodes::Column::OrganizationId.eq(organization_id.uuid()))
                .filter(passcodes::Column::Code.eq(code.as_str()))
                .filter(passcodes::Column::ExpiresAt.lte(now))
                .exec(&*write)
                .await?;
            let inserted = passcodes::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                organization_id: Set(organization_id.uuid()),
                contact_id: Set(contact_id.uuid()),
                code: Set(code.as_str().into()),
                expires_at: Set(expires_at),
                used_at: Set(None),
                used_by_end_user_id: Set(None),
                created_by_agent_id: Set(caller.agent().map(|agent| agent.agent_id.uuid())),
                created_at: Set(now),
            }
            .insert(&*write)
            .await;
            match inserted {
                Ok(row) => {
                    // Its code is freed when it expires unused.
                    let mut job = NewJob::new(JobKind::PasscodeExpire { passcode_id: row.id }, expires_at);
                    job.organization_id = Some(organization_id);
                    write.enqueue(job, now).await?;
                    write.commit().await?;
                    return Ok(IssuedPasscode { code: code.as_str().into(), contact_id, expires_at });
                }
                Err(error) => match Error::from(error) {
                    error if error.code() == crate::ErrorCode::Conflict => continue,
                    error => return Err(error),
                },
            }
        }
        Err(Error::unavailable("could not find a free passcode; try again"))
    }

    /// Expires a passcode that was never used: it is deleted, freeing its
    /// code, with a `passcode.expired` event. A used one stays, as the record
    /// of who linked whom.
    pub(crate) async fn expire_passcode(&self, lease: &Lease, id: uuid::Uuid) -> Result<Outcome> {
        let Some(passcode) = passcodes::Entity::find_by_id(id).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        let now = self.core.now();
        if passcode.used_at.is_some() {
            return Ok(Outcome::Done);
        }
        if passcode.expires_at > now {
            return Ok(Outcome::Later(passcode.expires_at));
        }
        let mut write = self.core.write().await?.fenced_by(Some(lease));
        let deleted = passcodes::Entity::delete_many()
            .filter(passcodes::Column::Id.eq(id))
            .filter(passcodes::Column::UsedAt.is_null())
            .exec(&*write)
            .await?;
        if deleted.rows_affected == 1 {
            let payload = json!({"passcodeId": id, "contactId": passcode.contact_id, "code": passcode.code});
            write.append(passcode.organization_id.into(), NewEvent::new("passcode.expired", payload, now)).await?;
        }
        write.commit().await?;
        Ok(Outcome::Done)
    }

    async fn find(&self, organization_id: OrganizationId, id: ContactId) -> Result<contacts::Model> {
        contacts::Entity::find_by_id(id.uuid())
            .filter(contacts::Column::OrganizationId.eq(organization_id.uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("contact"))
    }
}

impl From<contacts::Model> for Contact {
    fn from(row: contacts::Model) -> Self {
        Self {
            id: row.id.into(),
            organization_id: row.organization_id.into(),
            name: row.name,
            email: row.email,
            phone: row.phone,
            account_name: row.account_name,
            sla_name: row.sla_name,
            contract_name: row.contract_name,
            owner_name: row.owner_name,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passcodes_are_recognised_only_in_their_exact_shape() {
        assert_eq!(Passcode::recognise(" @105-908 ").unwrap().as_str(), "@105-908");
        for text in ["@105908", "105-908", "@10-5908", "@105-90a", "hello @105-908"] {
            assert!(Passcode::recognise(text).is_none(), "{text:?}");
        }
        assert!(Passcode::recognise(Passcode::generate().as_str()).is_some());
    }

    #[test]
    fn phone_numbers_keep_digits_and_a_leading_plus() {
        assert_eq!(Phone::parse("+81 (3) 1234-5678").unwrap().0, "+81312345678");
        assert!(Phone::parse("call me").is_err());
    }
}
