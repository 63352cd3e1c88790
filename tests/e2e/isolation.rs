//! The tenant isolation matrix: every helpdesk operation, on GraphQL and on
//! gRPC, by a chat side whose department maps as `DEPARTMENT`, `VIEW_ONLY`,
//! `NONE`, with its link disabled, and by an organization with no link
//! holding another organization's ids — each sees exactly what the rule in
//! core says, and both surfaces say the same.

use std::collections::BTreeMap;

use madoguchi_core::auth::{Email, Password};
use madoguchi_core::organizations::{CreateOrganization, Name, PortalName};
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::chat_service_client::ChatServiceClient;
use madoguchi_grpc::pb::ticket_service_client::TicketServiceClient;
use madoguchi_tests::line::TestChannel;
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tonic_types::StatusExt;

use crate::grpc::{api_key, with_key};
use crate::tickets::{chat_with_email, linked, set_mode};

const VISITOR_EMAIL: &str = "matrix@example.com";

/// What each operation answered: `OK`, `FOUND` / `NONE` for lists, a
/// portal name for desk information, or our error code.
type Outcomes = BTreeMap<&'static str, String>;

/// Who probes: a session token (GraphQL) or an API key (gRPC).
enum Surface<'a> {
    Graphql(&'a str),
    Grpc(&'a str),
}

fn outcome(result: Result<String, String>) -> String {
    result.unwrap_or_else(|code| code)
}

fn graphql_outcome(answer: &Value, field: &str, ok: impl FnOnce(&Value) -> String) -> String {
    if answer["errors"].is_null() { ok(&answer["data"][field]) } else { error_code(answer).to_owned() }
}

fn grpc_code(status: tonic::Status) -> String {
    // Our code, from the ErrorInfo every status carries.
    status.get_error_details().error_info().map(|info| info.reason.clone()).unwrap_or_else(|| format!("{status:?}"))
}

fn found(list: &[String], ticket: &str) -> String {
    if list.iter().any(|id| id == ticket) { "FOUND".into() } else { "NONE".into() }
}

/// Runs every operation once. `chat` is a fresh chat of the chat side whose
/// visitor has the ticket's email; `ticket` the helpdesk's ticket.
async fn probe(app: &TestApp, surface: &Surface<'_>, ticket: &str, chat: &str) -> Outcomes {
    let mut outcomes = Outcomes::new();
    match surface {
        Surface::Graphql(token) => {
            let ask = |query: &'static str, variables: Value| app.graphql(Some(token), query, variables);
            let get = ask("query($id: ID!) { ticket(id: $id) { id } }", json!({"id": ticket})).await;
            outcomes.insert("get", graphql_outcome(&get, "ticket", |_| "OK".into()));
            let ids = |list: &Value| {
                list.as_array()
                    .into_iter()
                    .flatten()
                    .map(|item| item["id"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            };
            let search =
                ask("query($t: String!) { searchTickets(text: $t) { id } }", json!({"t": VISITOR_EMAIL})).await;
            outcomes.insert("search", graphql_outcome(&search, "searchTickets", |list| found(&ids(list), ticket)));
            let recent = ask("query($c: ID!) { recentTickets(chatId: $c) { id } }", json!({"c": chat})).await;
            outcomes.insert("recent", graphql_outcome(&recent, "recentTickets", |list| found(&ids(list), ticket)));
            let comments = ask("query($id: ID!) { ticketComments(ticketId: $id) { id } }", json!({"id": ticket})).await;
            outcomes.insert("comments", graphql_outcome(&comments, "ticketComments", |_| "OK".into()));
            let comment = ask(
                "mutation($id: ID!) { commentOnTicket(ticketId: $id, body: \"hi\") { id } }",
                json!({"id": ticket}),
            )
            .await;
            outcomes.insert("comment", graphql_outcome(&comment, "commentOnTicket", |_| "OK".into()));
            let status =
                ask("mutation($id: ID!) { setTicketStatus(id: $id, status: OPEN) { id } }", json!({"id": ticket}))
                    .await;
            outcomes.insert("status", graphql_outcome(&status, "setTicketStatus", |_| "OK".into()));
            let desk = ask("query($c: ID!) { deskInformation(chatId: $c) { portalName } }", json!({"c": chat})).await;
            outcomes.insert(
                "desk",
                graphql_outcome(&desk, "deskInformation", |desk| desk["portalName"].as_str().unwrap_or("NONE").into()),
            );
            let merge = ask(
                "mutation($c: ID!, $t: ID!) { mergeChatIntoTicket(chatId: $c, ticketId: $t) { id } }",
                json!({"c": chat, "t": ticket}),
            )
            .await;
            outcomes.insert("merge", graphql_outcome(&merge, "mergeChatIntoTicket", |_| "OK".into()));
            let convert = ask("mutation($c: ID!) { convertChatToTicket(chatId: $c) { id } }", json!({"c": chat})).await;
            outcomes.insert("convert", graphql_outcome(&convert, "convertChatToTicket", |_| "OK".into()));
            let read = ask("query($c: ID!) { chat(id: $c) { id } }", json!({"c": chat})).await;
            outcomes.insert("chat", graphql_outcome(&read, "chat", |_| "OK".into()));
        }
        Surface::Grpc(key) => {
            let mut tickets = TicketServiceClient::new(app.grpc_channel().await);
            let mut chats = ChatServiceClient::new(app.grpc_channel().await);
            let (ticket_id, chat_id) = (ticket.to_owned(), chat.to_owned());
            let ok = |result: Result<_, tonic::Status>| outcome(result.map(|_| "OK".to_owned()).map_err(grpc_code));
            let get = tickets.get_ticket(with_key(pb::GetTicketRequest { ticket_id: ticket_id.clone() }, key)).await;
            outcomes.insert("get", ok(get.map(|_| ())));
            let search = pb::SearchTicketsRequest { query: VISITOR_EMAIL.into(), ..Default::default() };
            let search = tickets.search_tickets(with_key(search, key)).await.map_err(grpc_code).map(|answer| {
                found(&answer.into_inner().tickets.into_iter().map(|ticket| ticket.id).collect::<Vec<_>>(), ticket)
            });
            outcomes.insert("search", outcome(search));
            let recent = pb::ListRecentTicketsRequest { chat_id: chat_id.clone(), ..Default::default() };
            let recent = tickets.list_recent_tickets(with_key(recent, key)).await.map_err(grpc_code).map(|answer| {
                found(&answer.into_inner().tickets.into_iter().map(|ticket| ticket.id).collect::<Vec<_>>(), ticket)
            });
            outcomes.insert("recent", outcome(recent));
            let comments = pb::ListTicketCommentsRequest { ticket_id: ticket_id.clone() };
            outcomes.insert("comments", ok(tickets.list_ticket_comments(with_key(comments, key)).await.map(|_| ())));
            let comment = pb::CommentOnTicketRequest { ticket_id: ticket_id.clone(), body: "hi".into() };
            outcomes.insert("comment", ok(tickets.comment_on_ticket(with_key(comment, key)).await.map(|_| ())));
            let status =
                pb::UpdateTicketStatusRequest { ticket_id: ticket_id.clone(), status: pb::TicketStatus::Open.into() };
            outcomes.insert("status", ok(tickets.update_ticket_status(with_key(status, key)).await.map(|_| ())));
            let desk = pb::GetDeskInformationRequest { chat_id: chat_id.clone() };
            let desk =
                tickets.get_desk_information(with_key(desk, key)).await.map_err(grpc_code).map(|answer| {
                    answer.into_inner().desk_information.map_or("NONE".to_owned(), |desk| desk.portal_name)
                });
            outcomes.insert("desk", outcome(desk));
            let merge = pb::MergeChatRequest { chat_id: chat_id.clone(), ticket_id: ticket_id.clone() };
            outcomes.insert("merge", ok(tickets.merge_chat(with_key(merge, key)).await.map(|_| ())));
            let convert = pb::ConvertChatRequest { chat_id: chat_id.clone(), ..Default::default() };
            outcomes.insert("convert", ok(tickets.convert_chat(with_key(convert, key)).await.map(|_| ())));
            let read = pb::GetChatRequest { chat_id };
            outcomes.insert("chat", ok(chats.get_chat(with_key(read, key)).await.map(|_| ())));
        }
    }
    outcomes
}

fn expect(rows: &[(&'static str, &str)]) -> Outcomes {
    rows.iter().map(|(operation, outcome)| (*operation, (*outcome).to_owned())).collect()
}

async fn every_operation_sees_exactly_what_the_mapping_says_on_both_surfaces(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, helpdesk_department) = linked(&app).await;
    let department = channel_department(&app, &acme, &channel).await;
    // The helpdesk knows the visitor, with their account and SLA.
    let contact = app
        .graphql(
            Some(&globex),
            "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
            json!({"input": {"name": "Matrix", "email": VISITOR_EMAIL, "accountName": "Matrix Inc.", "slaName": "Gold"}}),
        )
        .await;
    assert!(contact["errors"].is_null(), "{contact}");
    let first = chat_with_email(&app, &acme, &channel, "Ufirst", Some(VISITOR_EMAIL)).await;
    let converted = app
        .graphql(Some(&acme), "mutation($c: ID!) { convertChatToTicket(chatId: $c) { id } }", json!({"c": first}))
        .await;
    let ticket =
        converted["data"]["convertChatToTicket"]["id"].as_str().unwrap_or_else(|| panic!("{converted}")).to_owned();
    let desk = app
        .graphql(
            Some(&acme),
            "query($c: ID!) { deskInformation(chatId: $c) { portalName accountName slaName } }",
            json!({"c": first}),
        )
        .await;
    assert_eq!(
        desk["data"]["deskInformation"],
        json!({"portalName": "globex", "accountName": "Matrix Inc.", "slaName": "Gold"})
    );
    let (acme_key, _) = api_key(&app, &acme, &["tickets:write", "chats:write"]).await;
    let initech = third_tenant(&app).await;
    let (initech_key, _) = api_key(&app, &initech, &["tickets:write", "chats:write"]).await;

    let writes = expect(&[
        ("get", "OK"),
        ("search", "FOUND"),
        ("recent", "FOUND"),
        ("comments", "OK"),
        ("comment", "OK"),
        ("status", "OK"),
        ("desk", "globex"),
        ("merge", "OK"),
        ("convert", "OK"),
        ("chat", "OK"),
    ]);
    let views = expect(&[
        ("get", "OK"),
        ("search", "FOUND"),
        ("recent", "FOUND"),
        ("comments", "OK"),
        ("comment", "PERMISSION_DENIED"),
        ("status", "PERMISSION_DENIED"),
        ("desk", "globex"),
        ("merge", "PERMISSION_DENIED"),
        ("convert", "PERMISSION_DENIED"),
        ("chat", "OK"),
    ]);
    // Nothing of the portal's reaches through; the chat side's own chat and
    // contact still do.
    let cut_off = |convert: &str| {
        expect(&[
            ("get", "NOT_FOUND"),
            ("search", "NONE"),
            ("recent", "NONE"),
            ("comments", "NOT_FOUND"),
            ("comment", "NOT_FOUND"),
            ("status", "NOT_FOUND"),
            ("desk", "acme"),
            ("merge", "NOT_FOUND"),
            ("convert", convert),
            ("chat", "OK"),
        ])
    };
    let stranger = expect(&[
        ("get", "NOT_FOUND"),
        ("search", "NONE"),
        ("recent", "NOT_FOUND"),
        ("comments", "NOT_FOUND"),
        ("comment", "NOT_FOUND"),
        ("status", "NOT_FOUND"),
        ("desk", "NOT_FOUND"),
        ("merge", "NOT_FOUND"),
        ("convert", "NOT_FOUND"),
        ("chat", "NOT_FOUND"),
    ]);

    let situations: [(&str, Option<&str>, bool, Outcomes); 4] = [
        ("DEPARTMENT", Some(&helpdesk_department), true, writes),
        ("VIEW_ONLY", None, true, views),
        ("NONE", None, true, cut_off("PERMISSION_DENIED")),
        ("DEPARTMENT", Some(&helpdesk_department), false, cut_off("FAILED_PRECONDITION")),
    ];
    for (index, (mode, helpdesk, enabled, expected)) in situations.into_iter().enumerate() {
        set_mode(&app, &acme, &department, mode, helpdesk).await;
        let toggle = "mutation($on: Boolean!) { setHelpdeskLinkEnabled(enabled: $on) { enabled } }";
        assert!(app.graphql(Some(&acme), toggle, json!({"on": enabled})).await["errors"].is_null());
        let situation = format!("{mode}, link {}", if enabled { "enabled" } else { "disabled" });
        for (surface, name) in [(Surface::Graphql(&acme), "graphql"), (Surface::Grpc(&acme_key), "grpc")] {
            let chat = chat_with_email(&app, &acme, &channel, &format!("U{index}{name}"), Some(VISITOR_EMAIL)).await;
            assert_eq!(probe(&app, &surface, &ticket, &chat).await, expected, "{situation} on {name}");
            let outsider = probe(&app, &Surface::Graphql(&initech), &ticket, &chat).await;
            assert_eq!(outsider, stranger, "an organization with no link, {situation}, graphql");
            let outsider = probe(&app, &Surface::Grpc(&initech_key), &ticket, &chat).await;
            assert_eq!(outsider, stranger, "an organization with no link, {situation}, grpc");
        }
    }
}

async fn channel_department(app: &TestApp, admin: &str, channel: &TestChannel) -> String {
    let shown = app
        .graphql(Some(admin), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned()
}

pub(crate) async fn third_tenant(app: &TestApp) -> String {
    app.core
        .organizations()
        .create(CreateOrganization {
            name: Name::parse("Initech").unwrap(),
            portal_name: PortalName::parse("initech").unwrap(),
            admin_email: Email::parse("bill@initech.example").unwrap(),
            admin_name: Name::parse("Bill").unwrap(),
            admin_password: Password::parse("initech password 1").unwrap(),
        })
        .await
        .unwrap();
    app.login("bill@initech.example", "initech password 1").await
}

on_both_backends!(every_operation_sees_exactly_what_the_mapping_says_on_both_surfaces);
