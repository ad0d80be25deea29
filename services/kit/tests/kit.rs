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

/// An outbox row for tests: `payload` about aggregate `aggregate` of account `acme`.
fn thing(aggregate: &str, payload: Vec<u8>) -> helpdesk_kit::outbox::OutboxEvent {
    helpdesk_kit::outbox::OutboxEvent {
        event_id: uuid::Uuid::now_v7(),
        account_id: "acme".into(),
        kind: "thing.happened",
        event_type: "test.v1.Thing".into(),
        ce_subject: aggregate.into(),
        occurred_at: chrono::Utc::now(),
        payload,
    }
}

async fn pending_rows(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn an_event_too_large_to_publish_is_refused_when_emitted() {
    use helpdesk_proto::conversation::v1::{Contact, ContactUpdated};
    let (_env, pool, _bus) = setup().await;
    let mut tx = pool.begin().await.expect("begin");
    let contact = Contact {
        id: uuid::Uuid::now_v7().to_string(),
        custom_attributes: [("notes".to_string(), "x".repeat(1_100_000))].into(),
        ..Default::default()
    };
    let event = ContactUpdated {
        contact: Some(contact),
        ..Default::default()
    };
    let origin = helpdesk_kit::event::Origin::system("acme");
    let refused = helpdesk_kit::outbox::emit(&mut tx, &origin, event)
        .await
        .expect_err("an event over the limit is refused");
    let status = tonic::Status::from(refused);
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("contact.updated"), "{status:?}");
    tx.commit().await.expect("commit");
    assert_eq!(pending_rows(&pool).await, 0, "nothing was written");
}

#[tokio::test]
async fn a_row_nats_refuses_is_parked_and_the_events_after_it_flow() {
    let (env, pool, bus) = setup().await;
    let mut tx = pool.begin().await.expect("begin");
    let big = thing("c-2", vec![b'x'; 1_200_000]);
    let big_id = big.event_id;
    for event in [
        thing("c-1", b"before".to_vec()),
        big,
        thing("c-2", b"after, same aggregate".to_vec()),
        thing("c-3", b"after, another aggregate".to_vec()),
    ] {
        helpdesk_kit::outbox::enqueue(&mut tx, event)
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
    let parked_before = helpdesk_kit::outbox::parked_total();

    let relay = helpdesk_kit::outbox::Relay::new(
        pool.clone(),
        bus.clone(),
        "kittest",
        env.service_config().outbox,
    );
    // The first pass parks the big row and publishes the rest; the second publishes
    // the `outbox.parked` event.
    for _ in 0..3 {
        relay.publish_batch().await.expect("relay pass succeeds");
    }
    assert_eq!(
        pending_rows(&pool).await,
        0,
        "nothing is stuck in the outbox"
    );

    let published = helpdesk_kit::testing::stream_events(&env, "acme.thing.happened", 3).await;
    let bodies: Vec<&[u8]> = published.iter().map(|m| m.payload.as_ref()).collect();
    assert_eq!(
        bodies,
        vec![
            b"before".as_slice(),
            b"after, same aggregate".as_slice(),
            b"after, another aggregate".as_slice()
        ]
    );
    let (reason, size): (String, i32) =
        sqlx::query_as("SELECT reason, length(payload) FROM outbox_parked WHERE event_id = $1")
            .bind(big_id)
            .fetch_one(&pool)
            .await
            .expect("the big row is parked");
    assert!(reason.contains("max payload"), "{reason}");
    assert_eq!(size, 1_200_000);
    let notices = helpdesk_kit::testing::stream_events(&env, "acme.outbox.parked", 1).await;
    assert_eq!(notices.len(), 1, "one operator event");
    let notice = <helpdesk_proto::common::v1::OutboxEventParked as prost::Message>::decode(
        notices[0].payload.clone(),
    )
    .expect("decode");
    assert_eq!(notice.event_id, big_id.to_string());
    assert_eq!(notice.subject, "acme.thing.happened");
    assert_eq!(notice.size_bytes, 1_200_000);
    assert_eq!(notice.schema, "kittest");
    assert!(helpdesk_kit::outbox::parked_total() > parked_before);
}

#[tokio::test]
async fn a_nats_restart_in_a_burst_loses_nothing_and_keeps_each_aggregate_in_order() {
    let mut nats = helpdesk_kit::testing::PrivateNats::start().await;
    let env = TestEnv::with_nats(&nats.url()).await;
    let config = env.service_config();
    let pool = db::connect_and_migrate(&config.database_url, "kittest", 5, &MIGRATOR)
        .await
        .expect("db");
    let bus = Bus::connect(&config, "kit-test").await.expect("bus");
    const EVENTS: usize = 5_000;
    const AGGREGATES: usize = 50;
    let mut tx = pool.begin().await.expect("begin");
    for i in 0..EVENTS {
        let aggregate = format!("c-{}", i % AGGREGATES);
        let payload = format!("{aggregate}:{i}").into_bytes();
        helpdesk_kit::outbox::enqueue(&mut tx, thing(&aggregate, payload))
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");

    // Watch for a connection left idle inside a transaction (the relay waiting on
    // NATS while holding one).
    let watching = helpdesk_kit::CancellationToken::new();
    let watcher = tokio::spawn({
        let (pool, watching) = (pool.clone(), watching.clone());
        async move {
            let mut seen = 0i64;
            while !watching.is_cancelled() {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND state = 'idle in transaction'",
                )
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
                seen = seen.max(n);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            seen
        }
    });
    let stop = helpdesk_kit::CancellationToken::new();
    let relay = helpdesk_kit::outbox::Relay::new(
        pool.clone(),
        bus.clone(),
        "kittest",
        config.outbox.clone(),
    );
    let relaying = tokio::spawn(relay.run(stop.clone()));
    eventually(Duration::from_secs(30), || async {
        (pending_rows(&pool).await < (EVENTS as i64) * 9 / 10).then_some(())
    })
    .await
    .expect("publishing started");
    nats.stop().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart().await;
    eventually(Duration::from_secs(90), || async {
        (pending_rows(&pool).await == 0).then_some(())
    })
    .await
    .expect("every event published after the restart");
    stop.cancel();
    relaying.await.expect("relay task");
    watching.cancel();
    let idle_in_transaction = watcher.await.expect("watcher");

    let published = helpdesk_kit::testing::stream_events(&env, "acme.thing.happened", EVENTS).await;
    let ids: std::collections::HashSet<String> = published
        .iter()
        .filter_map(|m| helpdesk_kit::bus::header(m.headers.as_ref(), headers::ID))
        .map(str::to_string)
        .collect();
    assert_eq!(published.len(), EVENTS, "each event once on the stream");
    assert_eq!(ids.len(), EVENTS);
    let mut last: std::collections::HashMap<String, usize> = Default::default();
    for m in &published {
        let body = String::from_utf8(m.payload.to_vec()).expect("utf8");
        let (aggregate, i) = body.split_once(':').expect("aggregate:i");
        let i: usize = i.parse().expect("number");
        if let Some(previous) = last.insert(aggregate.to_string(), i) {
            assert!(previous < i, "{aggregate}: event {i} came after {previous}");
        }
    }
    assert_eq!(
        idle_in_transaction, 0,
        "no connection waited inside a transaction"
    );
}

#[tokio::test]
async fn changed_stream_and_consumer_settings_apply_on_the_next_start() {
    let env = TestEnv::new().await;
    let mut config = env.service_config();
    config.duplicate_window_secs = 120;
    let pool = db::connect_and_migrate(&config.database_url, "kittest", 5, &MIGRATOR)
        .await
        .expect("db");
    let spec = ConsumerSpec {
        name: "kittest".into(),
        kinds: vec!["thing.happened".into()],
    };
    let run_once = |config: helpdesk_kit::config::ServiceConfig| {
        let (pool, spec) = (pool.clone(), spec.clone());
        async move {
            let bus = Bus::connect(&config, "kit-test").await.expect("bus");
            let shutdown = helpdesk_kit::CancellationToken::new();
            let task = tokio::spawn(consumer::run(
                bus.clone(),
                pool,
                spec,
                Arc::new(Counting),
                config.consumer.clone(),
                shutdown.clone(),
            ));
            let info = eventually(Duration::from_secs(10), || async {
                let stream = bus.js.get_stream(&config.stream_name).await.ok()?;
                let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer("kittest").await.ok()?;
                let consumer_info = consumer.info().await.ok()?.config.clone();
                (consumer_info.ack_wait == Duration::from_secs(config.consumer.ack_wait_secs))
                    .then_some(consumer_info)
            })
            .await;
            let stream_info = bus
                .js
                .get_stream(&config.stream_name)
                .await
                .expect("stream")
                .info()
                .await
                .expect("info")
                .config
                .clone();
            shutdown.cancel();
            task.await.expect("join").expect("consumer");
            (stream_info, info)
        }
    };
    let (stream, consumer) = run_once(config.clone()).await;
    assert_eq!(stream.duplicate_window, Duration::from_secs(120));
    consumer.expect("consumer created");

    // An upgrade changes the settings: they apply to the existing stream and consumer.
    config.duplicate_window_secs = 900;
    config.event_max_age_hours = 48;
    config.consumer.ack_wait_secs += 15;
    config.consumer.max_deliver = 3;
    let (stream, consumer) = run_once(config.clone()).await;
    assert_eq!(stream.duplicate_window, Duration::from_secs(900));
    assert_eq!(stream.max_age, Duration::from_secs(48 * 3600));
    let consumer = consumer.expect("consumer updated to the new ack wait");
    assert_eq!(consumer.filter_subjects.len(), 1);
}

/// Fails every time (a dependency that stays broken).
struct AlwaysRetry(std::sync::atomic::AtomicU32);

impl Handler for AlwaysRetry {
    async fn handle(&self, _: &mut PgConnection, _: &IncomingEvent) -> Result<(), HandlerError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(HandlerError::Retry("the dependency is down".into()))
    }
}

#[tokio::test]
async fn an_event_whose_dead_lettering_fails_is_retried_not_dropped() {
    let (env, pool, bus) = setup().await;
    let mut config = env.service_config();
    config.consumer.max_deliver = 2;
    // The dead-letter stream is gone: parking fails until it is back.
    bus.js
        .delete_stream(bus.dead_letter_stream())
        .await
        .expect("delete dlq");
    bus.js
        .publish_with_headers(
            bus.subjects.event("acme", "thing.happened"),
            event_headers("evt-stuck", "s"),
            "fine".into(),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    let handler = Arc::new(AlwaysRetry(Default::default()));
    let shutdown = helpdesk_kit::CancellationToken::new();
    let task = tokio::spawn(consumer::run(
        bus.clone(),
        pool.clone(),
        ConsumerSpec {
            name: "kittest".into(),
            kinds: vec!["thing.happened".into()],
        },
        handler.clone(),
        config.consumer.clone(),
        shutdown.clone(),
    ));
    // Both deliveries were tried, and dead-lettering failed after the last one.
    eventually(Duration::from_secs(15), || async {
        (handler.0.load(std::sync::atomic::Ordering::SeqCst) >= 2).then_some(())
    })
    .await
    .expect("two attempts");
    tokio::time::sleep(Duration::from_millis(500)).await;
    bus.ensure_streams(&config).await.expect("dlq back");
    let dlq = bus
        .js
        .get_stream(bus.dead_letter_stream())
        .await
        .expect("dlq stream");
    let parked = eventually(Duration::from_secs(30), || {
        let dlq = dlq.clone();
        async move {
            let mut dlq = dlq;
            let info = dlq.info().await.ok()?;
            (info.state.messages == 1).then_some(())
        }
    })
    .await;
    assert!(parked.is_some(), "the event reached the dead-letter stream");
    shutdown.cancel();
    task.await.expect("join").expect("consumer");
}

/// Its effect can never be applied (a bug, data that will not change).
struct Broken;

impl TimerHandler for Broken {
    async fn current_fingerprint(
        &self,
        _: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        Ok(Some(timer.fingerprint.clone()))
    }

    async fn fire(&self, _: &mut PgConnection, _: &Timer) -> Result<(), TimerError> {
        Err(TimerError("the referenced row is gone".into()))
    }
}

#[tokio::test]
async fn a_timer_that_keeps_failing_backs_off_then_is_set_aside() {
    let (_env, pool, _bus) = setup().await;
    let mut conn = pool.acquire().await.expect("conn");
    timers::schedule(
        &mut conn,
        "test.broken",
        "k",
        chrono::Utc::now(),
        "f",
        serde_json::json!({}),
    )
    .await
    .expect("schedule");
    assert_eq!(
        timers::tick(&pool, &Broken).await.expect("tick"),
        Tick::Failed
    );
    let (attempts, due_in): (i32, f64) = sqlx::query_as(
        "SELECT attempts, extract(epoch FROM due_at - now())::float8 FROM timers WHERE kind = 'test.broken'",
    )
    .fetch_one(&pool)
    .await
    .expect("still scheduled");
    assert_eq!(attempts, 1);
    assert!(due_in > 0.5, "pushed back, not retried at once: {due_in}");

    // Its last allowed attempt: set aside with the error, no longer retried.
    sqlx::query("UPDATE timers SET attempts = $1, due_at = now() WHERE kind = 'test.broken'")
        .bind(timers::MAX_ATTEMPTS - 1)
        .execute(&pool)
        .await
        .expect("age it");
    assert_eq!(
        timers::tick(&pool, &Broken).await.expect("tick"),
        Tick::Failed
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM timers")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(left, 0, "no longer retried");
    let (attempts, error): (i32, String) =
        sqlx::query_as("SELECT attempts, last_error FROM timers_failed WHERE kind = 'test.broken'")
            .fetch_one(&pool)
            .await
            .expect("set aside");
    assert_eq!(attempts, timers::MAX_ATTEMPTS);
    assert_eq!(error, "the referenced row is gone");
    assert_eq!(
        timers::tick(&pool, &Broken).await.expect("tick"),
        Tick::Idle
    );
}

#[tokio::test]
async fn the_inbox_forgets_old_event_ids() {
    let (_env, pool, _bus) = setup().await;
    sqlx::query(
        "INSERT INTO inbox (consumer, event_id, subject, processed_at)
         SELECT 'kittest', 'old-' || g, 's', now() - interval '9 days' FROM generate_series(1, 12000) g
         UNION ALL SELECT 'kittest', 'recent', 's', now() - interval '1 day'
         UNION ALL SELECT 'other', 'old-1', 's', now() - interval '9 days'",
    )
    .execute(&pool)
    .await
    .expect("seed");
    let removed = consumer::prune_inbox(&pool, "kittest", 8 * 24).await;
    assert_eq!(removed, 12_000);
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT consumer, event_id FROM inbox ORDER BY consumer")
            .fetch_all(&pool)
            .await
            .expect("rows");
    assert_eq!(
        left,
        vec![
            ("kittest".to_string(), "recent".to_string()),
            ("other".to_string(), "old-1".to_string())
        ]
    );
}

#[tokio::test]
async fn a_deadlock_is_aborted_for_the_caller_to_retry_not_internal() {
    let (_env, pool, _bus) = setup().await;
    sqlx::query("INSERT INTO counters (name, value) VALUES ('a', 0), ('b', 0)")
        .execute(&pool)
        .await
        .expect("rows");
    let lock = |first: &'static str, second: &'static str| {
        let pool = pool.clone();
        async move {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1")
                .bind(first)
                .execute(&mut *tx)
                .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1")
                .bind(second)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
    };
    let (one, two) = tokio::join!(lock("a", "b"), lock("b", "a"));
    let failed = one
        .err()
        .or(two.err())
        .expect("PostgreSQL broke the deadlock");
    let status = tonic::Status::from(helpdesk_kit::error::Error::from(failed));
    assert_eq!(status.code(), tonic::Code::Aborted, "{status:?}");
}

/// Locks its state row the way a domain path does, after telling the test it is about
/// to, and after giving the test's domain change a moment to take that row first.
struct Contended {
    reached: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
}

impl TimerHandler for Contended {
    async fn current_fingerprint(
        &self,
        conn: &mut PgConnection,
        timer: &Timer,
    ) -> Result<Option<String>, TimerError> {
        self.reached.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.go.notified()).await;
        Ok(
            sqlx::query_scalar("SELECT fingerprint FROM state WHERE key = $1 FOR UPDATE")
                .bind(&timer.key)
                .fetch_optional(conn)
                .await?,
        )
    }

    async fn fire(&self, conn: &mut PgConnection, timer: &Timer) -> Result<(), TimerError> {
        sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)")
            .bind(&timer.key)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// A domain change locks its own row, then moves the timer; a timer coming due at
/// that moment takes the same locks in the same order, so neither deadlocks: the
/// change wins, and the timer is dropped as stale instead of failing.
#[tokio::test]
async fn a_timer_firing_while_its_state_changes_never_deadlocks() {
    let (_env, pool, _bus) = setup().await;
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::query("INSERT INTO state (key, fingerprint) VALUES ('k', 'v1')")
        .execute(&mut *conn)
        .await
        .expect("state");
    timers::schedule(
        &mut conn,
        "test.contended",
        "k",
        chrono::Utc::now(),
        "v1",
        serde_json::json!({}),
    )
    .await
    .expect("schedule");
    drop(conn);

    let handler = Arc::new(Contended {
        reached: Arc::new(tokio::sync::Notify::new()),
        go: Arc::new(tokio::sync::Notify::new()),
    });
    let firing = tokio::spawn({
        let (pool, handler) = (pool.clone(), handler.clone());
        async move { timers::tick(&pool, handler.as_ref()).await }
    });
    handler.reached.notified().await;

    // The domain path: its row first, then the timer, as every service does it.
    let change = async {
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE state SET fingerprint = 'v2' WHERE key = 'k'")
            .execute(&mut *tx)
            .await?;
        handler.go.notify_one();
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        timers::schedule(
            &mut tx,
            "test.contended",
            "k",
            later,
            "v2",
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await
    };
    change
        .await
        .expect("the domain change is never chosen as a deadlock victim");
    let outcome = firing.await.expect("join").expect("tick");
    assert_eq!(outcome, Tick::Stale, "the timer saw the state had moved on");

    let (fingerprint, attempts): (String, i32) =
        sqlx::query_as("SELECT fingerprint, attempts FROM timers WHERE kind = 'test.contended'")
            .fetch_one(&pool)
            .await
            .expect("the moved timer is kept");
    assert_eq!((fingerprint.as_str(), attempts), ("v2", 0));
    assert_eq!(
        counter(&pool, "k").await,
        0,
        "the stale timer had no effect"
    );
}

/// Two operations that lock the same rows in opposite orders deadlock once;
/// PostgreSQL rolls one back whole, and it is run again instead of failing.
#[tokio::test]
async fn an_operation_rolled_back_by_a_deadlock_is_run_again() {
    use helpdesk_kit::error::{Error, retry_conflicts};
    use std::sync::atomic::{AtomicU32, Ordering};
    let (_env, pool, _bus) = setup().await;
    sqlx::query("INSERT INTO state (key, fingerprint) VALUES ('a', '0'), ('b', '0')")
        .execute(&pool)
        .await
        .expect("state");
    let both_hold_one = Arc::new(tokio::sync::Barrier::new(2));
    let attempts = Arc::new(AtomicU32::new(0));
    let operation = |first: &'static str, second: &'static str| {
        let (pool, barrier, attempts) = (pool.clone(), both_hold_one.clone(), attempts.clone());
        async move {
            retry_conflicts(|| {
                let (pool, barrier, attempts) = (pool.clone(), barrier.clone(), attempts.clone());
                async move {
                    let attempt = attempts.fetch_add(1, Ordering::SeqCst);
                    let mut tx = pool.begin().await?;
                    for (i, key) in [first, second].into_iter().enumerate() {
                        sqlx::query(
                            "UPDATE state SET fingerprint = (fingerprint::int + 1)::text WHERE key = $1",
                        )
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                        // Both first attempts hold their first row before taking the other.
                        if i == 0 && attempt < 2 {
                            barrier.wait().await;
                        }
                    }
                    tx.commit().await?;
                    Ok::<_, Error>(())
                }
            })
            .await
        }
    };
    let (one, two) = tokio::join!(operation("a", "b"), operation("b", "a"));
    one.expect("a then b");
    two.expect("b then a");
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "one of them ran twice");
    let counts: Vec<String> = sqlx::query_scalar("SELECT fingerprint FROM state ORDER BY key")
        .fetch_all(&pool)
        .await
        .expect("state");
    assert_eq!(counts, ["2", "2"], "each applied exactly once");
}
