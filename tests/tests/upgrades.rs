//! Upgrades: each service starts on a database its previous release left (every
//! migration but its newest), with events still waiting in the outbox, and two
//! replicas starting at once apply each migration exactly once and publish what the
//! previous release had not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use helpdesk_kit::Service;
use helpdesk_kit::event::Origin;
use helpdesk_kit::testing::{TestEnv, spawn, stream_events};
use helpdesk_proto::common::v1::OutboxEventParked;
use sqlx::migrate::Migrator;

/// A copy of `service`'s migrations without the newest: the previous release's.
fn previous_release(service: &str) -> (PathBuf, usize) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services")
        .join(service)
        .join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{service} has a history to upgrade from");
    let dir = std::env::temp_dir().join(format!(
        "hd-previous-{service}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    for file in &files[..files.len() - 1] {
        std::fs::copy(file, dir.join(file.file_name().expect("name"))).expect("copy");
    }
    (dir, files.len() - 1)
}

async fn upgrades<S: Service>() {
    let env = TestEnv::new().await;
    let config = env.service_config();
    let (dir, previous_count) = previous_release(S::NAME);
    let previous = Migrator::new(dir.as_path())
        .await
        .expect("previous migrations");
    let pool = helpdesk_kit::db::connect_and_migrate(&config.database_url, S::NAME, 2, &previous)
        .await
        .expect("the previous release's schema");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(applied as usize, previous_count);
    // The previous release stopped with an event not yet published.
    let event_id = {
        let mut tx = pool.begin().await.expect("tx");
        let event = OutboxEventParked {
            reason: format!("written by the previous {} release", S::NAME),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(&mut tx, &Origin::system("acme"), event)
            .await
            .expect("emit");
        tx.commit().await.expect("commit");
        let id: uuid::Uuid = sqlx::query_scalar("SELECT event_id FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("pending");
        id.to_string()
    };
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    // Two replicas of the new release start at once.
    let (a, b) = tokio::join!(spawn::<S>(config.clone()), spawn::<S>(config.clone()));
    let versions: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&a.pool)
            .await
            .expect("migrations");
    let expected: Vec<(i64, bool)> = S::migrator().iter().map(|m| (m.version, true)).collect();
    assert_eq!(versions, expected, "{}: each migration once", S::NAME);
    // What the previous release left in the outbox goes out, once.
    let events = stream_events(&env, "acme.outbox.parked", 1).await;
    let ours: Vec<_> = events
        .iter()
        .filter(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .is_some_and(|id| id.as_str() == event_id)
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "{}: the waiting event is published once",
        S::NAME
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn conversation_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_conversation::Conversation>().await;
}

#[tokio::test]
async fn routing_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_routing::Routing>().await;
}

#[tokio::test]
async fn ticketing_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_ticketing::Ticketing>().await;
}

#[tokio::test]
async fn automation_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_automation::Automation>().await;
}

#[tokio::test]
async fn notification_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_notification::Notification>().await;
}
