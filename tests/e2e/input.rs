//! Input that used to reach a panic gets a clear error instead, and the
//! server answers the next request as usual.

use madoguchi_tests::line::text_event;
use madoguchi_tests::{Backend, error_code, spawn_app};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

on_both_backends!(
    out_of_range_dates_and_lifetimes_are_invalid_arguments_not_panics,
    oversized_labels_searches_and_id_lists_are_refused_and_change_nothing,
);

async fn out_of_range_dates_and_lifetimes_are_invalid_arguments_not_panics(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    assert_eq!(app.deliver_line(&channel, vec![text_event("Udates", "m1", "hi", "r1")]).await, 200);
    let chats = app.graphql(Some(&admin), "{ chats { edges { node { id } } } }", json!({})).await;
    let chat_id = chats["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap().to_owned();

    let messages =
        "query($id: ID!, $from: DateTime, $to: DateTime) { chat(id: $id) { messages(from: $from, to: $to) { id } } }";
    for (from, to) in [
        (None, Some("-262143-01-01T00:00:00Z")),
        (Some("+262142-12-31T23:59:59Z"), None),
        (Some("1969-12-31T23:59:59Z"), Some("2020-01-01T00:00:00Z")),
    ] {
        let answer = app.graphql(Some(&admin), messages, json!({"id": chat_id, "from": from, "to": to})).await;
        assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{from:?} {to:?}: {answer}");
    }
    let within = app
        .graphql(
            Some(&admin),
            messages,
            json!({"id": chat_id, "from": "1970-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}),
        )
        .await;
    assert_eq!(within["data"]["chat"]["messages"].as_array().map(Vec::len), Some(1), "{within}");

    let contact =
        app.graphql(Some(&admin), "mutation { createContact(input: {name: \"Kim\"}) { id } }", json!({})).await;
    let contact_id = contact["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{contact}")).to_owned();
    let issue = "mutation($id: ID!, $minutes: Int) { issuePasscode(contactId: $id, validMinutes: $minutes) { code } }";
    for minutes in [json!(i64::MAX), json!(i64::MIN), json!(0), json!(7 * 24 * 60 + 1)] {
        let answer = app.graphql(Some(&admin), issue, json!({"id": contact_id, "minutes": minutes})).await;
        assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{minutes}: {answer}");
    }
    let issued = app.graphql(Some(&admin), issue, json!({"id": contact_id, "minutes": null})).await;
    assert!(issued["data"]["issuePasscode"]["code"].is_string(), "{issued}");
}

/// A contact's labels and what is searched for are short texts; a list of
/// ids has at most a thousand. Past that: `INVALID_ARGUMENT` naming the
/// field, and nothing stored; at the bound itself, the request works.
async fn oversized_labels_searches_and_id_lists_are_refused_and_change_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let admin = app.login_admin().await;
    let long = "x".repeat(201);
    let longest = "x".repeat(200);
    let create = "mutation($input: ContactInput!) { createContact(input: $input) { id accountName } }";
    for field in ["accountName", "slaName", "contractName", "ownerName"] {
        let answer = app.graphql(Some(&admin), create, json!({"input": {"name": "Kim", field: long}})).await;
        assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{field}: {answer}");
        assert!(answer["errors"][0]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let contacts = madoguchi_entity::contacts::Entity::find().count(app.core.db()).await.unwrap();
    assert_eq!(contacts, 0, "no contact was stored");
    let created = app.graphql(Some(&admin), create, json!({"input": {"name": "Kim", "accountName": longest}})).await;
    assert_eq!(created["data"]["createContact"]["accountName"], longest.as_str(), "{created}");
    let id = created["data"]["createContact"]["id"].clone();
    let update = "mutation($id: ID!, $input: ContactInput!) { updateContact(id: $id, input: $input) { ownerName } }";
    let answer = app.graphql(Some(&admin), update, json!({"id": id, "input": {"ownerName": long}})).await;
    assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{answer}");

    for search in [
        "query($text: String!) { searchContacts(text: $text) { id } }",
        "query($text: String!) { searchTickets(text: $text) { id } }",
    ] {
        let answer = app.graphql(Some(&admin), search, json!({"text": long})).await;
        assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{search}: {answer}");
        let answer = app.graphql(Some(&admin), search, json!({"text": longest})).await;
        assert!(answer["errors"].is_null(), "{search}: {answer}");
    }
    let chats = "query($filter: ChatFilterInput) { chats(filter: $filter) { edges { node { id } } } }";
    for field in ["customerId", "customerName", "phone"] {
        let answer = app.graphql(Some(&admin), chats, json!({"filter": {field: long}})).await;
        assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{field}: {answer}");
    }
    // A status listed many times is one status.
    let statuses = vec!["NEW"; 5_000];
    let answer = app.graphql(Some(&admin), chats, json!({"filter": {"statuses": statuses}})).await;
    assert!(answer["errors"].is_null(), "{answer}");

    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    let ids: Vec<String> = (0..1_001).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let set = "mutation($id: ID!, $ids: [ID!]!) { setChannelAgents(id: $id, agentIds: $ids) }";
    let answer = app.graphql(Some(&admin), set, json!({"id": channel.id, "ids": ids})).await;
    assert_eq!(error_code(&answer), "INVALID_ARGUMENT", "{answer}");
    assert!(answer["errors"][0]["message"].as_str().unwrap().contains("agentIds"), "{answer}");
}
