//! The job queue through the running server: fenced leases (a worker that
//! lost its job cannot complete it, nor apply its results) and jobs that
//! cannot run, which end failed and are shown to admins.

use chrono::Utc;
use madoguchi_entity::{end_users, jobs, organizations};
use madoguchi_tests::line::{eventually, text_event};
use madoguchi_tests::{Backend, TestApp, error_code, spawn_app_with};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

on_both_backends!(
    a_worker_that_lost_its_lease_cannot_complete_the_job,
    a_job_that_cannot_run_ends_failed_and_admins_see_why
);

/// Makes a running job's lease run out now, as a stalled worker's does.
async fn expire_lease(app: &TestApp, id: uuid::Uuid) {
    jobs::Entity::update_many()
        .col_expr(jobs::Column::LockedUntil, Expr::value(Utc::now() - chrono::Duration::minutes(5)))
        .filter(jobs::Column::Id.eq(id))
        .exec(app.core.db())
        .await
        .unwrap();
}

async fn a_worker_that_lost_its_lease_cannot_complete_the_job(backend: Backend) {
    // No workers of its own: the test plays both of them.
    let Some(app) = spawn_app_with(backend, |settings| settings.job_workers = 0).await else { return };
    let admin = app.login_admin().await;
    let channel = app.create_line_channel(&admin, "REPLY", "FREE").await;
    app.line.set_profile(madoguchi_fakes::FakeProfile::new("Ulease", "Keiko"));
    assert_eq!(app.deliver_line(&channel, vec![text_event("Ulease", "m1", "hi", "r1")]).await, 200);

    let queue = app.core.jobs();
    let first = queue.claim("worker-a").await.unwrap().expect("the profile job");
    assert_eq!(first.kind, "line.fetch_profile");
    expire_lease(&app, first.id).await;
    let second = queue.claim("worker-b").await.unwrap().expect("taken over");
    assert_eq!(second.id, first.id);
    assert_ne!(second.locked_by, first.locked_by, "each claim has a token of its own");

    // Worker A runs the job anyway: its write is refused at commit, so the
    // profile is not stored by it and it has no outcome to record.
    assert!(queue.run(&first).await.is_none(), "a lost lease drops the results");
    let user = end_users::Entity::find().filter(end_users::Column::ExternalId.eq("Ulease")).one(app.core.db()).await;
    assert_eq!(user.unwrap().unwrap().display_name, None);
    let refused = queue.finish(&first, &madoguchi_core::jobs::Outcome::Done).await.unwrap_err();
    assert!(refused.is_lease_lost(), "{refused:?}");
    assert!(!queue.renew(&madoguchi_core::jobs::Lease::of(&first), chrono::Duration::seconds(30)).await.unwrap());

    // Worker B, which holds it, completes it once.
    let outcome = queue.run(&second).await.expect("b holds the lease");
    queue.finish(&second, &outcome).await.unwrap();
    let row = queue.get(second.id).await.unwrap();
    assert_eq!(row.status, "DONE");
    let user = end_users::Entity::find().filter(end_users::Column::ExternalId.eq("Ulease")).one(app.core.db()).await;
    assert_eq!(user.unwrap().unwrap().display_name.as_deref(), Some("Keiko"));
}

async fn a_job_that_cannot_run_ends_failed_and_admins_see_why(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |_| {}).await else { return };
    let admin = app.login_admin().await;
    let organization = organizations::Entity::find().one(app.core.db()).await.unwrap().unwrap();
    let now = Utc::now();
    for (kind, payload) in [("line.reply", json!({"chatId": "not an id"})), ("no.such_kind", json!({}))] {
        jobs::Entity::insert(jobs::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(Some(organization.id)),
            kind: Set(kind.to_owned()),
            status: Set("QUEUED".into()),
            payload: Set(payload),
            channel_id: Set(None),
            message_id: Set(None),
            retry_key: Set(None),
            dedupe_key: Set(None),
            attempts: Set(0),
            run_at: Set(now),
            locked_until: Set(None),
            locked_by: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            finished_at: Set(None),
        })
        .exec_without_returning(app.core.db())
        .await
        .unwrap();
    }
    let query = "{ failedJobs { kind attempts error failedAt } }";
    let failed = eventually(|| async {
        let answer = app.graphql(Some(&admin), query, json!({})).await;
        let failed = answer["data"]["failedJobs"].as_array().cloned().unwrap_or_default();
        (failed.len() == 2).then_some(failed)
    })
    .await;
    for job in &failed {
        assert_eq!(job["attempts"], 1, "never retried: {job}");
        assert!(job["error"].as_str().unwrap().contains("cannot decode"), "{job}");
        assert!(job["failedAt"].is_string());
    }
    // Agents do not see the queue.
    let agent = app
        .graphql(
            Some(&admin),
            "mutation { createAgent(input: {email: \"q@acme.example\", name: \"Q\", role: AGENT, password: \"a long password!\"}) { id } }",
            json!({}),
        )
        .await;
    assert!(agent["errors"].is_null(), "{agent}");
    let token = app.login("q@acme.example", "a long password!").await;
    assert_eq!(error_code(&app.graphql(Some(&token), query, json!({})).await), "PERMISSION_DENIED");
}
