//! Tickets made from chats across a helpdesk link: the email a conversion
//! needs, the portal, department and status the mapping and rule decide,
//! and who reaches the ticket — the helpdesk portal, the linked chat side as
//! its mapping says (DEPARTMENT, VIEW_ONLY, NONE, disabled), an unrelated
//! tenant never — on GraphQL and gRPC; ticket numbers under racing
//! conversions.

use madoguchi_core::organizations::PortalName;
use madoguchi_grpc::pb;
use madoguchi_grpc::pb::ticket_service_client::TicketServiceClient;
use madoguchi_tests::line::{TestChannel, text_event};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};
use tonic::Code;

use crate::grpc::{api_key, with_key};
use crate::identity::second_tenant;

const TICKET: &str =
    "query($id: ID!) { ticket(id: $id) { portalName number status departmentId email chatIds description } }";

/// Links acme (chat side) to globex (helpdesk) with same-name departments;
/// returns acme's admin, globex's admin and acme's LINE channel.
pub(crate) async fn linked(app: &TestApp) -> (String, String, TestChannel, String) {
    let acme = app.login_admin().await;
    let globex = second_tenant(app).await;
    let channel = app.create_line_channel(&acme, "PUSH", "STANDARD").await;
    let shown = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    let department_id = shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned();
    let departments = app.graphql(Some(&acme), "{ departments { id name } }", json!({})).await;
    let name = departments["data"]["departments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|department| department["id"] == department_id.as_str())
        .map(|department| department["name"].as_str().unwrap().to_owned())
        .unwrap();
    let theirs = app
        .graphql(
            Some(&globex),
            "mutation($name: String!) { createDepartment(name: $name) { id } }",
            json!({"name": name}),
        )
        .await;
    let helpdesk_department =
        theirs["data"]["createDepartment"]["id"].as_str().unwrap_or_else(|| panic!("{theirs}")).to_owned();
    let key = app.graphql(Some(&globex), "mutation { generateZscKey { zscKey } }", json!({})).await;
    let key = key["data"]["generateZscKey"]["zscKey"].as_str().unwrap().to_owned();
    let link = app
        .graphql(
            Some(&acme),
            "mutation($input: LinkHelpdeskInput!) { linkHelpdesk(input: $input) { mappings { mode } } }",
            json!({"input": {"adminEmail": "boss@globex.example", "portalName": "globex", "zscKey": key}}),
        )
        .await;
    assert_eq!(link["data"]["linkHelpdesk"]["mappings"], json!([{"mode": "DEPARTMENT"}]), "{link}");
    (acme, globex, channel, helpdesk_department)
}

/// A claimed chat of `user` whose visitor has a contact with an email.
pub(crate) async fn chat_with_email(
    app: &TestApp,
    admin: &str,
    channel: &TestChannel,
    user: &str,
    email: Option<&str>,
) -> String {
    assert_eq!(
        app.deliver_line(channel, vec![text_event(user, &format!("m-{user}"), "my order is late", "r")]).await,
        200
    );
    let chats = app
        .graphql(
            Some(admin),
            "query($id: String!) { chats(filter: {customerId: $id}) { edges { node { id } } } }",
            json!({"id": user}),
        )
        .await;
    let chat_id =
        chats["data"]["chats"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{chats}")).to_owned();
    app.graphql(Some(admin), "mutation($id: ID!) { claimChat(id: $id) { id } }", json!({"id": chat_id})).await;
    if let Some(email) = email {
        let contact = app
            .graphql(
                Some(admin),
                "mutation($input: ContactInput!) { createContact(input: $input) { id } }",
                json!({"input": {"name": format!("Visitor {user}"), "email": email}}),
            )
            .await;
        let contact_id =
            contact["data"]["createContact"]["id"].as_str().unwrap_or_else(|| panic!("{contact}")).to_owned();
        let linked = app
            .graphql(
                Some(admin),
                "mutation($chat: ID!, $contact: ID) { linkChatToContact(chatId: $chat, contactId: $contact) { id } }",
                json!({"chat": chat_id, "contact": contact_id}),
            )
            .await;
        assert!(linked["errors"].is_null(), "{linked}");
    }
    chat_id
}

async fn convert(app: &TestApp, token: &str, chat_id: &str) -> Value {
    app.graphql(
        Some(token),
        "mutation($id: ID!) { convertChatToTicket(chatId: $id) { id portalName number status departmentId email } }",
        json!({"id": chat_id}),
    )
    .await
}

pub(crate) async fn set_mode(app: &TestApp, admin: &str, department_id: &str, mode: &str, helpdesk: Option<&str>) {
    let set = app
        .graphql(
            Some(admin),
            "mutation($d: ID!, $m: MappingMode!, $h: ID) { setDepartmentMapping(departmentId: $d, mode: $m, helpdeskDepartmentId: $h) { enabled } }",
            json!({"d": department_id, "m": mode, "h": helpdesk}),
        )
        .await;
    assert!(set["errors"].is_null(), "{set}");
}

on_both_backends!(
    a_chat_becomes_a_ticket_of_the_linked_portal_reached_as_the_mapping_says,
    racing_conversions_get_distinct_numbers
);

async fn a_chat_becomes_a_ticket_of_the_linked_portal_reached_as_the_mapping_says(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, helpdesk_department) = linked(&app).await;
    let outsider = crate::isolation::third_tenant(&app).await;

    // No email, no ticket.
    let nameless = chat_with_email(&app, &acme, &channel, "Unoemail", None).await;
    let refused = convert(&app, &acme, &nameless).await;
    assert_eq!(error_code(&refused), "FAILED_PRECONDITION", "{refused}");
    assert!(refused.to_string().contains("email"), "{refused}");

    let chat_id = chat_with_email(&app, &acme, &channel, "Uvisitor", Some("visitor@example.com")).await;
    let converted = convert(&app, &acme, &chat_id).await;
    let ticket = &converted["data"]["convertChatToTicket"];
    assert_eq!(ticket["portalName"], "globex", "{converted}");
    assert_eq!(ticket["number"], 1);
    assert_eq!(ticket["status"], "OPEN");
    assert_eq!(ticket["departmentId"], helpdesk_department.as_str());
    assert_eq!(ticket["email"], "visitor@example.com");
    let id = ticket["id"].as_str().unwrap().to_owned();

    // The helpdesk portal reads it, with the transcript; an unrelated tenant never.
    let read = app.graphql(Some(&globex), TICKET, json!({"id": id})).await;
    assert_eq!(read["data"]["ticket"]["chatIds"], json!([chat_id]), "{read}");
    assert!(read["data"]["ticket"]["description"].as_str().unwrap().contains("my order is late"), "{read}");
    assert_eq!(error_code(&app.graphql(Some(&outsider), TICKET, json!({"id": id})).await), "NOT_FOUND");
    let search = "query($text: String!) { searchTickets(text: $text) { number } }";
    for text in ["#1", "visitor@example", "VISITOR@Example.com", "Visitor Uvisitor"] {
        let found = app.graphql(Some(&acme), search, json!({"text": text})).await;
        assert_eq!(found["data"]["searchTickets"], json!([{"number": 1}]), "{text}: {found}");
        let none = app.graphql(Some(&outsider), search, json!({"text": text})).await;
        assert_eq!(none["data"]["searchTickets"], json!([]), "{text}: {none}");
    }

    // The portal's event stream, filtered to tickets, carries it.
    let (events_key, _) = api_key(&app, &globex, &["events:read"]).await;
    let mut events = madoguchi_grpc::pb::event_service_client::EventServiceClient::new(app.grpc_channel().await);
    let request = pb::StreamEventsRequest { after_cursor: Some(0), kinds: vec!["ticket.".into()] };
    let mut stream = events.stream_events(with_key(request, &events_key)).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap().event.unwrap();
    assert_eq!(first.kind, "ticket.created", "{first:?}");
    let bad = pb::StreamEventsRequest { after_cursor: Some(0), kinds: vec!["Ticket.*".into()] };
    assert_eq!(events.stream_events(with_key(bad, &events_key)).await.unwrap_err().code(), Code::InvalidArgument);

    // Over gRPC with the chat side's key, the same.
    let (key, _) = api_key(&app, &acme, &["tickets:write"]).await;
    let mut client = TicketServiceClient::new(app.grpc_channel().await);
    let got =
        client.get_ticket(with_key(pb::GetTicketRequest { ticket_id: id.clone() }, &key)).await.unwrap().into_inner();
    assert_eq!(got.ticket.unwrap().number, 1);

    // A second chat merged in: its transcript appended, once.
    let second = chat_with_email(&app, &acme, &channel, "Usecond", Some("second@example.com")).await;
    let merged = pb::MergeChatRequest { chat_id: second.clone(), ticket_id: id.clone() };
    let ticket = client.merge_chat(with_key(merged.clone(), &key)).await.unwrap().into_inner().ticket.unwrap();
    assert_eq!(ticket.chat_ids, [chat_id.clone(), second.clone()]);
    assert_eq!(ticket.description.matches("my order is late").count(), 2, "{}", ticket.description);
    assert_eq!(client.merge_chat(with_key(merged, &key)).await.unwrap_err().code(), Code::AlreadyExists);

    // Comments from both sides, in one thread.
    let comment =
        "mutation($id: ID!, $body: String!) { commentOnTicket(ticketId: $id, body: $body) { authorPortalName } }";
    let ours = app.graphql(Some(&acme), comment, json!({"id": id, "body": "customer called again"})).await;
    assert_eq!(ours["data"]["commentOnTicket"]["authorPortalName"], "acme", "{ours}");
    let theirs = pb::CommentOnTicketRequest { ticket_id: id.clone(), body: "looking into it".into() };
    client.comment_on_ticket(with_key(theirs, &key)).await.unwrap();
    let globex_comment = app.graphql(Some(&globex), comment, json!({"id": id, "body": "refund issued"})).await;
    assert_eq!(globex_comment["data"]["commentOnTicket"]["authorPortalName"], "globex", "{globex_comment}");
    let thread = app
        .graphql(Some(&globex), "query($id: ID!) { ticketComments(ticketId: $id) { body } }", json!({"id": id}))
        .await;
    assert_eq!(
        thread["data"]["ticketComments"],
        json!([{"body": "customer called again"}, {"body": "looking into it"}, {"body": "refund issued"}])
    );
    let empty = app.graphql(Some(&acme), comment, json!({"id": id, "body": "   "})).await;
    assert_eq!(error_code(&empty), "INVALID_ARGUMENT", "{empty}");
    assert_eq!(error_code(&app.graphql(Some(&outsider), comment, json!({"id": id, "body": "hi"})).await), "NOT_FOUND");

    // VIEW_ONLY: seen, not changed, no new tickets.
    let department_id = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await["data"]["channel"]["departmentId"]
        .as_str()
        .unwrap()
        .to_owned();
    set_mode(&app, &acme, &department_id, "VIEW_ONLY", None).await;
    assert_eq!(app.graphql(Some(&acme), TICKET, json!({"id": id})).await["data"]["ticket"]["number"], 1);
    let close = "mutation($id: ID!, $s: TicketStatus!) { setTicketStatus(id: $id, status: $s) { status } }";
    let denied = app.graphql(Some(&acme), close, json!({"id": id, "s": "CLOSED"})).await;
    assert_eq!(error_code(&denied), "PERMISSION_DENIED", "{denied}");
    let silent = app.graphql(Some(&acme), comment, json!({"id": id, "body": "may I?"})).await;
    assert_eq!(error_code(&silent), "PERMISSION_DENIED", "{silent}");
    let another = chat_with_email(&app, &acme, &channel, "Uviewonly", Some("v2@example.com")).await;
    assert_eq!(error_code(&convert(&app, &acme, &another).await), "PERMISSION_DENIED");
    let update = pb::UpdateTicketStatusRequest { ticket_id: id.clone(), status: pb::TicketStatus::Closed.into() };
    assert_eq!(client.update_ticket_status(with_key(update, &key)).await.unwrap_err().code(), Code::PermissionDenied);

    // The visitor's recent tickets, beside the chat.
    let recent = |chat: String| {
        let (app, acme) = (&app, &acme);
        async move {
            let answer = app
                .graphql(Some(acme), "query($id: ID!) { recentTickets(chatId: $id) { number } }", json!({"id": chat}))
                .await;
            answer["data"]["recentTickets"].clone()
        }
    };
    assert_eq!(recent(chat_id.clone()).await, json!([{"number": 1}]));

    // NONE: not even seen, nor among recent tickets. A disabled link: the same.
    set_mode(&app, &acme, &department_id, "NONE", None).await;
    assert_eq!(error_code(&app.graphql(Some(&acme), TICKET, json!({"id": id})).await), "NOT_FOUND");
    assert_eq!(recent(chat_id.clone()).await, json!([]));
    set_mode(&app, &acme, &department_id, "DEPARTMENT", Some(&helpdesk_department)).await;
    assert_eq!(app.graphql(Some(&acme), TICKET, json!({"id": id})).await["data"]["ticket"]["number"], 1);
    // Only mapped departments' recent tickets: the ticket's is mapped.
    let rule = "mutation { setChatToTicketRule(rule: NONE, ticketStatus: OPEN, recentTickets: MAPPED_ONLY) { recentTickets } }";
    assert_eq!(
        app.graphql(Some(&acme), rule, json!({})).await["data"]["setChatToTicketRule"]["recentTickets"],
        "MAPPED_ONLY"
    );
    assert_eq!(recent(chat_id.clone()).await, json!([{"number": 1}]));
    app.graphql(Some(&acme), "mutation { setHelpdeskLinkEnabled(enabled: false) { enabled } }", json!({})).await;
    assert_eq!(error_code(&app.graphql(Some(&acme), TICKET, json!({"id": id})).await), "NOT_FOUND");
    assert_eq!(error_code(&convert(&app, &acme, &another).await), "FAILED_PRECONDITION");
    app.graphql(Some(&acme), "mutation { setHelpdeskLinkEnabled(enabled: true) { enabled } }", json!({})).await;

    // Closed and reopened from the chat side; the portal sees each.
    let closed = app.graphql(Some(&acme), close, json!({"id": id, "s": "CLOSED"})).await;
    assert_eq!(closed["data"]["setTicketStatus"]["status"], "CLOSED", "{closed}");
    let reopened = app.graphql(Some(&acme), close, json!({"id": id, "s": "OPEN"})).await;
    assert_eq!(reopened["data"]["setTicketStatus"]["status"], "OPEN", "{reopened}");
    assert_eq!(app.graphql(Some(&globex), TICKET, json!({"id": id})).await["data"]["ticket"]["status"], "OPEN");

    // The portal cuts the link off by rotating its key, or by being disabled.
    let operator = madoguchi_core::platform::PlatformOperator::at_the_command_line();
    let globex_portal = PortalName::parse("globex").unwrap();
    app.core.platform().set_organization_disabled(&operator, &globex_portal, true).await.unwrap();
    assert_eq!(error_code(&app.graphql(Some(&acme), TICKET, json!({"id": id})).await), "NOT_FOUND");
    app.core.platform().set_organization_disabled(&operator, &globex_portal, false).await.unwrap();
    let globex = app.login("boss@globex.example", "globex password 1").await;
    assert_eq!(app.graphql(Some(&acme), TICKET, json!({"id": id})).await["data"]["ticket"]["number"], 1);
    app.graphql(Some(&globex), "mutation { generateZscKey { prefix } }", json!({})).await;
    assert_eq!(error_code(&app.graphql(Some(&acme), TICKET, json!({"id": id})).await), "NOT_FOUND");
    let cut = convert(&app, &acme, &another).await;
    assert_eq!(error_code(&cut), "FAILED_PRECONDITION", "{cut}");
    assert!(cut.to_string().contains("link again"), "{cut}");
    // The portal's own agents are not cut off from their tickets.
    assert_eq!(app.graphql(Some(&globex), TICKET, json!({"id": id})).await["data"]["ticket"]["number"], 1);
    app.stop().await.unwrap();
}

async fn racing_conversions_get_distinct_numbers(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, _, channel, _) = linked(&app).await;
    let mut chats = Vec::new();
    for n in 0..8 {
        chats.push(
            chat_with_email(&app, &acme, &channel, &format!("Urace{n}"), Some(&format!("r{n}@example.com"))).await,
        );
    }
    let conversions = chats.iter().map(|chat_id| {
        let (app, acme) = (&app, &acme);
        async move { convert(app, acme, chat_id).await }
    });
    let mut numbers: Vec<i64> = futures::future::join_all(conversions)
        .await
        .iter()
        .map(|answer| answer["data"]["convertChatToTicket"]["number"].as_i64().unwrap_or_else(|| panic!("{answer}")))
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    app.stop().await.unwrap();
}

/// Classifications are the helpdesk portal's list, edited by its admin; a
/// conversion picks one of them (where the mapping lets the agent choose).
async fn a_conversion_picks_one_of_the_helpdesk_portals_classifications(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (acme, globex, channel, helpdesk_department) = linked(&app).await;
    let list = "{ ticketClassifications }";
    let defaults = app.graphql(Some(&acme), list, json!({})).await;
    assert_eq!(defaults["data"]["ticketClassifications"], json!(["Question", "Problem", "Feature request"]));

    let set = "mutation($names: [String!]!) { setTicketClassifications(names: $names) }";
    let twice = app.graphql(Some(&globex), set, json!({"names": ["Bug", "bug"]})).await;
    assert_eq!(error_code(&twice), "INVALID_ARGUMENT", "{twice}");
    assert_eq!(twice["errors"][0]["extensions"]["field"], "names[1]", "{twice}");
    let agent = app.create_agent_token(&globex, "AGENT").await;
    assert_eq!(error_code(&app.graphql(Some(&agent), set, json!({"names": ["Bug"]})).await), "PERMISSION_DENIED");
    let changed = app.graphql(Some(&globex), set, json!({"names": [" Billing ", "Bug"]})).await;
    assert_eq!(changed["data"]["setTicketClassifications"], json!(["Billing", "Bug"]), "{changed}");
    // The chat side sees the linked portal's list, on both surfaces.
    assert_eq!(
        app.graphql(Some(&acme), list, json!({})).await["data"]["ticketClassifications"],
        json!(["Billing", "Bug"])
    );
    let (key, _) = api_key(&app, &acme, &["tickets:read"]).await;
    let mut client = TicketServiceClient::new(app.grpc_channel().await);
    let names = client.list_ticket_classifications(with_key(pb::ListTicketClassificationsRequest {}, &key)).await;
    assert_eq!(names.unwrap().into_inner().names, vec!["Billing", "Bug"]);

    let shown = app
        .graphql(Some(&acme), "query($id: ID!) { channel(id: $id) { departmentId } }", json!({"id": channel.id}))
        .await;
    let department = shown["data"]["channel"]["departmentId"].as_str().unwrap().to_owned();
    set_mode(&app, &acme, &department, "CHOOSE_AS_NEEDED", None).await;
    let chat_id = chat_with_email(&app, &acme, &channel, "Uclassified", Some("classified@example.com")).await;
    let convert = "mutation($id: ID!, $c: String, $d: ID) { convertChatToTicket(chatId: $id, input: {classification: $c, helpdeskDepartmentId: $d}) { classification departmentId } }";
    let unknown =
        app.graphql(Some(&acme), convert, json!({"id": chat_id, "c": "Nope", "d": helpdesk_department})).await;
    assert_eq!(error_code(&unknown), "INVALID_ARGUMENT", "{unknown}");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "classification", "{unknown}");
    let none =
        app.graphql(Some(&globex), "{ searchTickets(text: \"classified@example.com\") { id } }", json!({})).await;
    assert_eq!(none["data"]["searchTickets"], json!([]), "nothing made: {none}");
    let made = app.graphql(Some(&acme), convert, json!({"id": chat_id, "c": "Bug", "d": helpdesk_department})).await;
    assert_eq!(
        made["data"]["convertChatToTicket"],
        json!({"classification": "Bug", "departmentId": helpdesk_department}),
        "{made}"
    );
}

on_both_backends!(a_conversion_picks_one_of_the_helpdesk_portals_classifications);
