//! Secrets in memory and at rest.
//!
//! [`Secret`] keeps a value out of `Debug` output and logs. [`SecretBox`]
//! seals third-party secrets (channel secrets, access tokens, AppSecrets,
//! EncodingAESKeys, ZSC keys) with AES-256-GCM under the master key. The
//! associated data names the tenant, table, row and column, so a ciphertext
//! copied into another row or column fails to open.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A value that must never be printed. `Debug` shows `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Returns the value itself; call only where it is really used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret<String> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// The 32-byte key that seals every stored third-party secret and signs
/// session tokens.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Returns a fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Parses a key written as standard base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes =
            STANDARD.decode(text.trim()).map_err(|_| Error::invalid_argument("master key is not valid base64"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| Error::invalid_argument("master key must be 32 bytes"))?;
        Ok(Self(key))
    }

    /// Returns the key as base64, for writing the generated key file.
    pub fn to_base64(&self) -> Secret<String> {
        Secret(STANDARD.encode(self.0))
    }

    /// Derives a purpose-bound subkey (HMAC-SHA256 of the purpose under the master key).
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, KeyInit as _, Mac};
        let mut mac = <Hmac<sha2::Sha256>>::new_from_slice(&self.0).expect("hmac accepts any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Where a sealed secret lives; bound into the ciphertext as associated data.
#[derive(Clone, Copy, Debug)]
pub struct SealedAt<'a> {
    pub organization_id: Uuid,
    pub table: &'a str,
    pub row_id: Uuid,
    pub column: &'a str,
}

impl SealedAt<'_> {
    fn associated_data(&self) -> String {
        format!("madoguchi/v1/{}/{}/{}/{}", self.organization_id, self.table, self.row_id, self.column)
    }
}

const NONCE_LEN: usize = 12;

/// Seals and opens stored secrets with AES-256-GCM.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    pub fn new(key: &MasterKey) -> Self {
        let cipher = Aes256Gcm::new_from_slice(&key.derive("madoguchi secrets at rest v1"))
            .expect("a 32-byte key is a valid AES-256 key");
        Self { cipher }
    }

    /// Returns `nonce ‖ ciphertext ‖ tag` for `plaintext` sealed at `at`.
    pub fn seal(&self, at: SealedAt<'_>, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = at.associated_data();
        let ciphertext = self
            .cipher
            .encrypt(&nonce.into(), Payload { msg: plaintext, aad: aad.as_bytes() })
            .expect("aes-gcm encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a sealed secret; fails if it was sealed elsewhere, under another
    /// key, or altered.
    pub fn open(&self, at: SealedAt<'_>, sealed: &[u8]) -> Result<Secret<String>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::internal(std::io::Error::other("sealed secret too short")));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at the nonce length");
        let aad = at.associated_data();
        let plaintext =
            self.cipher.decrypt(&nonce.into(), Payload { msg: ciphertext, aad: aad.as_bytes() }).map_err(|_| {
                Error::internal(std::io::Error::other(format!(
                    "sealed secret {}.{} of row {} does not open",
                    at.table, at.column, at.row_id
                )))
            })?;
        String::from_utf8(plaintext)
            .map(Secret)
            .map_err(|_| Error::internal(std::io::Error::other("sealed secret is not utf-8")))
    }
}

/// Returns a secret as shown after creation: only its last four characters.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "••••••••".to_owned();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(row_id: Uuid, column: &str) -> SealedAt<'_> {
        SealedAt { organization_id: Uuid::nil(), table: "channels", row_id, column }
    }

    #[test]
    fn a_sealed_secret_opens_where_it_was_sealed() {
        let secrets = SecretBox::new(&MasterKey::generate());
        let row = Uuid::now_v7();
        let sealed = secrets.seal(at(row, "line_channel_secret"), b"s3cret-value");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        let opened = secrets.open(at(row, "line_channel_secret"), &sealed).unwrap();
        assert_eq!(opened.expose(), "s3cret-value");
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_or_column_fails() {
        let secrets = SecretBox::new(&MasterKey::generate());
        let row = Uuid::now_v7();
        let sealed = secrets.seal(at(row, "line_channel_secret"), b"value");
        assert!(secrets.open(at(Uuid::now_v7(), "line_channel_secret"), &sealed).is_err());
        assert!(secrets.open(at(row, "line_access_token"), &sealed).is_err());
        let other_tenant = SealedAt { organization_id: Uuid::now_v7(), ..at(row, "line_channel_secret") };
        assert!(secrets.open(other_tenant, &sealed).is_err());
    }

    #[test]
    fn a_ciphertext_under_another_master_key_fails() {
        let row = Uuid::now_v7();
        let sealed = SecretBox::new(&MasterKey::generate()).seal(at(row, "c"), b"value");
        assert!(SecretBox::new(&MasterKey::generate()).open(at(row, "c"), &sealed).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "***");
        assert!(!format!("{:?}", MasterKey::generate()).contains('='));
    }

    #[test]
    fn a_mask_shows_only_the_last_four_characters() {
        assert_eq!(mask("abcdefghijklmnop"), "••••••••mnop");
        assert_eq!(mask("short"), "••••••••");
    }
}
