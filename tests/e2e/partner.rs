//! `ChatService` over real gRPC connections: a partner submits finished
//! chats from a channel we do not host, idempotently (also when racing),
//! and the helpdesk link's rule turns exactly the right ones into tickets;
//! chats and messages are listed page by page; bad input, a missing scope
//! and another tenant's ids are refused and change nothing.

use futures::future::join_all;
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::chat_service_client::ChatServiceClient;
use madoguchi_tests::{Backend, TestApp, spawn_app};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::grpc::{api_key, with_key};
use crate::tickets::linked;
use crate::timers::{portal, settled, tickets_of};

fn at(seconds_ago: i64) -> prost_types::Timestamp {
    let time = chrono::Utc::now() - chrono::Duration::seconds(seconds_ago);
    prost_types::Timestamp { seconds: time.timestamp(), nanos: 0 }
}

fn submission(partner_chat_id: &str, visitor: &str, department_id: &str, attended: bool) -> pb::SubmitChatRequest {
    let line = |sender: pb::MessageSender, text: &str, ago: i64| pb::SubmittedMessage {
        sender: sender.into(),
        text: text.into(),
        send_time: Some(at(ago)),
    };
    let mut transcript = vec![line(pb::MessageSender::Visitor, &format!("{visitor} needs help"), 120)];
    if attended {
        transcript.push(line(pb::MessageSender::Agent, "happy to help", 60));
    }
    pb::SubmitChatRequest {
        partner_chat_id: partner_chat_id.into(),
        visitor: Some(pb::SubmittedVisitor {
            id: visitor.into(),
            name: format!("Visitor {visitor}"),
            email: format!("{visitor}@example.com"),
        }),
        department_id: department_id.into(),
        transcript,
        attended,
    }
}

async fn client(app: &TestApp) -> ChatServiceClient<tonic::transport::Channel> {
    ChatServiceClient::new(app.grpc_channel().await)
}

async fn count_chats(app: &TestApp, key: &str) -> usize {
    let request = pb::ListChatsRequest { page_size: 100, ..Default::default() };
    client(app).await.list_chats(with_key(request, key)).await.unwrap().into_inner().chats.len()
}

async fn a_partner_submits_chats_that_follow_the_links_rule(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, helpdesk_department) = linked(&app).await;
    let set =
        "mutation { setChatToTicketRule(rule: MISSED, ticketStatus: OPEN, recentTickets: ALL_DEPARTMENTS) { rule } }";
    assert!(app.graphql(Some(&acme), set, json!({})).await["errors"].is_null());
    let shown = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    let department = shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned();
    let (key, _) = api_key(&app, &acme, &["chats:write"]).await;
    let mut chats = client(&app).await;

    // Attended: stored finished, no ticket under MISSED. Again: nothing new.
    let first = chats.submit_chat(with_key(submission("p-1", "v1", &department, true), &key)).await.unwrap();
    let first = first.into_inner();
    assert!(first.created);
    let chat = first.chat.unwrap();
    assert_eq!((chat.status(), chat.completion_reason.as_str()), (pb::ChatStatus::Completed, "SUBMITTED"));
    assert_eq!((chat.customer_id.as_str(), chat.customer_name.as_str()), ("v1", "Visitor v1"));
    assert!(!chat.contact_id.is_empty(), "linked to a contact by email");
    let again = chats.submit_chat(with_key(submission("p-1", "v1", &department, true), &key)).await.unwrap();
    let again = again.into_inner();
    assert_eq!((again.created, again.chat.unwrap().id), (false, chat.id.clone()));
    let messages = chats
        .list_messages(with_key(pb::ListMessagesRequest { chat_id: chat.id.clone(), ..Default::default() }, &key))
        .await
        .unwrap()
        .into_inner()
        .messages;
    let lines: Vec<(pb::MessageSender, String)> =
        messages.iter().map(|message| (message.sender(), message.text.clone())).collect();
    assert_eq!(
        lines,
        vec![(pb::MessageSender::Visitor, "v1 needs help".into()), (pb::MessageSender::Agent, "happy to help".into())]
    );
    // The visitor, back under another email, keeps the contact they have.
    let mut other_email = submission("p-1b", "v1", &department, true);
    other_email.visitor.as_mut().unwrap().email = "v1.elsewhere@example.com".into();
    let back = chats.submit_chat(with_key(other_email, &key)).await.unwrap().into_inner().chat.unwrap();
    assert_eq!(back.contact_id, chat.contact_id, "the visitor's contact stays");

    // Missed: one ticket, in the mapped helpdesk department, with its email.
    let missed = chats.submit_chat(with_key(submission("p-2", "v2", &department, false), &key)).await.unwrap();
    let missed = missed.into_inner().chat.unwrap();
    settled(&app, "chat.convert").await;
    let globex_id = portal(&app, "globex").await;
    let made = tickets_of(&app, globex_id).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].0.to_string(), missed.id);
    assert_eq!(made[0].1.map(|id| id.to_string()), Some(helpdesk_department));
    assert!(made[0].3.contains("v2 needs help"), "{}", made[0].3);
    let search = app.graphql(Some(&globex), "{ searchTickets(text: \"v2@example.com\") { email } }", json!({})).await;
    assert_eq!(search["data"]["searchTickets"], json!([{"email": "v2@example.com"}]), "{search}");

    // Racing submissions of one partner chat: one is created, all agree.
    for round in 0..5 {
        let id = format!("race-{round}");
        let answers = join_all((0..8).map(|_| {
            let (app, key, department, id) = (&app, &key, &department, &id);
            async move {
                let mut chats = client(app).await;
                chats.submit_chat(with_key(submission(id, &format!("r{round}"), department, true), key)).await
            }
        }))
        .await;
        let answers: Vec<pb::SubmitChatResponse> =
            answers.into_iter().map(|answer| answer.unwrap().into_inner()).collect();
        assert_eq!(answers.iter().filter(|answer| answer.created).count(), 1, "round {round}");
        let ids: std::collections::BTreeSet<String> =
            answers.into_iter().map(|answer| answer.chat.unwrap().id).collect();
        assert_eq!(ids.len(), 1, "round {round}");
        let request = pb::ListMessagesRequest { chat_id: ids.into_iter().next().unwrap(), ..Default::default() };
        let messages = chats.list_messages(with_key(request, &key)).await.unwrap().into_inner().messages;
        assert_eq!(messages.len(), 2, "round {round}: the transcript once");
    }

    // Paging: one chat a page, each once.
    let (mut seen, mut token) = (Vec::new(), String::new());
    loop {
        let request = pb::ListChatsRequest { page_size: 1, page_token: token.clone(), ..Default::default() };
        let page = chats.list_chats(with_key(request, &key)).await.unwrap().into_inner();
        seen.extend(page.chats.into_iter().map(|chat| chat.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let total = count_chats(&app, &key).await;
    assert_eq!(total, 7);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (total, total), "{seen:?}");
}

async fn bad_submissions_scopes_and_other_tenants_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, _) = linked(&app).await;
    let shown = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    let department = shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned();
    let (key, _) = api_key(&app, &acme, &["chats:write"]).await;
    let mut chats = client(&app).await;
    let mut empty = submission("bad-1", "b1", &department, true);
    empty.transcript.clear();
    let mut unsent = submission("bad-2", "b2", &department, true);
    unsent.transcript[0].send_time = None;
    let mut elsewhere = submission("bad-3", "b3", &department, true);
    let globex_departments = app.graphql(Some(&globex), "{ departments { id } }", json!({})).await;
    elsewhere.department_id = globex_departments["data"]["departments"][0]["id"].as_str().unwrap().to_owned();
    let mut no_visitor = submission("bad-4", "b4", &department, true);
    no_visitor.visitor = None;
    let mut no_sender = submission("bad-5", "b5", &department, true);
    no_sender.transcript[0].sender = pb::MessageSender::Unspecified.into();
    for (name, request, field) in [
        ("empty transcript", empty, "transcript"),
        ("no send time", unsent, "transcript[0].send_time"),
        ("another tenant's department", elsewhere, "department_id"),
        ("no visitor", no_visitor, "visitor.id"),
        ("no sender", no_sender, "transcript[0].sender"),
    ] {
        let refused = chats.submit_chat(with_key(request, &key)).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}: {refused:?}");
        assert!(refused.message().starts_with(field), "{name}: {}", refused.message());
        // google.rpc details: our code, and the field.
        let details = refused.get_error_details();
        assert_eq!(details.error_info().map(|info| info.reason.as_str()), Some("INVALID_ARGUMENT"), "{name}");
        let violations = details.bad_request().map(|bad| bad.field_violations.clone()).unwrap_or_default();
        assert_eq!(
            violations.iter().map(|violation| violation.field.as_str()).collect::<Vec<_>>(),
            vec![field],
            "{name}"
        );
    }
    assert_eq!(count_chats(&app, &key).await, 0, "nothing stored");

    let (reader, _) = api_key(&app, &acme, &["chats:read"]).await;
    let denied = chats.submit_chat(with_key(submission("p", "v", &department, true), &reader)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let reason = denied.get_error_details().error_info().map(|info| info.reason.clone());
    assert_eq!(reason.as_deref(), Some("PERMISSION_DENIED"));

    let stored = chats.submit_chat(with_key(submission("p", "v", &department, true), &key)).await.unwrap();
    let chat_id = stored.into_inner().chat.unwrap().id;
    let (theirs, _) = api_key(&app, &globex, &["chats:write"]).await;
    let hidden = chats.get_chat(with_key(pb::GetChatRequest { chat_id: chat_id.clone() }, &theirs)).await.unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let request = pb::ListMessagesRequest { chat_id, ..Default::default() };
    assert_eq!(chats.list_messages(with_key(request, &theirs)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(count_chats(&app, &theirs).await, 0);
    // The same partner chat id in another organization is its own chat.
    let their_departments = app.graphql(Some(&globex), "{ departments { id } }", json!({})).await;
    let their_department = their_departments["data"]["departments"][0]["id"].as_str().unwrap().to_owned();
    let own = chats.submit_chat(with_key(submission("p", "v", &their_department, true), &theirs)).await.unwrap();
    assert!(own.into_inner().created);
}

on_both_backends!(
    a_partner_submits_chats_that_follow_the_links_rule,
    bad_submissions_scopes_and_other_tenants_are_refused
);
