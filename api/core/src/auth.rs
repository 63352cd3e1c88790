//! Who is calling, and what they may do.
//!
//! Agents log in with email and password (argon2) and carry a short-lived
//! JWT (HS256 pinned; `exp`, `iss` and `aud` checked). Partner systems carry
//! API keys: `mdg_<prefix>_<secret>`, of which only a SHA-256 digest and the
//! lookup prefix are stored. Every request becomes a [`Caller`], and every use
//! case asks the caller for a [`Permission`] before touching data.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::ids::{AgentId, ApiKeyId, OrganizationId};
use crate::secrets::{MasterKey, Secret};

/// An agent's role in their organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "ADMIN",
            Self::Agent => "AGENT",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "ADMIN" => Ok(Self::Admin),
            "AGENT" => Ok(Self::Agent),
            other => Err(Error::invalid_argument(format!("unknown role {other:?}"))),
        }
    }
}

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Read the organization, departments and agents.
    OrganizationRead,
    /// Manage departments.
    OrganizationWrite,
    /// Read chats and messages.
    ChatsRead,
    /// Claim, answer and complete chats.
    ChatsWrite,
    /// Read tickets.
    TicketsRead,
    /// Create and change tickets and the helpdesk link.
    TicketsWrite,
    /// Follow the event stream.
    EventsRead,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Self::OrganizationRead,
        Self::OrganizationWrite,
        Self::ChatsRead,
        Self::ChatsWrite,
        Self::TicketsRead,
        Self::TicketsWrite,
        Self::EventsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationRead => "organization:read",
            Self::OrganizationWrite => "organization:write",
            Self::ChatsRead => "chats:read",
            Self::ChatsWrite => "chats:write",
            Self::TicketsRead => "tickets:read",
            Self::TicketsWrite => "tickets:write",
            Self::EventsRead => "events:read",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| Error::invalid_argument(format!("unknown scope {text:?}")))
    }
}

/// A non-empty set of scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses scope names; at least one is required.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self> {
        let scopes = names.iter().map(|name| Scope::parse(name.as_ref().trim())).collect::<Result<BTreeSet<_>>>()?;
        if scopes.is_empty() {
            return Err(Error::invalid_argument("an api key needs at least one scope"));
        }
        Ok(Self(scopes))
    }

    pub(crate) fn from_stored(text: &str) -> Self {
        Self(text.split_whitespace().filter_map(|name| Scope::parse(name).ok()).collect())
    }

    pub(crate) fn to_stored(&self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

/// Something a caller may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ReadOrganization,
    ManageDepartments,
    ManageAgents,
    ManageApiKeys,
    ManageChannels,
    ReadChats,
    WriteChats,
    ReadTickets,
    WriteTickets,
    ReadEvents,
    /// Following the organization's whole event log (agent, API key and
    /// organization changes included): admins, and keys with `events:read`.
    FollowOrganizationLog,
    /// ZSC keys, the helpdesk link, its rule and department mapping:
    /// admins, and keys with `organization:write`.
    ManageHelpdesk,
}

/// An authenticated agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentCaller {
    pub organization_id: OrganizationId,
    pub agent_id: AgentId,
    pub role: Role,
    /// The agent's token version the session was issued at; a session whose
    /// agent has moved on (deactivated, role or password changed) is revoked.
    pub session_version: i32,
}

/// An authenticated partner system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyCaller {
    pub organization_id: OrganizationId,
    pub api_key_id: ApiKeyId,
    pub scopes: Scopes,
}

/// Whoever is calling a use case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Agent(AgentCaller),
    ApiKey(ApiKeyCaller),
    /// The operator at the command line: full rights within one organization.
    Operator {
        organization_id: OrganizationId,
    },
}

impl Caller {
    /// Returns the organization the caller acts in; every query is scoped to it.
    pub fn organization_id(&self) -> OrganizationId {
        match self {
            Self::Agent(agent) => agent.organization_id,
            Self::ApiKey(key) => key.organization_id,
            Self::Operator { organization_id } => *organization_id,
        }
    }

    /// Returns the agent behind the call, if it is an agent.
    pub fn agent(&self) -> Option<&AgentCaller> {
        match self {
            Self::Agent(agent) => Some(agent),
            _ => None,
        }
    }

    /// Returns whether the caller sees everything in its organization.
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Agent(agent) => agent.role == Role::Admin,
            Self::ApiKey(_) => false,
            Self::Operator { .. } => true,
        }
    }

    /// Fails with `PermissionDenied` unless the caller may do `permission`.
    pub fn require(&self, permission: Permission) -> Result<()> {
        use Permission::*;
        let allowed = match self {
            Self::Operator { .. } => true,
            Self::Agent(agent) if agent.role == Role::Admin => true,
            Self::Agent(_) => matches!(
                permission,
                ReadOrganization | ReadChats | WriteChats | ReadTickets | WriteTickets | ReadEvents
            ),
            Self::ApiKey(key) => match permission {
                ReadOrganization => {
                    key.scopes.contains(Scope::OrganizationRead) || key.scopes.contains(Scope::OrganizationWrite)
                }
                ManageDepartments | ManageHelpdesk => key.scopes.contains(Scope::OrganizationWrite),
                ReadChats => key.scopes.contains(Scope::ChatsRead) || key.scopes.contains(Scope::ChatsWrite),
                WriteChats => key.scopes.contains(Scope::ChatsWrite),
                ReadTickets => key.scopes.contains(Scope::TicketsRead) || key.scopes.contains(Scope::TicketsWrite),
                WriteTickets => key.scopes.contains(Scope::TicketsWrite),
                ReadEvents | FollowOrganizationLog => key.scopes.contains(Scope::EventsRead),
                ManageAgents | ManageApiKeys | ManageChannels => false,
            },
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::permission_denied(format!("not allowed to {}", permission_text(permission))))
        }
    }
}

fn permission_text(permission: Permission) -> &'static str {
    match permission {
        Permission::ReadOrganization => "read the organization",
        Permission::ManageDepartments => "manage departments",
        Permission::ManageAgents => "manage agents",
        Permission::ManageApiKeys => "manage api keys",
        Permission::ManageChannels => "manage channels",
        Permission::ReadChats => "read chats",
        Permission::WriteChats => "answer chats",
        Permission::ReadTickets => "read tickets",
        Permission::WriteTickets => "change tickets",
        Permission::ReadEvents => "read events",
        Permission::FollowOrganizationLog => "follow the organization's event log",
        Permission::ManageHelpdesk => "manage the helpdesk integration",
    }
}

/// An email address, trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self> {
        let email = text.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@'));
        if valid { Ok(Self(email)) } else { Err(Error::invalid_argument(format!("{text:?} is not an email address"))) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 10 to 1024 characters.
#[derive(Clone, Debug)]
pub struct Password(Secret<String>);

impl Password {
    pub fn parse(text: &str) -> Result<Self> {
        let length = text.chars().count();
        if !(10..=1024).contains(&length) {
            return Err(Error::invalid_argument("a password must have 10 to 1024 characters"));
        }
        Ok(Self(Secret::new(text.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// How long a password check waits for a free hashing slot before the
/// caller is told to come back.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs an argon2 computation (19 MiB, tens of milliseconds) on the
/// blocking pool, at most one per core at a time: a flood of sign-ins queues
/// here instead of taking gigabytes of memory, and past a short wait is
/// refused with `UNAVAILABLE`.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map(std::num::NonZeroUsize::get).unwrap_or(2);
        tokio::sync::Semaphore::new(cores.max(2))
    });
    let _slot = tokio::time::timeout(HASHING_WAIT, slots.acquire())
        .await
        .map_err(|_| Error::unavailable("too many password checks at once; try again"))?
        .map_err(Error::internal)?;
    tokio::task::spawn_blocking(work).await.map_err(Error::internal)
}

/// Hashes a password with argon2id off the async threads.
pub(crate) async fn hash_password(password: &Password) -> Result<String> {
    let password = password.expose().to_owned();
    hashing(move || {
        use argon2::password_hash::PasswordHasher;
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| Error::internal(std::io::Error::other(error.to_string())))
    })
    .await?
}

/// Checks a password against a stored hash off the async threads.
pub(crate) async fn verify_password(hash: String, password: Secret<String>) -> Result<bool> {
    hashing(move || {
        use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
        PasswordHash::new(&hash)
            .map(|parsed| argon2::Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
}

/// Checks a password against the hash of a random string, so that an
/// unknown email costs as much time as a known one.
pub(crate) async fn verify_against_dummy(password: Secret<String>) -> Result<()> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    hashing(move || {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
        let hash = DUMMY.get_or_init(|| {
            argon2::Argon2::default()
                .hash_password(random_string(ALPHANUMERIC, 24).as_bytes())
                .map(|hash| hash.to_string())
                .unwrap_or_default()
        });
        if let Ok(parsed) = PasswordHash::new(hash) {
            let _ = argon2::Argon2::default().verify_password(password.expose().as_bytes(), &parsed);
        }
    })
    .await
}

/// Settings for session tokens.
#[derive(Clone, Debug)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub lifetime: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self { issuer: "madoguchi".into(), audience: "madoguchi-agents".into(), lifetime: Duration::hours(12) }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    org: Uuid,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The agent's token version at issue.
    #[serde(default)]
    ver: i32,
}

/// A session token and when it expires.
#[derive(Clone, Debug)]
pub struct SessionToken {
    pub token: Secret<String>,
    pub expires_at: DateTime<Utc>,
}

/// Issues and verifies agents' session tokens.
pub(crate) struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: TokenSettings,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Tokens {
    pub(crate) fn new(master_key: &MasterKey, settings: TokenSettings) -> Self {
        let key = master_key.derive("madoguchi session tokens v1");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is judged by the core's clock below, not the system's.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
            settings,
        }
    }

    pub(crate) fn issue(&self, agent: &AgentCaller, now: DateTime<Utc>) -> Result<SessionToken> {
        let expires_at = now + self.settings.lifetime;
        let claims = Claims {
            sub: agent.agent_id.uuid(),
            org: agent.organization_id.uuid(),
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            ver: agent.session_version,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)?;
        Ok(SessionToken { token: Secret::new(token), expires_at })
    }

    /// Returns what a valid token says: its organization, agent, token
    /// version and expiry.
    /// A token is good until its `exp`, with a few seconds' leeway for
    /// clocks that differ, as `now` (the core's clock) tells.
    pub(crate) fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<VerifiedToken> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|error| Error::unauthenticated("invalid session token").with_source(error))?;
        let expires_at = DateTime::from_timestamp(data.claims.exp, 0).unwrap_or_default();
        if now.timestamp() > data.claims.exp.saturating_add(TOKEN_LEEWAY_SECONDS) {
            return Err(Error::unauthenticated("session token expired"));
        }
        Ok(VerifiedToken {
            organization_id: data.claims.org.into(),
            agent_id: data.claims.sub.into(),
            version: data.claims.ver,
            expires_at,
        })
    }
}

/// How many seconds past its `exp` a token is still accepted.
const TOKEN_LEEWAY_SECONDS: i64 = 5;

/// What a valid session token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedToken {
    pub organization_id: OrganizationId,
    pub agent_id: AgentId,
    pub version: i32,
    pub expires_at: DateTime<Utc>,
}

/// The parts of an API key as presented: `mdg_<prefix>_<secret>`.
pub(crate) struct PresentedApiKey<'a> {
    pub prefix: &'a str,
}

pub const API_KEY_TAG: &str = "mdg";

pub(crate) fn parse_api_key(key: &str) -> Result<PresentedApiKey<'_>> {
    let mut parts = key.trim().splitn(3, '_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(API_KEY_TAG), Some(prefix), Some(secret)) if prefix.len() == 12 && !secret.is_empty() => {
            Ok(PresentedApiKey { prefix })
        }
        _ => Err(Error::unauthenticated("invalid api key")),
    }
}

/// Returns the stored digest of an API key.
pub(crate) fn api_key_digest(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.trim().as_bytes()))
}

/// Returns `count` random characters from `alphabet`.
pub(crate) fn random_string(alphabet: &[u8], count: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..count).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

pub(crate) const ALPHANUMERIC: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentCaller {
        AgentCaller {
            organization_id: OrganizationId::generate(),
            agent_id: AgentId::generate(),
            role: Role::Agent,
            session_version: 3,
        }
    }

    #[test]
    fn a_token_round_trips_to_its_agent() {
        let tokens = Tokens::new(&MasterKey::generate(), TokenSettings::default());
        let agent = agent();
        let session = tokens.issue(&agent, Utc::now()).unwrap();
        let verified = tokens.verify(session.token.expose(), Utc::now()).unwrap();
        let (organization_id, agent_id, expires_at) =
            (verified.organization_id, verified.agent_id, verified.expires_at);
        assert_eq!(verified.version, 3);
        assert_eq!((organization_id, agent_id), (agent.organization_id, agent.agent_id));
        assert_eq!(expires_at.timestamp(), session.expires_at.timestamp());
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let tokens = Tokens::new(&MasterKey::generate(), TokenSettings::default());
        let session = tokens.issue(&agent(), Utc::now() - Duration::days(2)).unwrap();
        let error = tokens.verify(session.token.expose(), Utc::now()).unwrap_err();
        assert_eq!(error.code(), crate::ErrorCode::Unauthenticated);
        assert_eq!(error.message(), "session token expired");
    }

    #[test]
    fn a_token_signed_with_another_key_or_audience_is_rejected() {
        let ours = Tokens::new(&MasterKey::generate(), TokenSettings::default());
        let forged = Tokens::new(&MasterKey::generate(), TokenSettings::default());
        let session = forged.issue(&agent(), Utc::now()).unwrap();
        assert!(ours.verify(session.token.expose(), Utc::now()).is_err());
        let key = MasterKey::generate();
        let other_audience = Tokens::new(&key, TokenSettings { audience: "someone-else".into(), ..Default::default() });
        let session = other_audience.issue(&agent(), Utc::now()).unwrap();
        assert!(Tokens::new(&key, TokenSettings::default()).verify(session.token.expose(), Utc::now()).is_err());
    }

    #[test]
    fn a_token_with_the_none_algorithm_or_wrong_claim_types_is_rejected() {
        let key = MasterKey::generate();
        let tokens = Tokens::new(&key, TokenSettings::default());
        let b64 = |value: &serde_json::Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
        };
        let claims = serde_json::json!({"sub": Uuid::now_v7(), "org": Uuid::now_v7(), "iss": "madoguchi", "aud": "madoguchi-agents", "iat": 0, "exp": 4_000_000_000i64});
        let unsigned = format!("{}.{}.", b64(&serde_json::json!({"alg": "none", "typ": "JWT"})), b64(&claims));
        assert!(tokens.verify(&unsigned, Utc::now()).is_err());
        let wrong_type = serde_json::json!({"sub": 42, "org": "x", "iss": "madoguchi", "aud": "madoguchi-agents", "iat": 0, "exp": 4_000_000_000i64});
        let signed = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &wrong_type,
            &EncodingKey::from_secret(&key.derive("madoguchi session tokens v1")),
        )
        .unwrap();
        assert!(tokens.verify(&signed, Utc::now()).is_err());
    }

    #[test]
    fn an_agent_may_read_but_not_manage_the_organization() {
        let caller = Caller::Agent(agent());
        assert!(caller.require(Permission::ReadOrganization).is_ok());
        assert_eq!(caller.require(Permission::ManageAgents).unwrap_err().code(), crate::ErrorCode::PermissionDenied);
    }

    #[test]
    fn an_api_key_may_do_only_what_its_scopes_allow() {
        let caller = Caller::ApiKey(ApiKeyCaller {
            organization_id: OrganizationId::generate(),
            api_key_id: ApiKeyId::generate(),
            scopes: Scopes::parse(&["organization:read"]).unwrap(),
        });
        assert!(caller.require(Permission::ReadOrganization).is_ok());
        assert!(caller.require(Permission::ManageDepartments).is_err());
        assert!(caller.require(Permission::ManageApiKeys).is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse(" Ann@Example.COM ").unwrap().as_str(), "ann@example.com");
        for bad in ["", "ann", "ann@", "@example.com", "a b@example.com", "ann@example"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
