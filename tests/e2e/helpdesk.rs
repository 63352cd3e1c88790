//! Linking a chat side to a helpdesk portal over gRPC: the helpdesk's ZSC
//! key, each way linking fails (and stores nothing), the link showing the
//! portal it points to, automatic same-name department mapping (at linking
//! and when either side adds a department), undoing it, the rule, and
//! disabling — between two tenants, and to one's own portal.

use madoguchi_grpc::pb;
use madoguchi_grpc::pb::helpdesk_service_client::HelpdeskServiceClient;
use madoguchi_tests::{Backend, TestApp, spawn_app};
use serde_json::json;
use tonic::Code;

use crate::grpc::{api_key, with_key};
use crate::identity::second_tenant;

async fn department(app: &TestApp, token: &str, name: &str) -> String {
    let created = app
        .graphql(
            Some(token),
            "mutation($name: String!) { createDepartment(name: $name) { id } }",
            json!({"name": name}),
        )
        .await;
    created["data"]["createDepartment"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned()
}

fn mapping<'a>(link: &'a pb::HelpdeskLink, name: &str) -> &'a pb::DepartmentMapping {
    link.mappings.iter().find(|mapping| mapping.department_name == name).unwrap_or_else(|| panic!("{link:?}"))
}

fn link_request(email: &str, portal: &str, key: &str) -> pb::LinkHelpdeskRequest {
    pb::LinkHelpdeskRequest { admin_email: email.into(), portal_name: portal.into(), zsc_key: key.into() }
}

on_both_backends!(
    a_chat_side_links_to_another_tenants_helpdesk_with_its_zsc_key,
    an_admin_of_both_sides_links_in_one_step
);

async fn a_chat_side_links_to_another_tenants_helpdesk_with_its_zsc_key(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let acme = app.login_admin().await;
    let globex = second_tenant(&app).await;
    let globex_support = department(&app, &globex, "Support").await;
    department(&app, &acme, "Support").await;
    department(&app, &acme, "Sales").await;
    let (acme_key, _) = api_key(&app, &acme, &["organization:write"]).await;
    let (globex_key, _) = api_key(&app, &globex, &["organization:write"]).await;
    let mut client = HelpdeskServiceClient::new(app.grpc_channel().await);

    let zsc = client.generate_zsc_key(with_key(pb::GenerateZscKeyRequest {}, &globex_key)).await.unwrap().into_inner();
    assert!(zsc.zsc_key.starts_with(&format!("zsc_{}_", zsc.prefix)), "{zsc:?}");

    // Each failure says what is wrong, and nothing is stored.
    let boss = "boss@globex.example";
    let failures = [
        (link_request(boss, "initech", &zsc.zsc_key), Code::NotFound, "no helpdesk portal named"),
        (link_request(boss, "globex", "zsc_wrong_key"), Code::PermissionDenied, "not the current key"),
        (link_request(boss, "globex", ""), Code::InvalidArgument, "ZSC key"),
        (link_request("nobody@globex.example", "globex", &zsc.zsc_key), Code::PermissionDenied, "could not recognise"),
        (link_request("admin@example.com", "globex", &zsc.zsc_key), Code::PermissionDenied, "helpdesk administrator"),
    ];
    for (request, code, says) in failures {
        let error = client.link_helpdesk(with_key(request, &acme_key)).await.unwrap_err();
        assert_eq!(error.code(), code, "{error:?}");
        assert!(error.message().contains(says), "{error:?}");
    }
    let none = client.get_helpdesk_link(with_key(pb::GetHelpdeskLinkRequest {}, &acme_key)).await.unwrap_err();
    assert_eq!(none.code(), Code::NotFound);

    // A key that may only read cannot link.
    let (reader, _) = api_key(&app, &acme, &["organization:read"]).await;
    let denied = client.link_helpdesk(with_key(link_request(boss, "globex", &zsc.zsc_key), &reader)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    let link = client
        .link_helpdesk(with_key(link_request(boss, "globex", &zsc.zsc_key), &acme_key))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!((link.helpdesk_portal_name.as_str(), link.helpdesk_organization_name.as_str()), ("globex", "Globex"));
    assert!(link.enabled);
    assert_eq!(link.rule(), pb::ChatToTicketRule::None);
    let support = mapping(&link, "Support");
    assert_eq!(
        (support.mode(), support.helpdesk_department_id.as_str()),
        (pb::MappingMode::Department, globex_support.as_str())
    );
    assert_eq!(mapping(&link, "Sales").mode(), pb::MappingMode::ChooseAsNeeded);

    // New departments on either side are mapped by name.
    let globex_sales = department(&app, &globex, "Sales").await;
    department(&app, &acme, "Billing").await;
    let link = client
        .get_helpdesk_link(with_key(pb::GetHelpdeskLinkRequest {}, &acme_key))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(mapping(&link, "Sales").helpdesk_department_id, globex_sales);
    assert_eq!(mapping(&link, "Billing").mode(), pb::MappingMode::ChooseAsNeeded);
    let globex_billing = department(&app, &globex, "Billing").await;
    let link = client
        .get_helpdesk_link(with_key(pb::GetHelpdeskLinkRequest {}, &acme_key))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(mapping(&link, "Billing").helpdesk_department_id, globex_billing);

    // An automatic mapping is undone; a department outside the portal is refused.
    let support_id = mapping(&link, "Support").department_id.clone();
    let undo = pb::SetDepartmentMappingRequest {
        department_id: support_id.clone(),
        mode: pb::MappingMode::ViewOnly.into(),
        helpdesk_department_id: String::new(),
    };
    let link = client.set_department_mapping(with_key(undo, &acme_key)).await.unwrap().into_inner().link.unwrap();
    assert_eq!(
        (mapping(&link, "Support").mode(), mapping(&link, "Support").helpdesk_department_id.as_str()),
        (pb::MappingMode::ViewOnly, "")
    );
    let outside = pb::SetDepartmentMappingRequest {
        department_id: support_id,
        mode: pb::MappingMode::Department.into(),
        helpdesk_department_id: mapping(&link, "Sales").department_id.clone(),
    };
    assert_eq!(client.set_department_mapping(with_key(outside, &acme_key)).await.unwrap_err().code(), Code::NotFound);

    // Linking the same portal again keeps the admin's choices.
    let again = client
        .link_helpdesk(with_key(link_request(boss, "globex", &zsc.zsc_key), &acme_key))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(mapping(&again, "Support").mode(), pb::MappingMode::ViewOnly);

    // The rule; tickets from chats are OPEN or CLOSED.
    let rule = pb::SetChatToTicketRuleRequest {
        rule: pb::ChatToTicketRule::Attended.into(),
        ticket_status: pb::TicketStatus::Closed.into(),
        recent_tickets: pb::RecentTicketsScope::MappedOnly.into(),
    };
    let link = client.set_chat_to_ticket_rule(with_key(rule, &acme_key)).await.unwrap().into_inner().link.unwrap();
    assert_eq!(
        (link.rule(), link.ticket_status(), link.recent_tickets()),
        (pb::ChatToTicketRule::Attended, pb::TicketStatus::Closed, pb::RecentTicketsScope::MappedOnly)
    );
    let on_hold = pb::SetChatToTicketRuleRequest { ticket_status: pb::TicketStatus::OnHold.into(), ..rule };
    assert_eq!(
        client.set_chat_to_ticket_rule(with_key(on_hold, &acme_key)).await.unwrap_err().code(),
        Code::InvalidArgument
    );

    // Disabled and enabled again.
    let off = client
        .set_helpdesk_link_enabled(with_key(pb::SetHelpdeskLinkEnabledRequest { enabled: false }, &acme_key))
        .await
        .unwrap();
    assert!(!off.into_inner().link.unwrap().enabled);
    let on = client
        .set_helpdesk_link_enabled(with_key(pb::SetHelpdeskLinkEnabledRequest { enabled: true }, &acme_key))
        .await
        .unwrap();
    assert!(on.into_inner().link.unwrap().enabled);

    // A rotated key: the old one links nothing any more.
    client.generate_zsc_key(with_key(pb::GenerateZscKeyRequest {}, &globex_key)).await.unwrap();
    let stale =
        client.link_helpdesk(with_key(link_request(boss, "globex", &zsc.zsc_key), &acme_key)).await.unwrap_err();
    assert_eq!(stale.code(), Code::PermissionDenied);
    // The helpdesk side has no link of its own.
    let theirs = client.get_helpdesk_link(with_key(pb::GetHelpdeskLinkRequest {}, &globex_key)).await.unwrap_err();
    assert_eq!(theirs.code(), Code::NotFound);
    app.stop().await.unwrap();
}

async fn an_admin_of_both_sides_links_in_one_step(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let acme = app.login_admin().await;
    department(&app, &acme, "Support").await;
    let (key, _) = api_key(&app, &acme, &["organization:write"]).await;
    let mut client = HelpdeskServiceClient::new(app.grpc_channel().await);
    // Its own portal: no ZSC key to generate and paste.
    let link = client
        .link_helpdesk(with_key(link_request(madoguchi_tests::ADMIN_EMAIL, "acme", ""), &key))
        .await
        .unwrap()
        .into_inner()
        .link
        .unwrap();
    assert_eq!(link.helpdesk_portal_name, "acme");
    let support = mapping(&link, "Support");
    assert_eq!(
        (support.mode(), &support.helpdesk_department_id),
        (pb::MappingMode::Department, &support.department_id)
    );
    app.stop().await.unwrap();
}

on_both_backends!(admins_link_over_graphql_with_the_same_rules);

async fn admins_link_over_graphql_with_the_same_rules(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let acme = app.login_admin().await;
    let globex = second_tenant(&app).await;
    department(&app, &globex, "Support").await;
    department(&app, &acme, "Support").await;
    let generated = app.graphql(Some(&globex), "mutation { generateZscKey { zscKey prefix } }", json!({})).await;
    let key =
        generated["data"]["generateZscKey"]["zscKey"].as_str().unwrap_or_else(|| panic!("{generated}")).to_owned();
    const LINK: &str = "mutation($input: LinkHelpdeskInput!) { linkHelpdesk(input: $input) {
        helpdeskPortalName helpdeskOrganizationName enabled rule mappings { departmentName mode helpdeskDepartmentName } } }";
    let input = |email: &str, key: &str| json!({"input": {"adminEmail": email, "portalName": "globex", "zscKey": key}});

    let wrong = app.graphql(Some(&acme), LINK, input("admin@example.com", &key)).await;
    assert_eq!(madoguchi_tests::error_code(&wrong), "PERMISSION_DENIED", "{wrong}");
    assert!(wrong.to_string().contains("could not recognise admin@example.com"), "{wrong}");
    let agent = app.create_agent_token(&acme, "AGENT").await;
    let refused = app.graphql(Some(&agent), LINK, input("boss@globex.example", &key)).await;
    assert_eq!(madoguchi_tests::error_code(&refused), "PERMISSION_DENIED", "{refused}");

    let linked = app.graphql(Some(&acme), LINK, input("boss@globex.example", &key)).await;
    let link = &linked["data"]["linkHelpdesk"];
    assert_eq!(link["helpdeskOrganizationName"], "Globex", "{linked}");
    assert_eq!(link["rule"], "NONE");
    assert_eq!(
        link["mappings"],
        json!([{"departmentName": "Support", "mode": "DEPARTMENT", "helpdeskDepartmentName": "Support"}])
    );
    let read = app.graphql(Some(&acme), "{ helpdeskLink { helpdeskPortalName adminEmail } }", json!({})).await;
    assert_eq!(
        read["data"]["helpdeskLink"],
        json!({"helpdeskPortalName": "globex", "adminEmail": "boss@globex.example"})
    );
    assert!(!read.to_string().contains(&key), "the key is never shown again");
    app.stop().await.unwrap();
}
