//! WeChat's callback XML, parsed with a real parser (quick-xml) and bounded:
//! at most [`MAX_XML_BYTES`] and [`MAX_DEPTH`] levels, no DTD, no entity
//! but XML's five and character references. A message is a flat `<xml>` of
//! named fields (a few events nest one level: `ScanCodeInfo`, …, kept as
//! `Parent.Child`).

use std::collections::BTreeMap;

use quick_xml::Reader;
use quick_xml::events::Event;

/// The largest body parsed (WeChat's messages are a few kilobytes).
pub const MAX_XML_BYTES: usize = 256 * 1024;
/// The deepest nesting accepted, `<xml>` included.
pub const MAX_DEPTH: usize = 8;

/// Why a body is not a WeChat message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the body is larger than {MAX_XML_BYTES} bytes")]
    TooLarge,
    #[error("the body is not UTF-8")]
    NotUtf8,
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error("document type declarations are not accepted")]
    Doctype,
    #[error("entity {0:?} is not accepted")]
    Entity(String),
    #[error("the XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the root element is not <xml>")]
    NotAMessage,
}

/// A parsed callback: its fields by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    /// The text of field `name` (`Parent.Child` for nested ones).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every field, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

/// Parses a callback body (plaintext, or the decrypted message).
pub fn parse(body: &[u8]) -> Result<Fields, XmlError> {
    if body.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(text);
    // Whether each open element has had child elements: only leaves are fields.
    let mut path: Vec<String> = Vec::new();
    let mut parents: Vec<bool> = Vec::new();
    let mut current = String::new();
    let mut fields = BTreeMap::new();
    let mut seen_root = false;
    loop {
        match reader.read_event().map_err(|error| XmlError::Malformed(error.to_string()))? {
            Event::Start(start) => {
                let name = start.name().as_ref().to_owned();
                if path.is_empty() {
                    if seen_root || name != "xml" {
                        return Err(XmlError::NotAMessage);
                    }
                    seen_root = true;
                }
                if let Some(parent) = parents.last_mut() {
                    *parent = true;
                }
                path.push(name);
                parents.push(false);
                if path.len() > MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                current.clear();
            }
            Event::Empty(empty) => {
                if path.is_empty() {
                    return Err(XmlError::NotAMessage);
                }
                if let Some(parent) = parents.last_mut() {
                    *parent = true;
                }
                let name = empty.name().as_ref().to_owned();
                fields.entry(field_name(&path[1..], &name)).or_insert_with(String::new);
            }
            Event::End(_) => {
                let Some(name) = path.pop() else { return Err(XmlError::Malformed("unbalanced end tag".into())) };
                let had_children = parents.pop().unwrap_or(false);
                if !path.is_empty() && !had_children {
                    let key = field_name(&path[1..], &name);
                    fields.entry(key).or_insert_with(|| std::mem::take(&mut current));
                }
                current.clear();
            }
            Event::Text(text) => current.push_str(&text.into_inner()),
            Event::CData(data) => current.push_str(&data.into_inner()),
            Event::GeneralRef(reference) => {
                let character = match reference.resolve_char_ref() {
                    Ok(Some(character)) => character,
                    Ok(None) => match reference.into_inner().as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => return Err(XmlError::Entity(other.to_owned())),
                    },
                    Err(error) => return Err(XmlError::Malformed(error.to_string())),
                };
                current.push(character);
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !seen_root || !path.is_empty() {
        return Err(XmlError::NotAMessage);
    }
    Ok(Fields(fields))
}

fn field_name(parents: &[String], name: &str) -> String {
    if parents.is_empty() { name.to_owned() } else { format!("{}.{name}", parents.join(".")) }
}

/// What a callback is.
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Text {
        content: String,
    },
    Image {
        pic_url: Option<String>,
        media_id: String,
    },
    /// With WeChat's speech recognition, when the account has it on.
    Voice {
        media_id: String,
        format: Option<String>,
        recognition: Option<String>,
    },
    Video {
        media_id: String,
        thumb_media_id: Option<String>,
        short: bool,
    },
    Location {
        latitude: Option<f64>,
        longitude: Option<f64>,
        scale: Option<i64>,
        label: Option<String>,
    },
    Link {
        title: Option<String>,
        description: Option<String>,
        url: Option<String>,
    },
    Subscribe,
    Unsubscribe,
    /// Any other event, by its `Event` field.
    Event {
        event: String,
    },
    /// Any other message type, by its `MsgType`.
    Other {
        msg_type: String,
    },
}

/// A callback with what every one carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The consumer's OpenID.
    pub from_user: String,
    /// The account's Original ID (`gh_…`).
    pub to_user: String,
    pub create_time: i64,
    /// `MsgId` for messages; events have none.
    pub msg_id: Option<String>,
    pub callback: Callback,
}

impl Message {
    /// Reads the fields of a parsed callback; `None` when what every callback
    /// has (`FromUserName`, `ToUserName`, `CreateTime`, `MsgType`) is missing.
    pub fn from_fields(fields: &Fields) -> Option<Self> {
        let text = |name: &str| fields.get(name).filter(|value| !value.is_empty()).map(str::to_owned);
        let msg_type = fields.get("MsgType")?.to_owned();
        let callback = match msg_type.as_str() {
            "text" => Callback::Text { content: text("Content").unwrap_or_default() },
            "image" => Callback::Image { pic_url: text("PicUrl"), media_id: text("MediaId")? },
            "voice" => {
                Callback::Voice { media_id: text("MediaId")?, format: text("Format"), recognition: text("Recognition") }
            }
            "video" | "shortvideo" => Callback::Video {
                media_id: text("MediaId")?,
                thumb_media_id: text("ThumbMediaId"),
                short: msg_type == "shortvideo",
            },
            "location" => Callback::Location {
                latitude: text("Location_X").and_then(|value| value.parse().ok()),
                longitude: text("Location_Y").and_then(|value| value.parse().ok()),
                scale: text("Scale").and_then(|value| value.parse().ok()),
                label: text("Label"),
            },
            "link" => Callback::Link { title: text("Title"), description: text("Description"), url: text("Url") },
            "event" => match fields.get("Event").unwrap_or_default().to_ascii_lowercase().as_str() {
                "subscribe" => Callback::Subscribe,
                "unsubscribe" => Callback::Unsubscribe,
                other => Callback::Event { event: other.to_owned() },
            },
            _ => Callback::Other { msg_type: msg_type.clone() },
        };
        Some(Self {
            from_user: text("FromUserName")?,
            to_user: text("ToUserName")?,
            create_time: fields.get("CreateTime")?.trim().parse().ok()?,
            msg_id: text("MsgId"),
            callback,
        })
    }

    /// The key that makes WeChat's retries (three, when we take over five
    /// seconds) one event: `MsgId`, or for events the sender, the time and
    /// the event type.
    pub fn provider_event_id(&self, fields: &Fields) -> String {
        match &self.msg_id {
            Some(id) => format!("msg:{id}"),
            None => format!(
                "event:{}:{}:{}",
                self.from_user,
                self.create_time,
                fields.get("Event").unwrap_or_default().to_ascii_lowercase()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every XML message in wechatpy's tests (`../shared/vectors/wechat-inbound-xml.txt`).
    fn samples() -> Vec<(String, String)> {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/wechat-inbound-xml.txt"));
        let mut samples = Vec::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(name) = line.strip_prefix("=== BEGIN ") else { continue };
            let body: Vec<&str> = lines.by_ref().take_while(|line| *line != "=== END").collect();
            samples.push((name.to_owned(), body.join("\n")));
        }
        samples
    }

    #[test]
    fn every_published_sample_parses_into_a_message() {
        let samples = samples();
        assert!(samples.len() >= 50, "{} samples", samples.len());
        for (name, body) in &samples {
            let fields = parse(body.as_bytes()).unwrap_or_else(|error| panic!("{name}: {error}"));
            let message = Message::from_fields(&fields).unwrap_or_else(|| panic!("{name}: {fields:?}"));
            assert!(!message.from_user.is_empty(), "{name}");
        }
    }

    #[test]
    fn message_types_are_read_with_their_fields() {
        let samples = samples();
        let find = |suffix: &str| {
            let (_, body) =
                samples.iter().find(|(name, _)| name.contains(suffix)).unwrap_or_else(|| panic!("{suffix}"));
            let fields = parse(body.as_bytes()).unwrap();
            (Message::from_fields(&fields).unwrap(), fields)
        };
        let (text, fields) = find("test_parse_text_message ");
        assert_eq!(text.callback, Callback::Text { content: "this is a test".into() });
        assert_eq!(text.msg_id.as_deref(), Some("1234567890123456"));
        assert_eq!(text.provider_event_id(&fields), "msg:1234567890123456");
        let (location, _) = find("test_parse_location_message ");
        assert_eq!(
            location.callback,
            Callback::Location {
                latitude: Some(23.134521),
                longitude: Some(113.358803),
                scale: Some(20),
                label: Some("位置信息".into())
            }
        );
        let (subscribe, fields) = find("test_parse_subscribe_event ");
        assert_eq!(subscribe.callback, Callback::Subscribe);
        assert!(subscribe.provider_event_id(&fields).starts_with("event:"));
    }

    #[test]
    fn hostile_xml_is_refused() {
        let doctype = br#"<!DOCTYPE xml [<!ENTITY e "boom">]><xml><Content>&e;</Content></xml>"#;
        assert_eq!(parse(doctype), Err(XmlError::Doctype));
        assert_eq!(parse(b"<xml><Content>&e;</Content></xml>"), Err(XmlError::Entity("e".into())));
        let deep = format!("<xml>{}x{}</xml>", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
        assert_eq!(parse(&vec![b' '; MAX_XML_BYTES + 1]), Err(XmlError::TooLarge));
        assert_eq!(parse(b"<html></html>"), Err(XmlError::NotAMessage));
        assert!(matches!(parse(b"<xml><a></xml>"), Err(XmlError::Malformed(_))));
        assert_eq!(parse(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        let fields = parse(b"<xml><Content>a &lt;b&gt; &#x263A;</Content></xml>").unwrap();
        assert_eq!(fields.get("Content"), Some("a <b> \u{263A}"));
    }

    proptest! {
        #[test]
        fn random_and_mutated_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..400) {
            let _ = parse(&bytes);
            let sample = samples().swap_remove(0).1;
            let mut mutated = sample.into_bytes();
            mutated.truncate(cut.min(mutated.len()));
            mutated.extend_from_slice(&bytes);
            if let Ok(fields) = parse(&mutated) {
                let _ = Message::from_fields(&fields);
            }
        }
    }
}
