//! The GraphiQL page in a real headless Chromium with no way off the
//! machine: it renders from the server's own assets, logs in, runs a query
//! with the token it was given, and receives a live chat event over the
//! WebSocket after a signed LINE webhook.

use std::time::Duration;

use futures::FutureExt;
use madoguchi_tests::browser::{Browser, artifacts_dir, chromium};
use madoguchi_tests::line::text_event;
use madoguchi_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, spawn_app, spawn_app_with};

const WAIT: Duration = Duration::from_secs(30);

/// The CodeMirror editor of the query, the response, or the visible tool
/// (headers) pane.
const QUERY_EDITOR: &str = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror";
const RESPONSE: &str = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()";
const HEADERS: &str =
    "document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').CodeMirror.getValue()";

/// Replaces the query with the operation `name` and presses the run button
/// once GraphiQL has taken the new operation in (its tab shows the name), as
/// a person would after typing.
async fn run(browser: &Browser, name: &str, operation: &str) -> anyhow::Result<()> {
    let operation = serde_json::to_string(operation)?;
    browser.evaluate(&format!("{QUERY_EDITOR}.setValue({operation})")).await?;
    let name = serde_json::to_string(name)?;
    browser
        .wait_for(&format!("document.querySelector('.graphiql-tab-active').textContent.trim() === {name}"), WAIT)
        .await?;
    browser.evaluate("document.querySelector('.graphiql-execute-button').click()").await?;
    Ok(())
}

async fn drive_the_page(app: &TestApp, browser: &Browser) -> anyhow::Result<()> {
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;

    browser.navigate(&app.url("/graphql")).await?;
    browser.wait_for("document.querySelector('.graphiql-query-editor .CodeMirror') !== null", WAIT).await?;
    let default_query = browser.evaluate(&format!("{QUERY_EDITOR}.getValue()")).await?;
    assert!(default_query.as_str().unwrap_or_default().contains("login(input:"), "{default_query}");
    let session = browser.evaluate("document.getElementById('session-state').textContent").await?;
    assert!(session.as_str().unwrap_or_default().starts_with("Not logged in"), "{session}");

    // Log in: the token lands in the Authorization header, visibly.
    let login = format!(
        "mutation Login {{ login(input: {{email: \"{ADMIN_EMAIL}\", password: \"{ADMIN_PASSWORD}\"}}) {{ token }} }}"
    );
    run(browser, "Login", &login).await?;
    let response = browser.wait_for(&format!("{RESPONSE}.includes('\"token\"') && {RESPONSE}"), WAIT).await?;
    let response: serde_json::Value = serde_json::from_str(response.as_str().unwrap_or_default())?;
    let token = response["data"]["login"]["token"].as_str().expect("a token in the page's response").to_owned();
    let headers = browser.wait_for(&format!("{HEADERS}.includes('Bearer ey') && {HEADERS}"), WAIT).await?;
    assert!(headers.as_str().unwrap_or_default().contains(&format!("Bearer {token}")), "{headers}");
    let session = browser.evaluate("document.getElementById('session-state').textContent").await?;
    assert!(session.as_str().unwrap_or_default().starts_with("Logged in"), "{session}");

    // A query with that token.
    run(browser, "Me", "query Me { me { email role } }").await?;
    let me = browser.wait_for(&format!("{RESPONSE}.includes('\"role\"') && {RESPONSE}"), WAIT).await?;
    let me: serde_json::Value = serde_json::from_str(me.as_str().unwrap_or_default())?;
    assert_eq!(me["data"]["me"]["email"], ADMIN_EMAIL, "{me}");

    // A subscription over /graphql/ws, authenticated in connection_init,
    // then one event from a signed LINE webhook.
    run(browser, "Live", "subscription Live { chatEvents { cursor kind chatId } }").await?;
    let acknowledged = || browser.websocket_frames_received().iter().any(|frame| frame.contains("connection_ack"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !acknowledged() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the subscription was never acknowledged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server has the subscription once it has processed `subscribe`,
    // which a busy machine may take a moment to do: deliver messages until
    // the page shows an event (a subscription without `after` starts now).
    let mut received = None;
    for attempt in 0..10 {
        let event = text_event("U1browser", &format!("m-browser-{attempt}"), "hello", &format!("r-browser-{attempt}"));
        assert_eq!(app.deliver_line(&channel, vec![event]).await, 200);
        let shown =
            browser.wait_for(&format!("{RESPONSE}.includes('\"kind\"') && {RESPONSE}"), Duration::from_secs(3)).await;
        if let Ok(shown) = shown {
            received = Some(shown);
            break;
        }
    }
    let event = received.ok_or_else(|| anyhow::anyhow!("no event reached the page's subscription"))?;
    assert!(event.as_str().unwrap_or_default().contains("\"chatId\""), "{event}");

    // Nothing left the machine, and the page broke no rule of its policy.
    let origin = app.url("/");
    let ws_origin = origin.replacen("http://", "ws://", 1);
    let requested = browser.requested_urls();
    assert!(requested.iter().any(|url| url.ends_with("/graphql/assets/graphiql.min.js")), "{requested:?}");
    let elsewhere: Vec<_> = requested
        .iter()
        .filter(|url| !url.starts_with(&origin) && !url.starts_with(&ws_origin) && !url.starts_with("data:"))
        .collect();
    assert!(elsewhere.is_empty(), "the page requested {elsewhere:?}");
    let errors = browser.page_errors();
    assert!(errors.is_empty(), "the page reported errors: {errors:?}");
    Ok(())
}

/// Runs `body`; on failure keeps a screenshot under the artefacts folder.
async fn with_screenshot_on_failure(
    name: &str,
    browser: &Browser,
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) {
    let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
    if !matches!(outcome, Ok(Ok(()))) {
        let path = artifacts_dir().join(format!("{name}.png"));
        match browser.screenshot(&path).await {
            Ok(()) => eprintln!("screenshot of the failing page: {}", path.display()),
            Err(error) => eprintln!("no screenshot: {error:#}"),
        }
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(error)) => panic!("{error:#}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_offline_logs_in_queries_and_subscribes() {
    let Some(binary) = chromium() else { return };
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite always runs");
    let browser = Browser::launch(&binary).await.expect("chromium starts");
    with_screenshot_on_failure("graphiql", &browser, drive_the_page(&app, &browser)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_carry_a_strict_policy_and_caching() {
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite always runs");
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(!policy.contains("http"), "no third-party host in {policy}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("//"), "no remote or protocol-relative reference: {html}");

    let asset = app.client.get(app.url("/graphql/assets/graphiql.min.js")).send().await.unwrap();
    assert_eq!(asset.status(), 200);
    assert_eq!(asset.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(asset.headers()["x-content-type-options"], "nosniff");
    assert!(asset.headers()["cache-control"].to_str().unwrap().starts_with("public, max-age="));
    let etag = asset.headers()["etag"].clone();
    let revalidated =
        app.client.get(app.url("/graphql/assets/graphiql.min.js")).header("if-none-match", etag).send().await.unwrap();
    assert_eq!(revalidated.status(), 304);
    let missing = app.client.get(app.url("/graphql/assets/../Cargo.toml")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let unknown = app.client.get(app.url("/graphql/assets/app.js")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_can_be_switched_off_while_the_api_stays() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.graphiql = false).await.expect("sqlite always runs");
    let page = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(page.status(), 405);
    let asset = app.client.get(app.url("/graphql/assets/graphiql.min.js")).send().await.unwrap();
    assert_eq!(asset.status(), 404);
    let token = app.login_admin().await;
    assert!(!token.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_as_graphiql_sends_it_passes_the_depth_limit_but_ordinary_queries_do_not() {
    let app = spawn_app(Backend::Sqlite).await.expect("sqlite always runs");
    // The TypeRef fragment GraphiQL sends nests `ofType` nine times.
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    let introspection =
        format!("query IntrospectionQuery {{ __schema {{ types {{ fields {{ type {{ {type_ref} }} }} }} }} }}");
    let answer = app.graphql(None, &introspection, serde_json::json!({})).await;
    assert!(answer["errors"].is_null(), "{answer}");
    assert!(answer["data"]["__schema"]["types"].as_array().is_some_and(|types| !types.is_empty()));

    // The same depth mixed with an ordinary field is still refused.
    let mixed = format!("{{ me {{ id }} __schema {{ types {{ fields {{ type {{ {type_ref} }} }} }} }} }}");
    let answer = app.graphql(None, &mixed, serde_json::json!({})).await;
    assert_eq!(answer["errors"][0]["message"], "Query is nested too deep.", "{answer}");
}
