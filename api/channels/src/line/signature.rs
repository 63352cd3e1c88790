//! `X-Line-Signature`: base64 HMAC-SHA256 of the raw webhook body, keyed with the channel secret.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature header was absent or empty.
    #[error("signature is missing")]
    Missing,
    /// The signature header was not standard base64.
    #[error("signature is not valid base64")]
    NotBase64,
    /// The signature did not match the body.
    #[error("signature does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Line-Signature` value) against `body`, the raw request
/// bytes exactly as received, in constant time.
///
/// Surrounding whitespace in the header is ignored; anything else that is not the
/// standard base64 of the 32-byte HMAC-SHA256 tag is rejected.
pub fn verify_signature(channel_secret: &[u8], body: &[u8], header: &str) -> Result<(), SignatureError> {
    let header = header.trim();
    if header.is_empty() {
        return Err(SignatureError::Missing);
    }
    let tag = STANDARD.decode(header).map_err(|_| SignatureError::NotBase64)?;
    mac(channel_secret, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

/// Returns the `X-Line-Signature` value LINE would send for `body`.
pub fn sign(channel_secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(mac(channel_secret, body).finalize().into_bytes())
}

fn mac(channel_secret: &[u8], body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(channel_secret)
        .unwrap_or_else(|_| unreachable!("hmac accepts keys of any length"));
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One block of `shared/vectors/line-signature.txt`.
    #[derive(Debug, Default)]
    struct Vector {
        name: String,
        secret: String,
        body: String,
        signature: String,
        negatives: Vec<String>,
    }

    const VECTORS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/line-signature.txt"));

    fn vectors() -> Vec<Vector> {
        let mut vectors: Vec<Vector> = Vec::new();
        for line in VECTORS.lines() {
            if let Some(name) = line.strip_prefix("## ") {
                vectors.push(Vector { name: name.to_owned(), ..Vector::default() });
                continue;
            }
            let Some(vector) = vectors.last_mut() else {
                continue;
            };
            if let Some(secret) = line.strip_prefix("secret: ") {
                vector.secret = secret.to_owned();
            } else if let Some(body) = line.strip_prefix("body: ") {
                vector.body = body.to_owned();
            } else if let Some(signature) = line.strip_prefix("signature: ") {
                vector.signature = signature.to_owned();
            } else if let Some(negative) = line.strip_prefix("negative: ") {
                vector.negatives.push(negative_signature(negative));
            }
        }
        vectors
    }

    /// Pulls the rejected value out of lines such as `signature "x" must be
    /// rejected` or `abc=   (note)`.
    fn negative_signature(line: &str) -> String {
        if let Some(start) = line.find('"') {
            let rest = &line[start + 1..];
            let end = rest.find('"').expect("closing quote");
            return rest[..end].to_owned();
        }
        line.split_whitespace().next().expect("a value").to_owned()
    }

    #[test]
    fn the_published_vectors_are_all_read() {
        let vectors = vectors();

        let names: Vec<&str> = vectors.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["V1", "V2", "V5"]);
        for vector in &vectors {
            assert!(!vector.secret.is_empty(), "{}", vector.name);
            assert!(!vector.body.is_empty(), "{}", vector.name);
            assert_eq!(vector.signature.len(), 44, "{}", vector.name);
            assert_eq!(vector.negatives.len(), 1, "{}", vector.name);
        }
    }

    #[test]
    fn every_published_signature_is_accepted() {
        for vector in vectors() {
            let result = verify_signature(vector.secret.as_bytes(), vector.body.as_bytes(), &vector.signature);

            assert_eq!(result, Ok(()), "{}", vector.name);
        }
    }

    #[test]
    fn signing_reproduces_every_published_signature() {
        for vector in vectors() {
            let signature = sign(vector.secret.as_bytes(), vector.body.as_bytes());

            assert_eq!(signature, vector.signature, "{}", vector.name);
        }
    }

    #[test]
    fn every_published_negative_is_rejected() {
        for vector in vectors() {
            for negative in &vector.negatives {
                let result = verify_signature(vector.secret.as_bytes(), vector.body.as_bytes(), negative);

                assert!(result.is_err(), "{} accepted {negative}", vector.name);
            }
        }
    }

    #[test]
    fn a_missing_signature_is_rejected_as_missing() {
        assert_eq!(verify_signature(b"channel_secret", b"body", ""), Err(SignatureError::Missing));
        assert_eq!(verify_signature(b"channel_secret", b"body", "  "), Err(SignatureError::Missing));
    }

    #[test]
    fn an_undecodable_signature_is_rejected_as_not_base64() {
        assert_eq!(verify_signature(b"channel_secret", b"body", "invalid_signature"), Err(SignatureError::NotBase64));
    }

    #[test]
    fn a_truncated_signature_is_rejected_as_a_mismatch() {
        let signature = sign(b"channel_secret", b"bodybodybodybody");
        let truncated = STANDARD.encode(&STANDARD.decode(signature).unwrap()[..31]);

        assert_eq!(verify_signature(b"channel_secret", b"bodybodybodybody", &truncated), Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_trailing_newline_in_the_body_changes_the_signature() {
        let signature = sign(b"SECRET", b"{}");

        assert_eq!(verify_signature(b"SECRET", b"{}\n", &signature), Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_secret_is_part_of_the_signature() {
        let signature = sign(b"SECRET", b"{}");

        assert_eq!(verify_signature(b"secret", b"{}", &signature), Err(SignatureError::Mismatch));
    }

    proptest! {
        #[test]
        fn a_signed_body_verifies(secret in proptest::collection::vec(any::<u8>(), 0..80),
                                  body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let signature = sign(&secret, &body);

            prop_assert_eq!(verify_signature(&secret, &body, &signature), Ok(()));
        }

        #[test]
        fn flipping_any_body_bit_fails(secret in proptest::collection::vec(any::<u8>(), 1..40),
                                       body in proptest::collection::vec(any::<u8>(), 1..256),
                                       bit in any::<proptest::sample::Index>()) {
            let signature = sign(&secret, &body);
            let mut tampered = body.clone();
            let bit = bit.index(body.len() * 8);
            tampered[bit / 8] ^= 1 << (bit % 8);

            prop_assert_eq!(
                verify_signature(&secret, &tampered, &signature),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn flipping_any_signature_bit_fails(secret in proptest::collection::vec(any::<u8>(), 1..40),
                                            body in proptest::collection::vec(any::<u8>(), 0..256),
                                            bit in 0usize..256) {
            let mut tag = STANDARD.decode(sign(&secret, &body)).unwrap();
            tag[bit / 8] ^= 1 << (bit % 8);
            let tampered = STANDARD.encode(&tag);

            prop_assert_eq!(
                verify_signature(&secret, &body, &tampered),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn flipping_any_bit_of_the_header_text_fails(secret in proptest::collection::vec(any::<u8>(), 1..40),
                                                     body in proptest::collection::vec(any::<u8>(), 0..256),
                                                     bit in 0usize..(44 * 8)) {
            let mut header = sign(&secret, &body).into_bytes();
            header[bit / 8] ^= 1 << (bit % 8);
            let header = String::from_utf8_lossy(&header);

            prop_assert!(verify_signature(&secret, &body, &header).is_err());
        }

        #[test]
        fn arbitrary_headers_never_panic(header in ".{0,80}") {
            let _ = verify_signature(b"secret", b"body", &header);
        }
    }
}
