//! The kit's reliability mechanisms against real NATS and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use futures::StreamExt;
use helpdesk_kit::bus::{Bus, headers};
use helpdesk_kit::consumer::{self, ConsumerSpec, Handler, HandlerError, IncomingEvent, Outcome};
use helpdesk_kit::db;
use helpdesk_kit::testing::{TestEnv, eventually};
use helpdesk_kit::timers::{self, Tick, Timer, TimerError, TimerHandler};
use sqlx::{PgConnection, PgPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations");

async fn setup() -> (TestEnv, PgPool, Bus) {
    let env = TestEnv::new().await;
    let config = env.service_config();
    let pool = db::connect_and_migrate(&config.database_url, "kittest", 5, &MIGRATOR)
        .await
        .expect("db");
    let bus = Bus::connect(&config, "kit-test").await.expect("bus");
    (env, pool, bus)
}

async fn counter(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT coalesce((SELECT value FROM counters WHERE name = $1), 0)")
        .bind(name)
        .fetch_one(pool)
        .await
        .expect("counter")
}

/// Counts events; payload "poison" is refused for good.
struct Counting;

impl Handler for Counting {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        if event.payload.as_ref() == b"poison" {
            return Err(HandlerError::Poison("payload says poison".into()));
        }
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
        )
        .bind(&event.kind)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Runs the `Counting` consumer on `thing.happened` until the token is cancelled.
fn start_counting(
    env: &TestEnv,
    pool: &PgPool,
    bus: &Bus,
) -> (
    helpdesk_kit::CancellationToken,
    tokio::task::JoinHandle<Result<(), helpdesk_kit::bus::BusError>>,
) {
    let shutdown = helpdesk_kit::CancellationToken::new();
    let spec = ConsumerSpec {
        name: "kittest".into(),
        kinds: vec!["thing.happened".into()],
    };
    let task = tokio::spawn(consumer::run(
        bus.clone(),
        pool.clone(),
        spec,
        Arc::new(Counting),
        env.service_config().consumer,
        shutdown.clone(),
    ));
    (shutdown, task)
}

fn event_headers(id: &str, msg_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::ID, id);
    h.insert(headers::NATS_MSG_ID, msg_id);
    h.insert(headers::TYPE, "test.v1.Thing");
    h
}

#[tokio::test]
async fn the_same_event_delivered_twice_changes_state_once() {
    let (env, pool, bus) = setup().await;
    let subject = bus.subjects.event("acme", "thing.happened");
    // The same event reaches the stream twice (e.g. republished after the dedup
    // window): same ce-id, different Nats-Msg-Id.
    for msg_id in ["a", "b"] {
        bus.js
            .publish_with_headers(subject.clone(), event_headers("evt-1", msg_id), "x".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let (shutdown, task) = start_counting(&env, &pool, &bus);
    // Both deliveries are acked: nothing left pending for the durable consumer.
    let stream = bus.js.get_stream(&env.stream_name).await.expect("stream");
    let drained = eventually(Duration::from_secs(15), || async {
        let mut c = stream
            .get_consumer::<async_nats::jetstream::consumer::pull::Config>("kittest")
            .await
            .ok()?;
        let info = c.info().await.ok()?;
        (info.num_pending == 0
            && info.num_ack_pending == 0
            && info.delivered.consumer_sequence >= 2)
            .then_some(())
    })
    .await;
    assert!(drained.is_some(), "both deliveries acked");
    assert_eq!(
        counter(&pool, "thing.happened").await,
        1,
        "state changed once"
    );
    shutdown.cancel();
    task.await.expect("join").expect("consumer");

    // Applying it directly again is also a no-op.
    let event = IncomingEvent {
        subject,
        account_id: "acme".into(),
        kind: "thing.happened".into(),
        event_id: "evt-1".into(),
        event_type: "test.v1.Thing".into(),
        payload: "x".into(),
        delivered: 3,
    };
    assert_eq!(
        consumer::apply(&pool, "kittest", &Counting, &event)
            .await
            .expect("apply"),
        Outcome::Duplicate
    );
    assert_eq!(counter(&pool, "thing.happened").await, 1);
}

#[tokio::test]
async fn poison_events_are_dead_lettered_with_the_reason() {
    let (env, pool, bus) = setup().await;
    let subject = bus.subjects.event("acme", "thing.happened");
    bus.js
        .publish_with_headers(
            subject.clone(),
            event_headers("evt-poison", "p"),
            "poison".into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    bus.js
        .publish_with_headers(
            subject.clone(),
            event_headers("evt-good", "g"),
            "fine".into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    let dlq = bus
        .js
        .get_stream(bus.dead_letter_stream())
        .await
        .expect("dlq stream");
    let (shutdown, task) = start_counting(&env, &pool, &bus);
    let parked = eventually(Duration::from_secs(15), || {
        let dlq = dlq.clone();
        async move {
            let mut dlq = dlq;
            let info = dlq.info().await.ok()?;
            (info.state.messages == 1).then_some(())
        }
    })
    .await;
    assert!(parked.is_some(), "poison message parked");
    let consumer = dlq
        .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
        .await
        .expect("dlq consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .expect("fetch");
    let parked = batch.next().await.expect("one").expect("message");
    let h = parked.headers.as_ref().expect("headers");
    assert_eq!(
        h.get(headers::DLQ_REASON).map(|v| v.as_str()),
        Some("payload says poison")
    );
    assert_eq!(
        h.get(headers::DLQ_SUBJECT).map(|v| v.as_str()),
        Some(subject.as_str())
    );
    assert_eq!(h.get(headers::ID).map(|v| v.as_str()), Some("evt-poison"));
    assert_eq!(parked.payload.as_ref(), b"poison");
    // The good event after it was still applied.
    let applied = eventually(Duration::from_secs(10), || async {
        (counter(&pool, "thing.happened").await == 1).then_some(())
    })
    .await;
    assert!(applied.is_some());
    shutdown.cancel();
    task.await.expect("join").expect("consumer");
}

#[tokio::test]
async fn a_poison_event_in_a_batch_costs_the_others_nothing() {
    let (env, pool, bus) = setup().await;
    let subject = bus.subjects.event("acme", "thing.happened");
    // Everything is on the stream before the consumer starts, so it arrives in
    // batches; the poison event sits in the middle of one.
    for i in 0..60 {
        let (id, body) = if i == 30 {
            ("evt-poison".to_string(), "poison")
        } else {
            (format!("evt-{i}"), "fine")
        };
        bus.js
            .publish_with_headers(subject.clone(), event_headers(&id, &id), body.into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let (shutdown, task) = start_counting(&env, &pool, &bus);
    let applied = eventually(Duration::from_secs(20), || async {
        (counter(&pool, "thing.happened").await == 59).then_some(())
    })
    .await;
    assert!(applied.is_some(), "the 59 good events were applied");
    let dlq = bus
        .js
        .get_stream(bus.dead_letter_stream())
        .await
        .expect("dlq stream");
    let parked = eventually(Duration::from_secs(10), || {
        let dlq = dlq.clone();
        async move {
            let mut dlq = dlq;
            (dlq.info().await.ok()?.state.messages == 1).then_some(())
        }
    })
    .await;
    assert!(parked.is_some(), "the poison event was parked");
    // Nothing was applied twice by the batch's rollback and retry one by one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(counter(&pool, "thing.happened").await, 59);
    shutdown.cancel();
    task.await.expect("join").expect("consumer");
}

/// Fires by counting; the current fingerprint lives in the `state` table.
struct Firing;

impl TimerHandler for Firing {
    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        Ok(
            sqlx::query_scalar("SELECT fingerprint FROM state WHERE key = $1")
                .bind(&timer.key)
                .fetch_optional(conn)
                .await?,
        )
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        // Slow enough that a second worker would overlap if claims were not exclusive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
        )
        .bind(&timer.key)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[tokio::test]
async fn timers_fire_once_across_workers_and_drop_when_state_moved_on() {
    let (env, pool, _bus) = setup().await;
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(500);
    let mut conn = pool.acquire().await.expect("conn");
    for i in 0..20 {
        let key = format!("k{i}");
        sqlx::query("INSERT INTO state (key, fingerprint) VALUES ($1, 'v1')")
            .bind(&key)
            .execute(&mut *conn)
            .await
            .expect("state");
        timers::schedule(
            &mut conn,
            "test.wake",
            &key,
            due,
            "v1",
            serde_json::json!({}),
        )
        .await
        .expect("schedule");
    }
    // One timer whose state moves on before it is due.
    sqlx::query("INSERT INTO state (key, fingerprint) VALUES ('stale', 'v2')")
        .execute(&mut *conn)
        .await
        .expect("state");
    timers::schedule(
        &mut conn,
        "test.wake",
        "stale",
        due,
        "v1",
        serde_json::json!({}),
    )
    .await
    .expect("schedule");
    drop(conn);

    let shutdown = helpdesk_kit::CancellationToken::new();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(timers::run_worker(
                pool.clone(),
                Arc::new(Firing),
                env.service_config().timers,
                shutdown.clone(),
            ))
        })
        .collect();
    let all_gone = eventually(Duration::from_secs(30), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM timers")
            .fetch_one(&pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
    assert!(all_gone.is_some(), "every timer claimed");
    shutdown.cancel();
    for w in workers {
        w.await.expect("worker");
    }
    for i in 0..20 {
        assert_eq!(
            counter(&pool, &format!("k{i}")).await,
            1,
            "timer k{i} fired exactly once"
        );
    }
    assert_eq!(
        counter(&pool, "stale").await,
        0,
        "stale timer dropped, not fired"
    );
    assert_eq!(
        timers::tick(&pool, &Firing).await.expect("tick"),
        Tick::Idle
    );
}
