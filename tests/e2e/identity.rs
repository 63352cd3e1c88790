//! Logging in, departments, agents and API keys over GraphQL, with bad input
//! and tenant isolation.

use madoguchi_core::auth::{Email, Password};
use madoguchi_core::organizations::{CreateOrganization, Name, PortalName};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app};
use serde_json::{Value, json};

const CREATE_DEPARTMENT: &str = "mutation($name: String!) { createDepartment(name: $name) { id name } }";
const CREATE_AGENT: &str =
    "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id email role departmentIds } }";

async fn create_department(app: &TestApp, token: &str, name: &str) -> Value {
    app.graphql(Some(token), CREATE_DEPARTMENT, json!({"name": name})).await
}

/// Creates a second organization with its own admin; returns the admin's token.
pub async fn second_tenant(app: &TestApp) -> String {
    app.core
        .organizations()
        .create(CreateOrganization {
            name: Name::parse("Globex").unwrap(),
            portal_name: PortalName::parse("globex").unwrap(),
            admin_email: Email::parse("boss@globex.example").unwrap(),
            admin_name: Name::parse("Boss").unwrap(),
            admin_password: Password::parse("globex password 1").unwrap(),
        })
        .await
        .unwrap();
    app.login("boss@globex.example", "globex password 1").await
}

on_both_backends!(
    the_first_admin_creates_a_department_and_an_agent_who_can_log_in,
    a_wrong_password_an_expired_and_a_forged_token_are_unauthenticated,
    an_agent_cannot_manage_the_organization,
    another_tenants_objects_are_not_found,
    an_api_key_is_shown_once_and_listed_without_its_secret,
    malformed_graphql_gets_a_coded_error,
    the_last_admin_cannot_demote_themselves,
);

async fn the_first_admin_creates_a_department_and_an_agent_who_can_log_in(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;

    let department = create_department(&app, &admin, "Support").await;
    let department_id = department["data"]["createDepartment"]["id"].as_str().expect("department id").to_owned();
    let agent = app
        .graphql(
            Some(&admin),
            CREATE_AGENT,
            json!({"input": {"email": "Ann@Acme.example", "name": "Ann", "role": "AGENT", "password": "ann's long password", "departmentIds": [department_id]}}),
        )
        .await;
    assert_eq!(agent["data"]["createAgent"]["email"], "ann@acme.example", "{agent}");
    assert_eq!(agent["data"]["createAgent"]["departmentIds"][0], department_id.as_str());

    let ann = app.login("ann@acme.example", "ann's long password").await;
    let me = app
        .graphql(Some(&ann), "{ me { name role } organization { portalName } departments { name } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"], json!({"name": "Ann", "role": "AGENT"}), "{me}");
    assert_eq!(me["data"]["organization"]["portalName"], "acme");
    assert_eq!(me["data"]["departments"], json!([{"name": "Support"}]));

    let duplicate = create_department(&app, &admin, "Support").await;
    assert_eq!(error_code(&duplicate), "CONFLICT");
}

async fn a_wrong_password_an_expired_and_a_forged_token_are_unauthenticated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let login = app
        .graphql(
            None,
            "mutation { login(input: {email: \"admin@example.com\", password: \"wrong password!\"}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");

    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl";
    let response = app.graphql(Some(forged), "{ organization { name } }", json!({})).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(response["data"].is_null());

    // A session lasts `session_minutes` (12 hours) by the server's clock.
    let session = app.login_admin().await;
    app.clock.advance(chrono::Duration::hours(12) - chrono::Duration::minutes(1));
    let response = app.graphql(Some(&session), "{ organization { name } }", json!({})).await;
    assert!(response["errors"].is_null(), "still valid a minute before: {response}");
    app.clock.advance(chrono::Duration::minutes(2));
    let response = app.graphql(Some(&session), "{ organization { name } }", json!({})).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert_eq!(response["errors"][0]["message"], "session token expired");
}

async fn an_agent_cannot_manage_the_organization(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    app.graphql(
        Some(&admin),
        CREATE_AGENT,
        json!({"input": {"email": "bob@acme.example", "name": "Bob", "role": "AGENT", "password": "bob's long password"}}),
    )
    .await;
    let bob = app.login("bob@acme.example", "bob's long password").await;

    let response = create_department(&app, &bob, "Sales").await;
    assert_eq!(error_code(&response), "PERMISSION_DENIED");
    let response = app
        .graphql(Some(&bob), "mutation { createApiKey(name: \"x\", scopes: [\"events:read\"]) { secret } }", json!({}))
        .await;
    assert_eq!(error_code(&response), "PERMISSION_DENIED");
    let departments = app.graphql(Some(&admin), "{ departments { name } }", json!({})).await;
    assert_eq!(departments["data"]["departments"], json!([]), "nothing was created");
}

async fn another_tenants_objects_are_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let ours = create_department(&app, &admin, "Support").await;
    let our_department = ours["data"]["createDepartment"]["id"].as_str().unwrap().to_owned();
    let globex = second_tenant(&app).await;

    let response = app
        .graphql(Some(&globex), "query($id: ID!) { department(id: $id) { name } }", json!({"id": our_department}))
        .await;
    assert_eq!(error_code(&response), "NOT_FOUND");
    let rename = app
        .graphql(
            Some(&globex),
            "mutation($id: ID!) { renameDepartment(id: $id, name: \"Hacked\") { name } }",
            json!({"id": our_department}),
        )
        .await;
    assert_eq!(error_code(&rename), "NOT_FOUND");
    let theirs = app.graphql(Some(&globex), "{ departments { name } agents { email } }", json!({})).await;
    assert_eq!(theirs["data"]["departments"], json!([]));
    assert_eq!(theirs["data"]["agents"], json!([{"email": "boss@globex.example"}]));
    let still = app.graphql(Some(&admin), "{ departments { name } }", json!({})).await;
    assert_eq!(still["data"]["departments"], json!([{"name": "Support"}]));
}

async fn an_api_key_is_shown_once_and_listed_without_its_secret(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let created = app
        .graphql(
            Some(&admin),
            "mutation { createApiKey(name: \"CRM\", scopes: [\"organization:read\", \"events:read\"]) { secret apiKey { id prefix scopes } } }",
            json!({}),
        )
        .await;
    let secret = created["data"]["createApiKey"]["secret"].as_str().expect("secret").to_owned();
    let prefix = created["data"]["createApiKey"]["apiKey"]["prefix"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(&format!("mdg_{prefix}_")));

    let listed = app.graphql(Some(&admin), "{ apiKeys { name prefix scopes lastUsedAt revokedAt } }", json!({})).await;
    assert_eq!(listed["data"]["apiKeys"][0]["name"], "CRM");
    assert!(!listed.to_string().contains(&secret[prefix.len() + 5..]), "the secret is never listed");

    let stored: Vec<madoguchi_entity::api_keys::Model> =
        <madoguchi_entity::api_keys::Entity as sea_orm::EntityTrait>::find().all(app.core.db()).await.unwrap();
    assert!(stored.iter().all(|row| !row.digest.contains(&secret) && row.digest.len() == 64));

    let unknown_scope = app
        .graphql(Some(&admin), "mutation { createApiKey(name: \"x\", scopes: [\"root\"]) { secret } }", json!({}))
        .await;
    assert_eq!(error_code(&unknown_scope), "INVALID_ARGUMENT");
}

async fn malformed_graphql_gets_a_coded_error(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    for query in ["{ organization { name ", "{ noSuchField }", "query($id: ID!) { department(id: $id) { name } }"] {
        let response = app.graphql(Some(&admin), query, json!({})).await;
        assert_eq!(error_code(&response), "INVALID_ARGUMENT", "{query}: {response}");
    }
    let bad_id = app.graphql(Some(&admin), "{ department(id: \"not-a-uuid\") { name } }", json!({})).await;
    assert_eq!(error_code(&bad_id), "INVALID_ARGUMENT");
    let bad_email = app
        .graphql(
            Some(&admin),
            CREATE_AGENT,
            json!({"input": {"email": "nope", "name": "N", "role": "AGENT", "password": "long enough pw"}}),
        )
        .await;
    assert_eq!(error_code(&bad_email), "INVALID_ARGUMENT");
    let agents = app.graphql(Some(&admin), "{ agents { email } }", json!({})).await;
    assert_eq!(agents["data"]["agents"].as_array().unwrap().len(), 1, "nothing was created");
}

async fn the_last_admin_cannot_demote_themselves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let admin = app.login_admin().await;
    let me = app.graphql(Some(&admin), "{ me { id } }", json!({})).await;
    let id = me["data"]["me"]["id"].as_str().unwrap();
    let response = app
        .graphql(
            Some(&admin),
            "mutation($id: ID!) { updateAgent(id: $id, input: {role: AGENT}) { role } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(error_code(&response), "FAILED_PRECONDITION");
}

on_both_backends!(oversized_and_abusive_operations_are_refused_with_a_code);

async fn oversized_and_abusive_operations_are_refused_with_a_code(backend: Backend) {
    let Some(app) = madoguchi_tests::spawn_app_with(backend, |settings| {
        settings.graphql_introspection = false;
        // Small enough that the client has written all of it when the 413 comes.
        settings.body_limit_bytes = 64 * 1024;
    })
    .await
    else {
        return;
    };
    let admin = app.login_admin().await;
    let aliases: String = (0..31).map(|n| format!("a{n}: organization {{ name }} ")).collect();
    let response = app.graphql(Some(&admin), &format!("{{ {aliases} }}"), json!({})).await;
    assert_eq!(error_code(&response), "INVALID_ARGUMENT");
    assert!(response["errors"][0]["message"].as_str().unwrap().contains("too many aliases"), "{response}");
    let deep = "{ chats { edges { node { end: endUser { id } messages { attachments { id } } } } } }";
    assert!(app.graphql(Some(&admin), deep, json!({})).await["errors"].is_null(), "ordinary queries pass");
    let introspection = app.graphql(Some(&admin), "{ __schema { types { name } } }", json!({})).await;
    assert!(introspection["data"]["__schema"].is_null(), "introspection can be switched off: {introspection}");
    let huge = json!({"query": "{ organization { name } }", "padding": "x".repeat(128 * 1024)}).to_string();
    let status = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 413, "the body limit holds");
}
