//! The gRPC surface with API keys: the organization service end to end,
//! wrong, revoked and under-scoped keys, other tenants, health.

use madoguchi_grpc::pb;
use madoguchi_grpc::pb::organization_service_client::OrganizationServiceClient;
use madoguchi_tests::{Backend, TestApp, spawn_app};
use serde_json::json;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use crate::identity::second_tenant;

/// Creates an API key over GraphQL and returns it.
pub async fn api_key(app: &TestApp, token: &str, scopes: &[&str]) -> (String, String) {
    let created = app
        .graphql(
            Some(token),
            "mutation($scopes: [String!]!) { createApiKey(name: \"partner\", scopes: $scopes) { secret apiKey { id } } }",
            json!({"scopes": scopes}),
        )
        .await;
    let key = &created["data"]["createApiKey"];
    (
        key["secret"].as_str().unwrap_or_else(|| panic!("{created}")).to_owned(),
        key["apiKey"]["id"].as_str().unwrap().to_owned(),
    )
}

pub fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

on_both_backends!(
    a_partner_manages_departments_with_an_api_key,
    a_missing_wrong_or_revoked_key_is_unauthenticated,
    a_key_without_the_scope_is_denied_and_changes_nothing,
    another_tenants_department_is_not_found_over_grpc,
);

async fn a_partner_manages_departments_with_an_api_key(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let (key, _) = api_key(&app, &admin, &["organization:write"]).await;
    let mut client = OrganizationServiceClient::new(app.grpc_channel().await);

    let organization =
        client.get_organization(with_key(pb::GetOrganizationRequest {}, &key)).await.unwrap().into_inner();
    assert_eq!(organization.organization.unwrap().portal_name, "acme");
    let created = client
        .create_department(with_key(pb::CreateDepartmentRequest { name: "Billing".into() }, &key))
        .await
        .unwrap()
        .into_inner()
        .department
        .unwrap();
    let renamed = client
        .rename_department(with_key(
            pb::RenameDepartmentRequest { department_id: created.id.clone(), name: "Invoices".into() },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.department.unwrap().name, "Invoices");
    let listed = client.list_departments(with_key(pb::ListDepartmentsRequest {}, &key)).await.unwrap().into_inner();
    assert_eq!(listed.departments.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["Invoices"]);
    let duplicate = client
        .create_department(with_key(pb::CreateDepartmentRequest { name: "Invoices".into() }, &key))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let graphql = app.graphql(Some(&admin), "{ apiKeys { lastUsedAt } }", json!({})).await;
    assert!(graphql["data"]["apiKeys"][0]["lastUsedAt"].is_string(), "last use is recorded: {graphql}");
}

async fn a_missing_wrong_or_revoked_key_is_unauthenticated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let (key, id) = api_key(&app, &admin, &["organization:read"]).await;
    let mut client = OrganizationServiceClient::new(app.grpc_channel().await);

    let missing = client.get_organization(pb::GetOrganizationRequest {}).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    let mut tampered = key.clone();
    let last = tampered.pop();
    tampered.push(if last == Some('x') { 'y' } else { 'x' });
    let wrong = client.get_organization(with_key(pb::GetOrganizationRequest {}, &tampered)).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);

    assert!(client.get_organization(with_key(pb::GetOrganizationRequest {}, &key)).await.is_ok());
    let revoked = app
        .graphql(Some(&admin), "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }", json!({"id": id}))
        .await;
    assert!(revoked["data"]["revokeApiKey"]["revokedAt"].is_string());
    let after = client.get_organization(with_key(pb::GetOrganizationRequest {}, &key)).await.unwrap_err();
    assert_eq!(after.code(), Code::Unauthenticated);
    assert_eq!(after.message(), "api key revoked");

    // Health answers without a key.
    let mut health = tonic_health_client(&app).await;
    let status = health.check(tonic::Request::new(HealthCheckRequest { service: String::new() })).await.unwrap();
    assert_eq!(status.into_inner().status, 1, "SERVING");
}

use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

async fn tonic_health_client(app: &TestApp) -> HealthClient<tonic::transport::Channel> {
    HealthClient::new(app.grpc_channel().await)
}

async fn a_key_without_the_scope_is_denied_and_changes_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let (key, _) = api_key(&app, &admin, &["organization:read"]).await;
    let mut client = OrganizationServiceClient::new(app.grpc_channel().await);
    let denied = client
        .create_department(with_key(pb::CreateDepartmentRequest { name: "Sales".into() }, &key))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let listed = client.list_departments(with_key(pb::ListDepartmentsRequest {}, &key)).await.unwrap().into_inner();
    assert!(listed.departments.is_empty());
}

async fn another_tenants_department_is_not_found_over_grpc(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let ours = app.graphql(Some(&admin), "mutation { createDepartment(name: \"Support\") { id } }", json!({})).await;
    let department_id = ours["data"]["createDepartment"]["id"].as_str().unwrap().to_owned();
    let globex = second_tenant(&app).await;
    let (their_key, _) = api_key(&app, &globex, &["organization:write"]).await;
    let mut client = OrganizationServiceClient::new(app.grpc_channel().await);

    for status in [
        client
            .get_department(with_key(pb::GetDepartmentRequest { department_id: department_id.clone() }, &their_key))
            .await
            .unwrap_err(),
        client
            .delete_department(with_key(
                pb::DeleteDepartmentRequest { department_id: department_id.clone() },
                &their_key,
            ))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(status.code(), Code::NotFound);
    }
    let malformed = client
        .get_department(with_key(pb::GetDepartmentRequest { department_id: "nope".into() }, &their_key))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    let still = app.graphql(Some(&admin), "{ departments { name } }", json!({})).await;
    assert_eq!(still["data"]["departments"], json!([{"name": "Support"}]));
}

on_both_backends!(reflection_answers_in_v1_and_v1alpha_without_a_key);

/// grpcurl and grpcio-reflection list the services: newer tools over v1,
/// older ones over v1alpha only.
async fn reflection_answers_in_v1_and_v1alpha_without_a_key(backend: Backend) {
    use tonic_reflection::pb::{v1, v1alpha};
    let Some(app) = spawn_app(backend).await else { return };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.grpc_channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut answers = client.server_reflection_info(stream_of(request)).await.unwrap().into_inner();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list of services")
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    for wanted in ["madoguchi.v1.TicketService", "madoguchi.v1.HelpdeskService", "madoguchi.v1.PlatformService"] {
        assert!(names.iter().any(|name| name == wanted), "{wanted} missing from {names:?}");
    }

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(app.grpc_channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
            "madoguchi.v1.TicketService".into(),
        )),
    };
    let mut answers = client.server_reflection_info(stream_of(request)).await.unwrap().into_inner();
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a file descriptor")
    };
    assert!(!files.file_descriptor_proto.is_empty());
    app.stop().await.unwrap();
}

/// One request, then the stream stays open as reflection clients keep it.
fn stream_of<T: Send + 'static>(request: T) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::StreamExt::chain(futures::stream::iter([request]), futures::stream::pending())
}
