//! WeChat Official Accounts: the callback protocol's signatures and
//! secure-mode crypto (WXBizMsgCrypt) and its XML, the customer-service
//! message bodies, and a client for the API endpoints Madoguchi calls —
//! checked against the SDKs' vectors (copied into `api/channels/vectors/`
//! from `shared/vectors/`).

pub mod client;
pub mod crypto;
pub mod outbound;
pub mod xml;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::crypto::{self, EncodingAesKey};
    use super::xml::{self, Message};

    const APP_ID: &str = "wx0123456789abcdef";

    /// The whole receiving path a secure-mode callback takes: the envelope
    /// parsed, its `Encrypt` decrypted for our AppID, the message parsed.
    fn receive(key: &EncodingAesKey, body: &[u8]) -> Option<Message> {
        let outer = xml::parse(body).ok()?;
        let plain = crypto::decrypt(key, APP_ID, outer.get("Encrypt")?).ok()?;
        Message::from_fields(&xml::parse(&plain).ok()?)
    }

    fn envelope(key: &EncodingAesKey, message: &str) -> Vec<u8> {
        let encrypted = crypto::encrypt(key, APP_ID, message.as_bytes());
        format!(
            "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        )
        .into_bytes()
    }

    const MESSAGE: &str = "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>\
        <FromUserName><![CDATA[oUser]]></FromUserName><CreateTime>1700000000</CreateTime>\
        <MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>1</MsgId></xml>";

    #[test]
    fn an_intact_envelope_goes_all_the_way() {
        let key = EncodingAesKey::generate();
        assert_eq!(receive(&key, &envelope(&key, MESSAGE)).map(|message| message.from_user), Some("oUser".into()));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Flipped bytes and insertions anywhere in a valid envelope never
        /// panic (signatures are checked before this path, in the server).
        #[test]
        fn mutated_envelopes_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
            insert in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let key = EncodingAesKey::generate();
            let mut body = envelope(&key, MESSAGE);
            for (at, byte) in flips {
                let at = at.index(body.len());
                body[at] ^= byte;
            }
            let at = cut.index(body.len());
            body.splice(at..at, insert);
            if let Some(message) = receive(&key, &body) {
                // CBC without a MAC can survive a flip only where the
                // plaintext is ignored; what comes out is still well-formed.
                prop_assert!(!message.from_user.is_empty());
            }
        }

        #[test]
        fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let key = EncodingAesKey::generate();
            let _ = receive(&key, &body);
        }
    }
}
