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
    an_upload_without_a_session_is_refused_before_its_body_is_read,
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
    // None of the thirty was tried: the account is not locked.
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

async fn an_email_in_several_portals_is_not_revealed_by_a_wrong_password(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let second = CreateOrganization {
        name: Name::parse("Other").unwrap(),
        portal_name: PortalName::parse("other").unwrap(),
        admin_email: Email::parse(ADMIN_EMAIL).unwrap(),
        admin_name: Name::parse("Other admin").unwrap(),
        admin_password: Password::parse("the other portal's password").unwrap(),
    };
    app.core.organizations().create(second).await.unwrap();

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
