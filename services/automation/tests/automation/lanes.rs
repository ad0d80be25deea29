//! The work queue against a real PostgreSQL: each conversation's events are claimed
//! one at a time and in order, a due delayed run waits while its conversation has a
//! run in progress, and an event put back holds its conversation's later ones.

use chrono::Utc;
use helpdesk_automation::Automation;
use helpdesk_automation::store::pending::{self, NewEvent, Pending};
use helpdesk_kit::Service;
use helpdesk_kit::testing::TestEnv;
use sqlx::PgPool;

async fn queue() -> (TestEnv, PgPool) {
    let env = TestEnv::new().await;
    let url = env.service_config().database_url;
    let pool = helpdesk_kit::db::connect_and_migrate(&url, "automation", 5, Automation::migrator())
        .await
        .expect("database");
    (env, pool)
}

async fn enqueue(pool: &PgPool, events: &[(&str, &str)]) {
    let mut tx = pool.begin().await.expect("tx");
    let events: Vec<NewEvent<'_>> = events
        .iter()
        .map(|(aggregate, id)| NewEvent {
            account: "acme",
            aggregate,
            event_id: id,
            kind: "message.created",
            payload: Vec::new(),
            previous: None,
        })
        .collect();
    pending::enqueue_all(&mut tx, &events)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
}

async fn claim(pool: &PgPool) -> Vec<Pending> {
    pending::claim(pool, 10, 60_000).await.expect("claim")
}

fn ids(claimed: &[Pending]) -> Vec<&str> {
    let mut ids: Vec<&str> = claimed.iter().map(|p| p.event_id.as_str()).collect();
    ids.sort();
    ids
}

async fn finish(pool: &PgPool, done: &[Pending]) {
    let mut tx = pool.begin().await.expect("tx");
    let done: Vec<&Pending> = done.iter().collect();
    pending::finish_all(&mut tx, &done).await.expect("finish");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn each_conversation_runs_one_event_at_a_time_in_order() {
    let (_env, pool) = queue().await;
    // Two batches for conversation a (the second after the first committed), one for b.
    enqueue(&pool, &[("a", "a1"), ("b", "b1"), ("a", "a2")]).await;
    enqueue(&pool, &[("a", "a3")]).await;
    // A delayed run of a, already due.
    let mut tx = pool.begin().await.expect("tx");
    let armed = pending::arm(
        &mut tx,
        NewEvent {
            account: "acme",
            aggregate: "a",
            event_id: "a-delayed",
            kind: "message.created",
            payload: Vec::new(),
            previous: None,
        },
        uuid::Uuid::now_v7(),
        "episode",
        Utc::now() - chrono::Duration::seconds(1),
    )
    .await
    .expect("arm");
    assert!(armed);
    tx.commit().await.expect("commit");

    let first = claim(&pool).await;
    assert_eq!(first.len(), 2, "one of a, and b: {:?}", ids(&first));
    assert!(ids(&first).contains(&"b1"));
    assert!(claim(&pool).await.is_empty(), "both are in progress");
    let mut order = Vec::new();
    let mut in_progress = first;
    for _ in 0..10 {
        order.extend(
            in_progress
                .iter()
                .filter(|p| p.aggregate == "a")
                .map(|p| p.event_id.clone()),
        );
        finish(&pool, &in_progress).await;
        in_progress = claim(&pool).await;
        assert!(
            in_progress.iter().filter(|p| p.aggregate == "a").count() <= 1,
            "one run of a at a time"
        );
        if in_progress.is_empty() {
            break;
        }
    }
    let events: Vec<&str> = order
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "a-delayed")
        .collect();
    assert_eq!(events, ["a1", "a2", "a3"], "a's events in order: {order:?}");
    assert!(
        order.iter().any(|e| e == "a-delayed"),
        "the delayed run ran too"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pending")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0);
}

#[tokio::test]
async fn an_event_put_back_holds_its_conversation_until_it_is_due() {
    let (_env, pool) = queue().await;
    enqueue(&pool, &[("a", "a1"), ("a", "a2"), ("b", "b1")]).await;
    let first = claim(&pool).await;
    assert_eq!(ids(&first), ["a1", "b1"]);
    let a1 = first.iter().find(|p| p.event_id == "a1").expect("a1");
    pending::retry_later(&pool, a1, 60_000)
        .await
        .expect("put back");
    let b1: Vec<Pending> = first.into_iter().filter(|p| p.event_id == "b1").collect();
    finish(&pool, &b1).await;
    assert!(
        claim(&pool).await.is_empty(),
        "a2 waits behind a1, which is not due yet"
    );
}
