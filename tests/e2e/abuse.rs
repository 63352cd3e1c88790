//! What an attacker would try against sign-in and uploads: many guesses in
//! one request, guesses raced at once, floods from one address, probing
//! which emails exist in several portals, and uploads without a session.

use std::time::Duration;

use futures::future::join_all;
use madoguchi_core::auth::{Email, Password};
use madoguchi_core::organizations::{CreateOrganization, Name, PortalName};
use madoguchi_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(
    one_request_carries_one_login,
    racing_guesses_for_one_account_stop_at_its_limit,
    one_address_is_limited_across_accounts,
    an_email_in_several_portals_is_not_revealed_by_a_wrong_password,
    a_success_in_one_portal_does_not_clear_the_guesses_against_another,
    a_login_sent_over_a_websocket_counts_against_the_address,
    an_upload_without_a_session_is_refused_before_its_body_is_read,
    passcode_guesses_are_limited_per_customer_and_per_organization,
    list_sizes_count_in_a_querys_cost_and_message_pages_are_capped,
);

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { token } }";

async fn try_login(app: &TestApp, email: &str, password: &str) -> Value {
    app.graphql(None, LOGIN, json!({"input": {"email": email, "password": password}})).await
}

async fn one_request_carries_one_login(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let aliased: String = (0..30)
        .map(|n| format!("l{n}: login(input: {{email: \"{ADMIN_EMAIL}\", password: \"guess {n}\"}}) {{ token }} "))
        .collect();
    let answer = app.graphql(None, &format!("mutation {{ {aliased} }}"), json!({})).await;
    assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{answer}");
    assert_eq!(answer["errors"][0]["message"], "one login per request");
    assert!(answer["data"].is_null(), "{answer}");
    // Spreading one fragment holding a login runs it once per spread.
    let spread = format!(
        "mutation {{ ...F ...F ...F }} fragment F on Mutation {{ \
         login(input: {{email: \"{ADMIN_EMAIL}\", password: \"a guess\"}}) {{ token }} }}"
    );
    let answer = app.graphql(None, &spread, json!({})).await;
    assert_eq!(answer["errors"][0]["message"], "one login per request", "{answer}");
    // None of them was tried: the account is not locked.
    assert!(!app.login_admin().await.is_empty());
}

async fn racing_guesses_for_one_account_stop_at_its_limit(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let guesses = join_all((0..30).map(|n| {
        let app = &app;
        async move { try_login(app, ADMIN_EMAIL, &format!("wrong guess number {n}")).await }
    }))
    .await;
    let codes: Vec<&str> = guesses.iter().map(error_code).collect();
    let tried = codes.iter().filter(|code| **code == "UNAUTHENTICATED").count();
    let refused = codes.iter().filter(|code| **code == "RESOURCE_EXHAUSTED").count();
    assert_eq!((tried, refused), (10, 20), "{codes:?}");
    // The right password is refused too until the window has passed.
    let right = try_login(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(error_code(&right), "RESOURCE_EXHAUSTED", "{right}");
    assert!(right["errors"][0]["message"].as_str().unwrap().contains("try again after"), "{right}");
    // Another account is not affected.
    let other = try_login(&app, "nobody@acme.example", "whatever it is").await;
    assert_eq!(error_code(&other), "UNAUTHENTICATED");
    // Once the 15-minute window has passed, the right password works again.
    app.clock.advance(chrono::Duration::minutes(16));
    let right = try_login(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(right["data"]["login"]["token"].is_string(), "{right}");
}

async fn one_address_is_limited_across_accounts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for n in 0..100 {
        let answer = try_login(&app, &format!("user{n}@acme.example"), "a guessed password").await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "attempt {n}: {answer}");
    }
    let answer = try_login(&app, "user100@acme.example", "a guessed password").await;
    assert_eq!(error_code(&answer), "RESOURCE_EXHAUSTED", "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("from this address"), "{answer}");
}

/// Creates a second portal, `other`, whose admin has the first portal's
/// admin's email and `password`.
async fn portal_named_other_with_the_admins_email(app: &TestApp, password: &str) {
    let other = CreateOrganization {
        name: Name::parse("Other").unwrap(),
        portal_name: PortalName::parse("other").unwrap(),
        admin_email: Email::parse(ADMIN_EMAIL).unwrap(),
        admin_name: Name::parse("Other admin").unwrap(),
        admin_password: Password::parse(password).unwrap(),
    };
    app.core.organizations().create(other).await.unwrap();
}

async fn an_email_in_several_portals_is_not_revealed_by_a_wrong_password(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    portal_named_other_with_the_admins_email(&app, "the other portal's password").await;

    let wrong = try_login(&app, ADMIN_EMAIL, "not anyone's password").await;
    assert_eq!(error_code(&wrong), "UNAUTHENTICATED", "{wrong}");
    assert_eq!(wrong["errors"][0]["message"], "invalid email or password");
    // The right password of one portal signs in there.
    let token = try_login(&app, ADMIN_EMAIL, "the other portal's password").await;
    let token = token["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{token}")).to_owned();
    let organization = app.graphql(Some(&token), "{ organization { portalName } }", json!({})).await;
    assert_eq!(organization["data"]["organization"]["portalName"], "other", "{organization}");
    let mine = try_login(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(mine["data"]["login"]["token"].is_string(), "{mine}");
}

/// Another tenant's admin can make an agent with the victim's email and a
/// password they know. Signing in as that agent must not clear the guesses
/// counted against the victim, or guessing could go on forever, nine at a
/// time.
async fn a_success_in_one_portal_does_not_clear_the_guesses_against_another(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    portal_named_other_with_the_admins_email(&app, "the attacker's own password").await;
    let in_portal = |portal: &'static str, password: String| {
        let app = &app;
        async move {
            let input = json!({"email": ADMIN_EMAIL, "password": password, "portal": portal});
            app.graphql(None, LOGIN, json!({"input": input})).await
        }
    };
    for n in 0..9 {
        let guess = in_portal("acme", format!("guess number {n}")).await;
        assert_eq!(error_code(&guess), "UNAUTHENTICATED", "{guess}");
    }
    let own = in_portal("other", "the attacker's own password".to_owned()).await;
    assert!(own["data"]["login"]["token"].is_string(), "{own}");
    let tenth = in_portal("acme", "guess number 9".to_owned()).await;
    assert_eq!(error_code(&tenth), "UNAUTHENTICATED", "{tenth}");
    // The victim's eleventh attempt is over the limit, right password or not.
    let right = in_portal("acme", ADMIN_PASSWORD.to_owned()).await;
    assert_eq!(error_code(&right), "RESOURCE_EXHAUSTED", "{right}");
    // The attacker's own account is still theirs to use.
    let own = in_portal("other", "the attacker's own password".to_owned()).await;
    assert!(own["data"]["login"]["token"].is_string(), "{own}");
}

/// A socket's operations know the client's address as a request does: a
/// login sent on a socket opened before the address ran out is refused too.
async fn a_login_sent_over_a_websocket_counts_against_the_address(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let token = app.login_admin().await;
    let url = format!("ws://{}/graphql/ws", app.http);
    let mut ws =
        madoguchi_tests::graphql_ws::GraphqlWs::connect(&url, json!({"authorization": format!("Bearer {token}")}))
            .await
            .unwrap();
    for n in 1..100 {
        let answer = try_login(&app, &format!("user{n}@acme.example"), "a guessed password").await;
        assert_eq!(error_code(&answer), "UNAUTHENTICATED", "attempt {n}: {answer}");
    }
    let login = json!({"input": {"email": "someone@acme.example", "password": "a guessed password"}});
    ws.subscribe("1", LOGIN, login).await;
    let answer = match ws.next().await {
        madoguchi_tests::graphql_ws::Received::Message(message) => message,
        closed => panic!("{closed:?}"),
    };
    assert_eq!(answer["payload"]["errors"][0]["extensions"]["code"], "RESOURCE_EXHAUSTED", "{answer}");
    assert!(answer["payload"]["errors"][0]["message"].as_str().unwrap().contains("from this address"), "{answer}");
}

async fn an_upload_without_a_session_is_refused_before_its_body_is_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    // Headers promising 10 MB of multipart, then only the first bytes.
    let mut stream = tokio::net::TcpStream::connect(app.http).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 10000000\r\n\r\n--x\r\n",
        app.http
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("UNAUTHENTICATED"), "{answer}");
}

pub(crate) async fn issue_passcode(app: &TestApp, admin: &str, name: &str) -> (String, String) {
    let contact = app
        .graphql(
            Some(admin),
            "mutation($name: String) { createContact(input: {name: $name}) { id } }",
            json!({"name": name}),
        )
        .await;
    let contact_id = contact["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{contact}")).to_owned();
    let issued = app
        .graphql(
            Some(admin),
            "mutation($id: ID!) { issuePasscode(contactId: $id) { code } }",
            json!({"id": contact_id}),
        )
        .await;
    (contact_id, issued["data"]["issuePasscode"]["code"].as_str().unwrap_or_else(|| panic!("{issued}")).to_owned())
}

async fn linked_contact(app: &TestApp, admin: &str, user: &str) -> Value {
    let chats = app
        .graphql(
            Some(admin),
            "query($user: String) { chats(filter: {customerId: $user}) { edges { node { endUser { contactId } } } } }",
            json!({"user": user}),
        )
        .await;
    chats["data"]["chats"]["edges"][0]["node"]["endUser"]["contactId"].clone()
}

/// The `n`th passcode-shaped message that is none of the `real` codes.
fn wrong_code(n: usize, real: &[&str]) -> String {
    (n..).map(|k| format!("@999-{:03}", k % 1000)).find(|code| !real.contains(&code.as_str())).expect("a free code")
}

async fn passcode_guesses_are_limited_per_customer_and_per_organization(backend: Backend) {
    use madoguchi_tests::line::text_event;
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;

    // Five guesses are checked; the sixth message, the right code, is not.
    let (_, code) = issue_passcode(&app, &admin, "Guessed").await;
    let mut events: Vec<Value> =
        (0..5).map(|n| text_event("Uguesser", &format!("g{n}"), &wrong_code(n, &[&code]), "r")).collect();
    events.push(text_event("Uguesser", "g-right", &code, "r-right"));
    assert_eq!(app.deliver_line(&channel, events).await, 200);
    assert!(linked_contact(&app, &admin, "Uguesser").await.is_null(), "the sixth attempt redeemed nothing");
    // Another customer may still redeem it.
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uhonest", "h1", &code, "r-h1")]).await, 200);
    assert!(linked_contact(&app, &admin, "Uhonest").await.is_string(), "a first attempt is checked");

    // A hundred checks per organization per hour, across customers.
    let (_, second) = issue_passcode(&app, &admin, "Second").await;
    let events: Vec<Value> = (0..99)
        .map(|n| text_event(&format!("Ucrowd{n}"), &format!("c{n}"), &wrong_code(n + 10, &[&code, &second]), "r"))
        .collect();
    assert_eq!(app.deliver_line(&channel, events).await, 200);
    assert_eq!(app.deliver_line(&channel, vec![text_event("Ulate", "late", &second, "r-late")]).await, 200);
    assert!(linked_contact(&app, &admin, "Ulate").await.is_null(), "over the organization's hourly checks");
}

async fn list_sizes_count_in_a_querys_cost_and_message_pages_are_capped(backend: Backend) {
    use madoguchi_tests::line::text_event;
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let events: Vec<Value> =
        (0..150).map(|n| text_event("Uchatty", &format!("m{n:03}"), &format!("message {n:03}"), "r")).collect();
    assert_eq!(app.deliver_line(&channel, events).await, 200);

    let nested = "{ chats(first: 100) { edges { node { messages(first: 500) { attachments { url } } } } } }";
    let refused = app.graphql(Some(&admin), nested, json!({})).await;
    assert_eq!(error_code(&refused), "INVALID_ARGUMENT", "{refused}");
    assert_eq!(refused["errors"][0]["message"], "Query is too complex.");
    let usual = "{ chats(first: 50) { edges { cursor node { id status unreadCount lastMessagePreview lastMessageAt \
                 claimedBy endUser { displayName customerId blocked } } } pageInfo { hasNextPage endCursor } } }";
    let answer = app.graphql(Some(&admin), usual, json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let chat_id = answer["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();

    let page = "query($id: ID!, $first: Int, $to: DateTime) { chat(id: $id) { messages(first: $first, to: $to) { text createdAt attachments { url } } } }";
    let newest = app.graphql(Some(&admin), page, json!({"id": chat_id})).await;
    let newest = newest["data"]["chat"]["messages"].as_array().unwrap_or_else(|| panic!("{newest}")).clone();
    assert_eq!(newest.len(), 100, "a page holds 100 by default");
    assert_eq!(newest.last().unwrap()["text"], "message 149", "the newest last");
    let too_many = app.graphql(Some(&admin), page, json!({"id": chat_id, "first": 501})).await;
    assert_eq!(error_code(&too_many), "INVALID_ARGUMENT", "{too_many}");
    // The largest page is fine with a light selection; its cost grows with it.
    let light = "query($id: ID!) { chat(id: $id) { messages(first: 500) { text } } }";
    let all = app.graphql(Some(&admin), light, json!({"id": chat_id})).await;
    assert_eq!(all["data"]["chat"]["messages"].as_array().map(Vec::len), Some(150), "{all}");
    let heavy_page = "query($id: ID!) { chat(id: $id) { messages(first: 500) { id kind direction text deliveryState createdAt attachments { id status contentType url } } } }";
    let heavy = app.graphql(Some(&admin), heavy_page, json!({"id": chat_id})).await;
    assert_eq!(heavy["errors"][0]["message"], "Query is too complex.", "{heavy}");
}
