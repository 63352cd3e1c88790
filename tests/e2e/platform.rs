//! Provisioning organizations over gRPC with the platform operator's key:
//! creating a second tenant whose admin signs in, the key never valid for a
//! tenant's calls nor an API key for the platform's, and a disabled
//! organization's sessions, keys and webhooks stopping while its data stays.

use madoguchi_grpc::pb;
use madoguchi_grpc::pb::organization_service_client::OrganizationServiceClient;
use madoguchi_grpc::pb::platform_service_client::PlatformServiceClient;
use madoguchi_tests::line::text_event;
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app_with};
use serde_json::json;
use tonic::Code;

use crate::grpc::{api_key, with_key};

const OPERATOR_KEY: &str = "platform-operator-key-0123456789abcdef";

async fn spawn(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |settings| settings.platform_operator_key = Some(OPERATOR_KEY.to_owned().into())).await
}

async fn sign_in(app: &TestApp, email: &str, password: &str, portal: &str) -> serde_json::Value {
    app.graphql(
        None,
        "mutation($input: LoginInput!) { login(input: $input) { token } }",
        json!({"input": {"email": email, "password": password, "portal": portal}}),
    )
    .await
}

on_both_backends!(
    the_operator_provisions_a_tenant_whose_admin_signs_in,
    a_disabled_organization_stops_at_every_door_and_keeps_its_data,
);

async fn the_operator_provisions_a_tenant_whose_admin_signs_in(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let mut platform = PlatformServiceClient::new(app.grpc_channel().await);
    let request = || pb::CreateOrganizationRequest {
        name: "Beta Inc".into(),
        portal_name: "beta".into(),
        admin_email: "owner@beta.example".into(),
        admin_name: String::new(),
    };
    let created = platform.create_organization(with_key(request(), OPERATOR_KEY)).await.unwrap().into_inner();
    assert_eq!(created.organization.as_ref().unwrap().portal_name, "beta");
    assert!(created.admin_password.len() >= 20);
    let token = sign_in(&app, "owner@beta.example", &created.admin_password, "beta").await;
    let token = token["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{token}")).to_owned();
    let me = app.graphql(Some(&token), "{ me { role } organization { portalName } }", json!({})).await;
    assert_eq!(me["data"]["organization"]["portalName"], "beta", "{me}");
    assert_eq!(me["data"]["me"]["role"], "ADMIN");

    // The portal name is taken now.
    let again = platform.create_organization(with_key(request(), OPERATOR_KEY)).await.unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    let listed = platform
        .list_organizations(with_key(pb::ListOrganizationsRequest {}, OPERATOR_KEY))
        .await
        .unwrap()
        .into_inner();
    let portals: Vec<&str> = listed.organizations.iter().map(|o| o.portal_name.as_str()).collect();
    assert_eq!(portals, ["acme", "beta"]);

    // Neither credential works where the other is expected.
    let admin = app.login_admin().await;
    let (key, _) = api_key(&app, &admin, &["organization:write"]).await;
    let refused = platform.list_organizations(with_key(pb::ListOrganizationsRequest {}, &key)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let wrong = platform
        .list_organizations(with_key(pb::ListOrganizationsRequest {}, "platform-operator-key-wrong-0000000000"))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let mut tenant = OrganizationServiceClient::new(app.grpc_channel().await);
    let refused = tenant.get_organization(with_key(pb::GetOrganizationRequest {}, OPERATOR_KEY)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    app.stop().await.unwrap();
}

async fn a_disabled_organization_stops_at_every_door_and_keeps_its_data(backend: Backend) {
    let Some(app) = spawn(backend).await else { return };
    let admin = app.login_admin().await;
    let (key, _) = api_key(&app, &admin, &["organization:read"]).await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    assert_eq!(app.deliver_line(&channel, vec![text_event("Ubefore", "m1", "hello", "r1")]).await, 200);
    let mut platform = PlatformServiceClient::new(app.grpc_channel().await);
    let mut tenant = OrganizationServiceClient::new(app.grpc_channel().await);

    let disable = || pb::DisableOrganizationRequest { portal_name: "acme".into() };
    let disabled = platform.disable_organization(with_key(disable(), OPERATOR_KEY)).await.unwrap().into_inner();
    assert!(disabled.organization.unwrap().disable_time.is_some());
    // Twice is the same as once.
    platform.disable_organization(with_key(disable(), OPERATOR_KEY)).await.unwrap();

    let me = app.graphql(Some(&admin), "{ me { email } }", json!({})).await;
    assert_eq!(error_code(&me), "UNAUTHENTICATED", "{me}");
    let login = sign_in(&app, madoguchi_tests::ADMIN_EMAIL, madoguchi_tests::ADMIN_PASSWORD, "acme").await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED", "{login}");
    let refused = tenant.get_organization(with_key(pb::GetOrganizationRequest {}, &key)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(app.deliver_line(&channel, vec![text_event("Uduring", "m2", "anyone?", "r2")]).await, 404);

    // Enabled again: everything as it was, nothing received while disabled.
    let enable = pb::EnableOrganizationRequest { portal_name: "acme".into() };
    let enabled = platform.enable_organization(with_key(enable, OPERATOR_KEY)).await.unwrap().into_inner();
    assert!(enabled.organization.unwrap().disable_time.is_none());
    let admin = app.login_admin().await;
    let chats = app.graphql(Some(&admin), "{ chats { edges { node { endUser { customerId } } } } }", json!({})).await;
    let customers: Vec<&str> = chats["data"]["chats"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{chats}"))
        .iter()
        .map(|edge| edge["node"]["endUser"]["customerId"].as_str().unwrap())
        .collect();
    assert_eq!(customers, ["Ubefore"]);
    tenant.get_organization(with_key(pb::GetOrganizationRequest {}, &key)).await.unwrap();
    let missing = platform
        .disable_organization(with_key(pb::DisableOrganizationRequest { portal_name: "nobody".into() }, OPERATOR_KEY))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    app.stop().await.unwrap();
}
