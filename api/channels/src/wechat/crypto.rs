//! WeChat's callback signatures and secure-mode message crypto.
//!
//! - URL and plaintext signature: `sha1_hex(concat(sorted([token, timestamp, nonce])))`.
//! - Secure mode (`encrypt_type=aes`): `msg_signature` adds the `Encrypt` text
//!   to the sorted list; the ciphertext is AES-256-CBC with the key decoded
//!   from the 43-character EncodingAESKey (leniently, as WeChat's own
//!   decoders do: published keys have non-zero trailing bits), the IV the
//!   key's first 16 bytes, and PKCS#7 padding to a multiple of **32** bytes.
//!   The plaintext is `random16 || u32_be(len) || message || appid`.
//!
//! Every check compares in constant time; every failure is a
//! [`CryptoError`] and nothing is half-decrypted.

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// WeChat pads to multiples of this, not AES's 16.
const PAD_BLOCK: usize = 32;
/// The random prefix of every plaintext.
const RANDOM_LEN: usize = 16;

/// Why a WeChat callback did not verify or decrypt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the signature does not match")]
    BadSignature,
    #[error("the EncodingAESKey must be 43 characters of base64")]
    BadKey,
    #[error("the ciphertext is not base64")]
    NotBase64,
    #[error("the ciphertext is not whole AES blocks")]
    BadLength,
    #[error("the padding is malformed")]
    BadPadding,
    #[error("the decrypted message is malformed")]
    BadPlaintext,
    #[error("the message is for another AppID")]
    WrongAppId,
}

/// An EncodingAESKey: the 43 characters the WeChat console shows, and the
/// 32-byte key they stand for.
#[derive(Clone)]
pub struct EncodingAesKey {
    text: String,
    key: [u8; 32],
}

impl std::fmt::Debug for EncodingAesKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncodingAesKey(***)")
    }
}

impl EncodingAesKey {
    /// Parses the console's 43 characters. Decoding `text + "="` allows
    /// non-zero trailing bits, as every WeChat SDK does.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        if text.len() != 43 || !text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/') {
            return Err(CryptoError::BadKey);
        }
        const LENIENT: GeneralPurpose = GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            GeneralPurposeConfig::new()
                .with_decode_allow_trailing_bits(true)
                .with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = LENIENT.decode(format!("{text}=")).map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self { text: text.to_owned(), key })
    }

    /// Returns a new random key in the console's form.
    pub fn generate() -> Self {
        let key: [u8; 32] = rand::random();
        let text = STANDARD.encode(key).trim_end_matches('=').to_owned();
        Self { text, key }
    }

    /// The 43 characters, for showing once and for the console.
    pub fn expose_text(&self) -> &str {
        &self.text
    }
}

/// `sha1_hex(concat(sorted(parts)))`, WeChat's signature over a callback.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    hex::encode(Sha1::digest(sorted.concat().as_bytes()))
}

/// Checks the plain `signature` of a callback (URL verification, plaintext
/// and compatible modes) in constant time.
pub fn verify_signature(token: &str, timestamp: &str, nonce: &str, given: &str) -> Result<(), CryptoError> {
    constant_time_hex_eq(&signature(&[token, timestamp, nonce]), given)
}

/// Checks the `msg_signature` of a secure-mode callback in constant time.
pub fn verify_msg_signature(
    token: &str,
    timestamp: &str,
    nonce: &str,
    encrypted: &str,
    given: &str,
) -> Result<(), CryptoError> {
    constant_time_hex_eq(&signature(&[token, timestamp, nonce, encrypted]), given)
}

fn constant_time_hex_eq(expected: &str, given: &str) -> Result<(), CryptoError> {
    let given = given.trim().to_ascii_lowercase();
    if expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

/// Decrypts an `Encrypt` text and checks that it is for `app_id`; returns
/// the message (the XML, or `echostr`'s content).
pub fn decrypt(key: &EncodingAesKey, app_id: &str, encrypted: &str) -> Result<Vec<u8>, CryptoError> {
    let ciphertext = STANDARD.decode(encrypted.trim()).map_err(|_| CryptoError::NotBase64)?;
    if ciphertext.is_empty() || ciphertext.len() % PAD_BLOCK != 0 {
        return Err(CryptoError::BadLength);
    }
    let iv: [u8; 16] = key.key[..16].try_into().expect("a 32-byte key has 16 first bytes");
    let decryptor = cbc::Decryptor::<Aes256>::new(&key.key.into(), &iv.into());
    let plain = decryptor.decrypt_padded_vec::<NoPadding>(&ciphertext).map_err(|_| CryptoError::BadLength)?;
    let pad = usize::from(*plain.last().ok_or(CryptoError::BadPadding)?);
    if pad == 0
        || pad > PAD_BLOCK
        || pad > plain.len()
        || !plain[plain.len() - pad..].iter().all(|b| usize::from(*b) == pad)
    {
        return Err(CryptoError::BadPadding);
    }
    let body = &plain[..plain.len() - pad];
    if body.len() < RANDOM_LEN + 4 {
        return Err(CryptoError::BadPlaintext);
    }
    let length = u32::from_be_bytes(body[RANDOM_LEN..RANDOM_LEN + 4].try_into().expect("four bytes")) as usize;
    let rest = &body[RANDOM_LEN + 4..];
    if length > rest.len() {
        return Err(CryptoError::BadPlaintext);
    }
    let (message, from_app) = rest.split_at(length);
    if !bool::from(from_app.ct_eq(app_id.as_bytes())) {
        return Err(CryptoError::WrongAppId);
    }
    Ok(message.to_vec())
}

/// Encrypts `message` for `app_id` with a fresh random prefix (passive
/// replies in secure mode; tests).
pub fn encrypt(key: &EncodingAesKey, app_id: &str, message: &[u8]) -> String {
    encrypt_with_random(key, app_id, message, rand::random())
}

/// [`encrypt`] with the random prefix given, for vectors.
pub fn encrypt_with_random(key: &EncodingAesKey, app_id: &str, message: &[u8], random: [u8; RANDOM_LEN]) -> String {
    let mut plain = Vec::with_capacity(RANDOM_LEN + 4 + message.len() + app_id.len() + PAD_BLOCK);
    plain.extend_from_slice(&random);
    plain.extend_from_slice(&(message.len() as u32).to_be_bytes());
    plain.extend_from_slice(message);
    plain.extend_from_slice(app_id.as_bytes());
    let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
    plain.extend(std::iter::repeat_n(pad as u8, pad));
    let iv: [u8; 16] = key.key[..16].try_into().expect("a 32-byte key has 16 first bytes");
    let encryptor = cbc::Encryptor::<Aes256>::new(&key.key.into(), &iv.into());
    STANDARD.encode(encryptor.encrypt_padded_vec::<NoPadding>(&plain))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Tencent's official sample (W1 in the shared vectors).
    const W1_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const W1_APP_ID: &str = "wx2c2769f8efd9abc2";
    const W1_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    const W1_PLAIN: &str = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>";

    #[test]
    fn tencents_sample_verifies_and_decrypts() {
        verify_msg_signature(
            "spamtest",
            "1409735669",
            "1320562132",
            W1_ENCRYPT,
            "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
        )
        .unwrap();
        let key = EncodingAesKey::parse(W1_KEY).expect("a key with trailing bits parses");
        let plain = decrypt(&key, W1_APP_ID, W1_ENCRYPT).unwrap();
        assert_eq!(String::from_utf8(plain).unwrap(), W1_PLAIN);
        assert_eq!(decrypt(&key, "wx0000000000000000", W1_ENCRYPT), Err(CryptoError::WrongAppId));
    }

    #[test]
    fn re_encrypting_with_the_samples_random_gives_its_ciphertext() {
        let key = EncodingAesKey::parse(W1_KEY).unwrap();
        let random: [u8; 16] = *b"89465c840c5f116f";
        assert_eq!(encrypt_with_random(&key, W1_APP_ID, W1_PLAIN.as_bytes(), random), W1_ENCRYPT);
    }

    #[test]
    fn the_published_plain_signatures_match_and_a_changed_one_does_not() {
        assert_eq!(signature(&["test", "1410685589", "test"]), "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff");
        verify_signature("test", "1410685589", "test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff").unwrap();
        assert_eq!(
            verify_signature("test", "1410685589", "test", "f21891de399b4e33a1a93c9a7b8a8fffb5a443fe"),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            signature(&["token1234567890", "1458864389", "2066297436"]),
            "f9c725922f6844701ba71e98031978e40023c09f"
        );
        let encrypted = "u0KvD5kCUzGq9QmWTsSRcolKAH92oiMZDBJ840OqXXFhzUFsBZtdDv6Fv2W9zlrP3Rx3jQGiNXY8sV0kWgzdcefN3WznfM0TGArGowC9bgHE+4QKGrkly0wQ6ouQe7UrKDvkfMy3t8t8njawTl2z0MvgIsaVAvllB3vDWzY/Oo1P1Q9PLdIsgbQjyrJVObZMgFK4KN175ygxBWkb4fdiIAIXSpxN/48LYixSkgohbAcUGlDP8FD3mPTDppz1yI4fGY8jHCYy3s2CsylkE/1+/6zAtv/8160FvB/C6CwRd7Q4OypAW2JKDOekWULMhahY+43C8GQaKWWbsmOHdiEoL6N8jCyrquvCBnvekZTrRY/CTuyqmpo/5LrDXXORwKDdK0uSVU/9N1Lpz9waEWMFqIPSnYC+MgelLzE9hBlnJ+5qC6O0GXrm6QmrncijD2SvdOhfT6OKIDiYJUM2cHHMcg==";
        verify_msg_signature(
            "token1234567890",
            "1458864389",
            "2066297436",
            encrypted,
            "247dea54e9ca03ab1e75d03430d205a5b967c44d",
        )
        .unwrap();
        assert_eq!(signature(&["a", "b", "c"]), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(signature(&["123", "345"]), "9f537aeb751ec72605f57f94a2f6dc3e3958e1dd");
    }

    #[test]
    fn keys_must_be_43_base64_characters() {
        assert_eq!(EncodingAesKey::parse(&W1_KEY[..42]).unwrap_err(), CryptoError::BadKey);
        assert_eq!(EncodingAesKey::parse(&format!("{}!", &W1_KEY[..42])).unwrap_err(), CryptoError::BadKey);
        let generated = EncodingAesKey::generate();
        assert_eq!(generated.expose_text().len(), 43);
        assert_eq!(EncodingAesKey::parse(generated.expose_text()).unwrap().key, generated.key);
        assert_eq!(format!("{generated:?}"), "EncodingAesKey(***)");
    }

    #[test]
    fn tampered_or_truncated_ciphertexts_are_refused() {
        let key = EncodingAesKey::parse(W1_KEY).unwrap();
        assert_eq!(decrypt(&key, W1_APP_ID, "not base64 ~~"), Err(CryptoError::NotBase64));
        assert_eq!(decrypt(&key, W1_APP_ID, &STANDARD.encode([0u8; 16])), Err(CryptoError::BadLength));
        assert_eq!(decrypt(&key, W1_APP_ID, ""), Err(CryptoError::BadLength));
        let mut bytes = STANDARD.decode(W1_ENCRYPT).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert!(decrypt(&key, W1_APP_ID, &STANDARD.encode(&bytes)).is_err());
    }

    proptest! {
        #[test]
        fn every_length_round_trips(message in proptest::collection::vec(any::<u8>(), 0..200), app_id in "wx[0-9a-f]{16}") {
            let key = EncodingAesKey::generate();
            let encrypted = encrypt(&key, &app_id, &message);
            prop_assert_eq!(STANDARD.decode(&encrypted).unwrap().len() % PAD_BLOCK, 0);
            prop_assert_eq!(decrypt(&key, &app_id, &encrypted).unwrap(), message);
        }

        #[test]
        fn random_ciphertexts_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), app_id in "[a-z0-9]{0,20}") {
            let key = EncodingAesKey::parse(W1_KEY).unwrap();
            let _ = decrypt(&key, &app_id, &STANDARD.encode(&bytes));
        }
    }
}
