//! Webhook parsing checked against the official SDKs' fixtures and hand-written bodies.

use super::*;
use proptest::prelude::*;
use serde_json::json;

const PYTHON_SDK_BODY: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/line-webhook-events-python-sdk.json"));

const JAVA_SDK_BODIES: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/line-webhook-events-java-sdk.txt"));

const USER: &str = "U206d25c2ea6bd87c17655609a1c37cb8";
const GROUP: &str = "Ca56f94637cc4347f90a25382909b24b9";
const ROOM: &str = "Ra8dbf4673c4c812cd491258042226c99";
const REPLY_TOKEN: &str = "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA";

/// Returns the Java SDK's bodies by file name (`text-user`, `unknown`, …).
fn java_sdk_bodies() -> Vec<(String, String)> {
    let mut bodies = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in JAVA_SDK_BODIES.lines() {
        if let Some(path) = line.strip_prefix("=== BEGIN ") {
            let name = path.rsplit('/').next().unwrap().trim_end_matches(".json");
            current = Some((name.to_owned(), String::new()));
        } else if line.starts_with("=== END ") {
            bodies.push(current.take().expect("an open body"));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    bodies
}

fn java_sdk_body(name: &str) -> WebhookBody {
    let (_, body) = java_sdk_bodies()
        .into_iter()
        .find(|(found, _)| found == name)
        .unwrap_or_else(|| panic!("no java sdk body {name}"));
    parse_webhook(body.as_bytes()).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn only_event(body: WebhookBody) -> Event {
    assert_eq!(body.events.len(), 1);
    body.events.into_iter().next().unwrap()
}

fn message(event: &Event) -> &MessageContent {
    match &event.kind {
        EventKind::Message(message) => message,
        other => panic!("not a message event: {other:?}"),
    }
}

fn user(user_id: &str) -> Option<Source> {
    Some(Source::User { user_id: Some(user_id.to_owned()) })
}

fn event_body(event: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "destination": "Uab012345678901234567890123456789",
        "events": [event],
    }))
    .unwrap()
}

fn parse_one(event: Value) -> Event {
    only_event(parse_webhook(&event_body(event)).unwrap())
}

fn with_common_fields(event_type: &str, fields: Value) -> Value {
    let mut event = json!({
        "type": event_type,
        "mode": "active",
        "timestamp": 1462629479859_i64,
        "source": {"type": "user", "userId": USER},
        "webhookEventId": "01FZ74A0TDDPYRVKNK77XKC3ZR",
        "deliveryContext": {"isRedelivery": false},
    });
    let Value::Object(fields) = fields else { panic!("fields must be an object") };
    event.as_object_mut().unwrap().extend(fields);
    event
}

#[test]
fn the_python_sdk_body_has_all_28_events_in_order() {
    let body = parse_webhook(PYTHON_SDK_BODY).unwrap();

    let types: Vec<&str> = body.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(body.destination.as_deref(), Some("U123"));
    assert_eq!(
        types,
        [
            "message",
            "message",
            "message",
            "message",
            "message",
            "message",
            "follow",
            "unfollow",
            "join",
            "leave",
            "postback",
            "beacon",
            "beacon",
            "accountLink",
            "message",
            "message",
            "postback",
            "postback",
            "postback",
            "memberJoined",
            "memberLeft",
            "message",
            "unsend",
            "videoPlayComplete",
            "message",
            "message",
            "messageEdited",
            "undefined",
        ]
    );
}

#[test]
fn every_python_sdk_event_keeps_its_common_fields_and_raw_json() {
    let body = parse_webhook(PYTHON_SDK_BODY).unwrap();
    let raw: Value = serde_json::from_slice(PYTHON_SDK_BODY).unwrap();

    for (index, event) in body.events.iter().enumerate() {
        assert_eq!(event.raw, raw["events"][index], "event {index}");
        assert_eq!(event.mode, Some(EventMode::Active), "event {index}");
        assert_eq!(event.webhook_event_id.as_deref(), Some("testwebhookeventid"), "event {index}");
        assert!(event.timestamp > 1_400_000_000_000, "event {index}");
        assert_eq!(event.reply_token.as_deref(), raw["events"][index]["replyToken"].as_str(), "event {index}");
        assert!(!matches!(event.kind, EventKind::Invalid { .. }), "event {index}: {:?}", event.kind);
    }
}

#[test]
fn the_python_sdk_messages_are_typed() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    let MessageContent::Text(text) = message(&events[0]) else { panic!("{:?}", events[0].kind) };
    assert_eq!(text.id, "325708");
    assert_eq!(text.text, "Hello, world");
    assert_eq!(text.quote_token.as_deref(), Some("quoteToken"));
    assert_eq!(events[0].source, user(USER));
    assert_eq!(events[0].reply_token.as_deref(), Some(REPLY_TOKEN));
    assert_eq!(events[0].user_id(), Some(USER));
    assert_eq!(events[0].occurred_at().unwrap().to_rfc3339(), "2016-05-07T13:57:59.859+00:00");

    let MessageContent::Image(image) = message(&events[1]) else { panic!("{:?}", events[1].kind) };
    assert_eq!(
        image.content_provider,
        ContentProvider::External {
            original_content_url: Some("https://example.com".into()),
            preview_image_url: Some("https://example.com".into()),
        }
    );
    assert_eq!(image.image_set, None);
    assert_eq!(events[1].source, Some(Source::Room { room_id: ROOM.into(), user_id: None }));
    assert_eq!(events[1].user_id(), None);

    let MessageContent::Video(video) = message(&events[2]) else { panic!("{:?}", events[2].kind) };
    assert_eq!(video.duration, Some(60000));

    let MessageContent::Audio(audio) = message(&events[3]) else { panic!("{:?}", events[3].kind) };
    assert_eq!(audio.duration, Some(60000));
    assert_eq!(
        audio.content_provider,
        ContentProvider::External { original_content_url: Some("https://example.com".into()), preview_image_url: None }
    );

    let MessageContent::Location(location) = message(&events[4]) else { panic!("{:?}", events[4].kind) };
    assert_eq!(location.title.as_deref(), Some("my location"));
    assert_eq!(location.address.as_deref(), Some("Tokyo"));
    assert_eq!(location.latitude, 35.65910807942215);
    assert_eq!(location.longitude, 139.70372892916203);

    let MessageContent::Sticker(sticker) = message(&events[5]) else { panic!("{:?}", events[5].kind) };
    assert_eq!((sticker.package_id.as_str(), sticker.sticker_id.as_str()), ("1", "1"));
    assert_eq!(sticker.sticker_resource_type, Some(StickerResourceType::Static));
    assert_eq!(sticker.keywords, ["Love You", "Love"]);
    assert_eq!(sticker.text.as_deref(), Some("Just sticker"));

    let MessageContent::File(file) = message(&events[21]) else { panic!("{:?}", events[21].kind) };
    assert_eq!((file.file_name.as_str(), file.file_size), ("file.txt", 2138));

    let MessageContent::Image(image_set) = message(&events[24]) else { panic!("{:?}", events[24].kind) };
    assert_eq!(image_set.id, "354718705033693861");
    assert_eq!(image_set.content_provider, ContentProvider::Line);
    assert_eq!(
        image_set.image_set,
        Some(ImageSet { id: "E005D41A7288F41B655".into(), index: Some(2), total: Some(2) })
    );
    assert_eq!(events[24].reply_token.as_deref(), Some("fbf94e269485410da6b7e3a5e33283e8"));
}

#[test]
fn the_python_sdk_group_and_room_messages_name_their_sender() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    assert_eq!(events[14].source, Some(Source::Group { group_id: GROUP.into(), user_id: Some(USER.into()) }));
    assert_eq!(events[15].source, Some(Source::Room { room_id: ROOM.into(), user_id: Some(USER.into()) }));
    assert_eq!(events[14].user_id(), Some(USER));
    assert_eq!(events[15].user_id(), Some(USER));
}

#[test]
fn the_python_sdk_non_message_events_are_typed() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    assert_eq!(events[6].kind, EventKind::Follow { is_unblocked: true });
    assert_eq!(events[7].kind, EventKind::Unfollow);
    assert_eq!(events[7].reply_token, None);
    assert_eq!(events[8].kind, EventKind::Join);
    assert_eq!(events[8].source, Some(Source::Group { group_id: GROUP.into(), user_id: None }));
    assert_eq!(events[9].kind, EventKind::Leave);
    assert_eq!(
        events[10].kind,
        EventKind::Postback(Postback {
            data: "action=buyItem&itemId=123123&color=red".into(),
            params: [("datetime".to_owned(), "2017-12-25T01:00".to_owned())].into(),
        })
    );
    assert_eq!(
        events[11].kind,
        EventKind::Beacon(Beacon { hwid: "d41d8cd98f".into(), beacon_type: BeaconType::Enter, dm: None })
    );
    assert_eq!(
        events[12].kind,
        EventKind::Beacon(Beacon {
            hwid: "d41d8cd98f".into(),
            beacon_type: BeaconType::Enter,
            dm: Some("1234567890abcdef".into())
        })
    );
    assert_eq!(
        events[13].kind,
        EventKind::AccountLink(AccountLink { result: AccountLinkResult::Ok, nonce: "Vb771wDYtXuammLszK6h9A".into() })
    );
    let params: Vec<_> = [16, 17, 18]
        .iter()
        .map(|&index| match &events[index].kind {
            EventKind::Postback(postback) => postback.params.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        params,
        [
            [("date".to_owned(), "2013-04-01".to_owned())].into(),
            [("time".to_owned(), "10:00".to_owned())].into(),
            [("datetime".to_owned(), "2013-04-01T10:00".to_owned())].into(),
        ]
    );
    let members = vec![
        Source::User { user_id: Some("U4af4980629...".into()) },
        Source::User { user_id: Some("U91eeaf62d9...".into()) },
    ];
    assert_eq!(events[19].kind, EventKind::MemberJoined { members: members.clone() });
    assert_eq!(events[19].reply_token.as_deref(), Some("0f3779fba3b349968c5d07db31eabf65"));
    assert_eq!(events[20].kind, EventKind::MemberLeft { members });
    assert_eq!(events[20].timestamp, 1462629479960);
    assert_eq!(events[22].kind, EventKind::Unsend { message_id: "325708".into() });
    assert_eq!(events[23].kind, EventKind::VideoPlayComplete { tracking_id: "track_id".into() });
}

#[test]
fn a_redelivered_event_says_so() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    let redelivered: Vec<usize> =
        events.iter().enumerate().filter(|(_, event)| event.is_redelivery).map(|(index, _)| index).collect();
    assert_eq!(redelivered, [25, 27]);
}

#[test]
fn an_edited_message_is_typed_as_an_edit() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    let EventKind::MessageEdited(MessageContent::Text(text)) = &events[26].kind else {
        panic!("{:?}", events[26].kind)
    };
    assert_eq!(text.text, "Hello, edited world");
}

#[test]
fn the_python_sdk_unknown_event_is_kept_with_its_raw_json() {
    let events = parse_webhook(PYTHON_SDK_BODY).unwrap().events;

    let unknown = &events[27];
    assert_eq!(unknown.kind, EventKind::Unknown);
    assert_eq!(unknown.event_type, "undefined");
    assert_eq!(unknown.raw["undefinedField"], json!({"1": 1}));
    assert_eq!(unknown.source, user(USER));
}

#[test]
fn all_27_java_sdk_bodies_parse_without_invalid_events() {
    let bodies = java_sdk_bodies();

    assert_eq!(bodies.len(), 27);
    for (name, body) in bodies {
        let parsed = parse_webhook(body.as_bytes()).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(parsed.destination.as_deref(), Some("Uab012345678901234567890123456789"), "{name}");
        assert!(!parsed.events.is_empty(), "{name}");
        for event in parsed.events {
            assert!(!matches!(event.kind, EventKind::Invalid { .. }), "{name}: {:?}", event.kind);
        }
    }
}

#[test]
fn java_sdk_bodies_without_delivery_context_are_first_deliveries() {
    let event = only_event(java_sdk_body("text-user"));

    assert_eq!(event.webhook_event_id, None);
    assert!(!event.is_redelivery);
    let MessageContent::Text(text) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(text.quote_token, None);
}

#[test]
fn the_java_sdk_redelivery_body_is_a_redelivery() {
    let event = only_event(java_sdk_body("webhook-redelivery"));

    assert!(event.is_redelivery);
    assert_eq!(event.webhook_event_id.as_deref(), Some("01G2KZKG2DS765NMRH3GZFD8AP"));
}

#[test]
fn a_follow_without_details_is_not_an_unblock() {
    let event = only_event(java_sdk_body("follow"));

    assert_eq!(event.kind, EventKind::Follow { is_unblocked: false });
    assert_eq!(event.reply_token.as_deref(), Some(REPLY_TOKEN));
}

#[test]
fn a_standby_group_message_keeps_its_mode() {
    let event = only_event(java_sdk_body("text-group"));

    assert_eq!(event.mode, Some(EventMode::Standby));
    assert_eq!(
        event.source,
        Some(Source::Group { group_id: "u206d25c2ea6bd87c17655609a1c37cb8".into(), user_id: None })
    );
}

#[test]
fn text_emojis_are_typed() {
    let event = only_event(java_sdk_body("text-emojis"));

    let MessageContent::Text(text) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(
        text.emojis,
        [Emoji { index: 14, length: 6, product_id: "5ac1bfd5040ab15980c9b435".into(), emoji_id: "001".into() }]
    );
}

#[test]
fn text_mentions_tell_users_from_everyone() {
    let event = only_event(java_sdk_body("text-mention"));

    let MessageContent::Text(text) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(
        text.mention,
        Some(Mention {
            mentionees: vec![
                Mentionee {
                    index: 13,
                    length: 6,
                    target: MentionTarget::User {
                        user_id: Some("U12345678901234567890123456780".into()),
                        is_self: false
                    }
                },
                Mentionee { index: 24, length: 5, target: MentionTarget::All },
            ]
        })
    );
}

#[test]
fn java_sdk_sticker_variants_are_typed() {
    let sticker = |name| match message(&only_event(java_sdk_body(name))) {
        MessageContent::Sticker(sticker) => sticker.clone(),
        other => panic!("{name}: {other:?}"),
    };

    let with_text = sticker("sticker-with-text");
    assert_eq!(with_text.sticker_resource_type, Some(StickerResourceType::Message));
    assert_eq!(with_text.text.as_deref(), Some("userEnteredText"));
    assert_eq!(with_text.keywords, ["bed", "sleep", "bedtime"]);
    assert_eq!(sticker("sticker-keywords-array").keywords, ["keyword"]);
    assert!(sticker("sticker-keywords-remove").keywords.is_empty());
}

#[test]
fn java_sdk_media_bodies_are_typed() {
    let event = only_event(java_sdk_body("image"));
    let MessageContent::Image(image) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(
        image.content_provider,
        ContentProvider::External {
            original_content_url: Some("https://example.com/original.jpg".into()),
            preview_image_url: Some("https://example.com/preview.jpg".into()),
        }
    );

    let event = only_event(java_sdk_body("file"));
    let MessageContent::File(file) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!((file.file_name.as_str(), file.file_size), ("sample.pdf", 22016));

    let event = only_event(java_sdk_body("location"));
    let MessageContent::Location(location) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(location.address.as_deref(), Some("〒150-0002 東京都渋谷区渋谷２丁目２１−１"));

    let event = only_event(java_sdk_body("video"));
    let MessageContent::Video(video) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(video.duration, Some(60000));
}

#[test]
fn an_empty_postback_params_object_is_empty() {
    let event = only_event(java_sdk_body("postback"));

    let EventKind::Postback(postback) = event.kind else { panic!("{:?}", event.kind) };
    assert!(postback.params.is_empty());
}

#[test]
fn the_java_sdk_unknown_types_are_kept() {
    let body = java_sdk_body("unknown");

    assert_eq!(body.events.len(), 2);
    assert_eq!(body.events[0].kind, EventKind::Unknown);
    assert_eq!(body.events[0].event_type, "greatNewFeature");
    assert_eq!(body.events[0].reply_token.as_deref(), Some(REPLY_TOKEN));
    let second = &body.events[1];
    assert_eq!(
        second.kind,
        EventKind::Message(MessageContent::Unknown {
            message_type: "unknownunknownuknown".into(),
            id: Some("325708".into()),
            raw: json!({"id": "325708", "type": "unknownunknownuknown", "unknown": "blah blah"}),
        })
    );
    assert_eq!(
        second.source,
        Some(Source::Unknown {
            source_type: "unknownunknownuknown".into(),
            raw: json!({"type": "unknownunknownuknown"}),
        })
    );
    assert_eq!(message(second).id(), Some("325708"));
    assert_eq!(message(second).message_type(), "unknownunknownuknown");
}

#[test]
fn the_java_sdk_group_events_are_typed() {
    assert_eq!(only_event(java_sdk_body("join")).kind, EventKind::Join);
    assert_eq!(only_event(java_sdk_body("leave")).kind, EventKind::Leave);
    assert_eq!(only_event(java_sdk_body("unfollow")).kind, EventKind::Unfollow);
    assert_eq!(
        only_event(java_sdk_body("member_joined")).kind,
        EventKind::MemberJoined { members: vec![Source::User { user_id: Some("U111111".into()) }] }
    );
    assert_eq!(
        only_event(java_sdk_body("member_left")).kind,
        EventKind::MemberLeft { members: vec![Source::User { user_id: Some("U111111".into()) }] }
    );
    assert_eq!(only_event(java_sdk_body("unsend")).kind, EventKind::Unsend { message_id: "325708".into() });
    assert_eq!(
        only_event(java_sdk_body("account_link")).kind,
        EventKind::AccountLink(AccountLink { result: AccountLinkResult::Ok, nonce: "xxxxxxxxxxxxxxx".into() })
    );
    assert_eq!(
        only_event(java_sdk_body("beacon_with_dm")).kind,
        EventKind::Beacon(Beacon {
            hwid: "374591320".into(),
            beacon_type: BeaconType::Enter,
            dm: Some("1234567890abcdef".into())
        })
    );
    assert_eq!(
        only_event(java_sdk_body("video-play-complete")).kind,
        EventKind::VideoPlayComplete { tracking_id: "track_id".into() }
    );
    let edited = only_event(java_sdk_body("message-edited"));
    assert!(matches!(edited.kind, EventKind::MessageEdited(MessageContent::Text(_))));
}

#[test]
fn quote_and_read_tokens_are_kept() {
    let event = parse_one(with_common_fields(
        "message",
        json!({
            "replyToken": REPLY_TOKEN,
            "message": {
                "id": "468789577898262530",
                "type": "text",
                "text": "Great!",
                "quoteToken": "q3Plxr4AgKd...",
                "quotedMessageId": "468789532432007169",
                "markAsReadToken": "30yhdy232...",
            },
        }),
    ));

    let MessageContent::Text(text) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(text.quote_token.as_deref(), Some("q3Plxr4AgKd..."));
    assert_eq!(text.quoted_message_id.as_deref(), Some("468789532432007169"));
    assert_eq!(text.mark_as_read_token.as_deref(), Some("30yhdy232..."));
}

#[test]
fn a_mention_of_the_bot_itself_says_so() {
    let event = parse_one(with_common_fields(
        "message",
        json!({"message": {
            "id": "1", "type": "text", "text": "@bot hi", "quoteToken": "q",
            "mention": {"mentionees": [
                {"index": 0, "length": 4, "type": "user", "userId": "Ubot", "isSelf": true},
                {"index": 5, "length": 2, "type": "group"}
            ]}
        }}),
    ));

    let MessageContent::Text(text) = message(&event) else { panic!("{:?}", event.kind) };
    let targets: Vec<_> = text.mention.as_ref().unwrap().mentionees.iter().map(|m| m.target.clone()).collect();
    assert_eq!(
        targets,
        [MentionTarget::User { user_id: Some("Ubot".into()), is_self: true }, MentionTarget::Other("group".into()),]
    );
}

#[test]
fn an_unknown_sticker_resource_type_is_kept() {
    let event = parse_one(with_common_fields(
        "message",
        json!({"message": {
            "id": "1", "type": "sticker", "packageId": "1", "stickerId": "2",
            "stickerResourceType": "HOLOGRAM", "quoteToken": "q"
        }}),
    ));

    let MessageContent::Sticker(sticker) = message(&event) else { panic!("{:?}", event.kind) };
    assert_eq!(sticker.sticker_resource_type, Some(StickerResourceType::Other("HOLOGRAM".into())));
}

#[test]
fn membership_events_are_typed() {
    let event = parse_one(with_common_fields(
        "membership",
        json!({"replyToken": "r", "membership": {"type": "renewed", "membershipId": 3189}}),
    ));

    assert_eq!(
        event.kind,
        EventKind::Membership(Membership { membership_type: MembershipChange::Renewed, membership_id: 3189 })
    );
    assert_eq!(event.reply_token.as_deref(), Some("r"));
}

#[test]
fn module_events_are_typed() {
    let attached = parse_one(with_common_fields(
        "module",
        json!({"module": {"type": "attached", "botId": "U111", "scopes": ["message:send", "message:receive"]}}),
    ));
    let detached = parse_one(with_common_fields(
        "module",
        json!({"module": {"type": "detached", "botId": "U111", "reason": "bot_deleted"}}),
    ));
    let unknown = parse_one(with_common_fields("module", json!({"module": {"type": "reattached"}})));

    assert_eq!(
        attached.kind,
        EventKind::Module(ModuleContent::Attached {
            bot_id: "U111".into(),
            scopes: vec!["message:send".into(), "message:receive".into()]
        })
    );
    assert_eq!(
        detached.kind,
        EventKind::Module(ModuleContent::Detached { bot_id: "U111".into(), reason: "bot_deleted".into() })
    );
    assert_eq!(unknown.kind, EventKind::Module(ModuleContent::Unknown { module_type: "reattached".into() }));
}

#[test]
fn chat_control_and_suspension_events_are_typed() {
    let kinds: Vec<EventKind> = [
        ("activated", json!({"chatControl": {"expireAt": 1462629479859_i64}})),
        ("deactivated", json!({})),
        ("botSuspended", json!({})),
        ("botResumed", json!({})),
    ]
    .into_iter()
    .map(|(event_type, fields)| parse_one(with_common_fields(event_type, fields)).kind)
    .collect();

    assert_eq!(
        kinds,
        [
            EventKind::Activated { expire_at: 1462629479859 },
            EventKind::Deactivated,
            EventKind::BotSuspended,
            EventKind::BotResumed,
        ]
    );
}

#[test]
fn things_and_delivery_events_are_typed() {
    let things = parse_one(with_common_fields(
        "things",
        json!({"replyToken": "r", "things": {"deviceId": "t2016", "type": "link"}}),
    ));
    let delivery =
        parse_one(with_common_fields("delivery", json!({"delivery": {"data": "d41d8cd98f00b204e9800998ecf8427e"}})));

    assert_eq!(
        things.kind,
        EventKind::Things(Things { device_id: "t2016".into(), things_type: "link".into(), result: None })
    );
    assert_eq!(delivery.kind, EventKind::Delivery { data: "d41d8cd98f00b204e9800998ecf8427e".into() });
}

#[test]
fn a_failed_account_link_and_a_banner_beacon_are_typed() {
    let link = parse_one(with_common_fields("accountLink", json!({"link": {"result": "failed", "nonce": "n"}})));
    let beacon =
        parse_one(with_common_fields("beacon", json!({"replyToken": "r", "beacon": {"hwid": "h", "type": "banner"}})));

    assert_eq!(link.kind, EventKind::AccountLink(AccountLink { result: AccountLinkResult::Failed, nonce: "n".into() }));
    assert_eq!(link.reply_token, None);
    assert_eq!(beacon.kind, EventKind::Beacon(Beacon { hwid: "h".into(), beacon_type: BeaconType::Banner, dm: None }));
}

#[test]
fn a_known_event_with_the_wrong_shape_is_invalid_not_an_error() {
    let event = parse_one(with_common_fields("message", json!({"message": {"id": "1", "type": "text"}})));

    let EventKind::Invalid { reason } = &event.kind else { panic!("{:?}", event.kind) };
    assert!(reason.contains("text"), "{reason}");
    assert_eq!(event.event_type, "message");
    assert_eq!(event.raw["message"]["id"], "1");
}

#[test]
fn a_message_event_without_a_message_is_invalid() {
    let event = parse_one(with_common_fields("message", json!({})));

    assert_eq!(event.kind, EventKind::Invalid { reason: "missing field `message`".into() });
}

#[test]
fn an_empty_event_list_is_a_valid_body() {
    let body = parse_webhook(br#"{"destination":"Uab012345678901234567890123456789","events":[]}"#).unwrap();

    assert!(body.events.is_empty());
}

#[test]
fn a_body_that_is_not_json_is_a_parse_error() {
    assert!(matches!(parse_webhook(b"destination=U1&events="), Err(ParseError::NotJson(_))));
    assert!(matches!(parse_webhook(b""), Err(ParseError::NotJson(_))));
}

#[test]
fn a_body_without_events_is_a_parse_error() {
    assert!(matches!(parse_webhook(br#"{"destination":"U1"}"#), Err(ParseError::MissingEvents)));
    assert!(matches!(parse_webhook(br#"{"destination":"U1","events":{}}"#), Err(ParseError::MissingEvents)));
}

#[test]
fn a_body_without_destination_or_not_an_object_is_a_parse_error() {
    assert_eq!(parse_webhook(br#"{"events":[]}"#).unwrap().destination, None, "older bodies have no destination");
    assert!(matches!(parse_webhook(br#"{"destination":7,"events":[]}"#), Err(ParseError::MalformedDestination)));
    assert!(matches!(parse_webhook(br#"[{"events":[]}]"#), Err(ParseError::NotAnObject)));
}

#[test]
fn an_event_without_type_or_timestamp_is_a_parse_error() {
    let without_type = br#"{"destination":"U1","events":[{"timestamp":1}]}"#;
    let without_timestamp = br#"{"destination":"U1","events":[{"type":"follow"},{"type":"x","timestamp":"1"}]}"#;
    let not_an_object = br#"{"destination":"U1","events":[{"type":"follow","timestamp":1},"follow"]}"#;

    assert!(matches!(parse_webhook(without_type), Err(ParseError::MalformedEvent { index: 0, reason: "no type" })));
    assert!(matches!(parse_webhook(without_timestamp), Err(ParseError::MalformedEvent { index: 0, .. })));
    assert!(matches!(
        parse_webhook(not_an_object),
        Err(ParseError::MalformedEvent { index: 1, reason: "not an object" })
    ));
}

#[test]
fn parse_errors_read_as_lowercase_sentences() {
    let error = parse_webhook(br#"{"destination":"U1"}"#).unwrap_err();

    assert_eq!(error.to_string(), "webhook body has no events array");
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("message".to_owned()),
                    Just("id".to_owned()),
                    Just("text".to_owned()),
                    "[a-zA-Z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_webhook(&body);
    }

    #[test]
    fn any_event_with_a_type_and_timestamp_parses(
        event_type in prop_oneof![
            Just("message".to_owned()), Just("follow".to_owned()), Just("postback".to_owned()),
            Just("memberJoined".to_owned()), Just("module".to_owned()), Just("beacon".to_owned()),
            "[a-zA-Z]{1,12}",
        ],
        timestamp in any::<i64>(),
        payload in proptest::collection::btree_map(
            prop_oneof![
                Just("message".to_owned()), Just("source".to_owned()), Just("replyToken".to_owned()),
                Just("postback".to_owned()), Just("joined".to_owned()), Just("module".to_owned()),
                Just("beacon".to_owned()), Just("deliveryContext".to_owned()), Just("mode".to_owned()),
            ],
            any_json(),
            0..5,
        ),
    ) {
        let mut event: Map<String, Value> = payload.into_iter().collect();
        event.insert("type".into(), event_type.clone().into());
        event.insert("timestamp".into(), timestamp.into());
        let event = Value::Object(event);

        let parsed = parse_one(event.clone());

        prop_assert_eq!(parsed.event_type, event_type);
        prop_assert_eq!(parsed.timestamp, timestamp);
        prop_assert_eq!(parsed.raw, event);
    }
}
