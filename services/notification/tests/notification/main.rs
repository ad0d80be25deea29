//! The notification service end to end: real NATS and PostgreSQL, and real HTTP
//! receivers and SMTP servers started by each test. Events are emitted through the
//! service's own outbox, so they reach the stream with the platform's headers like
//! any other. Webhooks here; email in `email.rs`.

mod email;

use std::time::Duration;

use base64::Engine;
use helpdesk_kit::auth::Role;
use helpdesk_kit::event::Origin;
use helpdesk_kit::testing::http::{Received, Receiver, Reply};
use helpdesk_kit::testing::{Spawned, TestEnv, eventually, spawn_with, stream_events};
use helpdesk_notification::{Notification, NotificationSettings};
use helpdesk_proto::Event;
use helpdesk_proto::conversation::v1::{Conversation, MessageCreated};
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::*;
use helpdesk_proto::ticketing::v1::{Ticket, TicketCreated};
use hmac::{Hmac, Mac};
use tonic::transport::Channel;
use tonic::{Code, Request};

type Client = NotificationServiceClient<Channel>;

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

/// Settings for tests: loopback receivers allowed, retries within a second.
fn fast() -> NotificationSettings {
    NotificationSettings {
        retry_schedule_seconds: vec![0.0, 0.3, 0.3, 0.3],
        attempt_timeout_ms: 3_000,
        poll_interval_ms: 100,
        allow_loopback_targets: true,
        ..Default::default()
    }
}

struct Setup {
    env: TestEnv,
    service: Spawned,
    admin: String,
    account: String,
}

impl Setup {
    async fn start(settings: NotificationSettings) -> Self {
        let env = TestEnv::new().await;
        let service = spawn_with::<Notification>(env.service_config(), settings).await;
        let account = "acme".to_string();
        let admin = env.token(&account, "admin-1", Role::Admin);
        Self {
            env,
            service,
            admin,
            account,
        }
    }

    async fn client(&self) -> Client {
        Client::connect(self.service.url()).await.expect("connect")
    }

    async fn restart(&mut self, settings: NotificationSettings) {
        let old = std::mem::replace(
            &mut self.service,
            spawn_with::<Notification>(self.env.service_config(), settings).await,
        );
        old.stop().await;
    }

    async fn endpoint(&self, url: &str, types: &[&str]) -> Endpoint {
        self.client()
            .await
            .create_endpoint(authed(
                CreateEndpointRequest {
                    endpoint: Some(Endpoint {
                        url: url.into(),
                        event_types: types.iter().map(|s| s.to_string()).collect(),
                        description: "test receiver".into(),
                        ..Default::default()
                    }),
                },
                &self.admin,
            ))
            .await
            .expect("create endpoint")
            .into_inner()
    }

    /// Emits `event` in `account` through the service's outbox.
    async fn emit<E: Event>(&self, account: &str, event: E) {
        let mut tx = self.service.pool.begin().await.expect("begin");
        helpdesk_kit::outbox::emit(&mut tx, &Origin::system(account), event)
            .await
            .expect("emit");
        tx.commit().await.expect("commit");
        helpdesk_kit::outbox::wake();
    }

    async fn ticket(&self, number: i64) {
        let event = TicketCreated {
            ticket: Some(Ticket {
                id: uuid::Uuid::now_v7().to_string(),
                number,
                subject: format!("Ticket {number}"),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.emit(&self.account.clone(), event).await;
    }

    async fn get_endpoint(&self, id: &str) -> Endpoint {
        self.client()
            .await
            .get_endpoint(authed(GetEndpointRequest { id: id.into() }, &self.admin))
            .await
            .expect("get endpoint")
            .into_inner()
    }

    async fn deliveries(&self, endpoint: &str) -> Vec<Delivery> {
        self.client()
            .await
            .list_deliveries(authed(
                ListDeliveriesRequest {
                    endpoint_id: endpoint.into(),
                    page_size: 100,
                    ..Default::default()
                },
                &self.admin,
            ))
            .await
            .expect("list deliveries")
            .into_inner()
            .deliveries
    }

    /// The endpoint's deliveries once `done` holds for them (10 s at most).
    async fn deliveries_when(
        &self,
        endpoint: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        match eventually(Duration::from_secs(10), || async {
            let d = self.deliveries(endpoint).await;
            done(&d).then_some(d)
        })
        .await
        {
            Some(d) => d,
            None => panic!("deliveries now: {:?}", self.deliveries(endpoint).await),
        }
    }

    async fn stop(self) {
        self.service.stop().await;
    }
}

fn status(d: &Delivery) -> DeliveryStatus {
    DeliveryStatus::try_from(d.status).unwrap_or_default()
}

/// The Standard Webhooks check written from the spec: HMAC-SHA256 with the base64
/// key after `whsec_`, over `id.timestamp.body`, base64, compared with each `v1,`
/// signature of the header.
fn spec_verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.trim_start_matches("whsec_"))
        .expect("secret is base64");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = b64.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| sig == expected)
}

fn library_verifies(secret: &str, r: &Received) -> bool {
    standardwebhooks::Webhook::new(secret)
        .expect("the library reads the secret")
        .verify(&r.body, &r.headers)
        .is_ok()
}

#[tokio::test]
async fn events_arrive_signed_the_standard_webhooks_way_and_only_those_subscribed() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    let endpoint = s.endpoint(&hooks.url, &["ticket.*"]).await;
    assert!(endpoint.secret.starts_with("whsec_"), "{endpoint:?}");
    assert!(endpoint.enabled);

    // A message is not a ticket event: not sent. A ticket is.
    let message = MessageCreated {
        conversation: Some(Conversation {
            id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.emit("acme", message).await;
    s.ticket(42).await;
    // Another account's ticket is not this endpoint's business.
    s.emit(
        "other",
        TicketCreated {
            ticket: Some(Ticket {
                number: 7,
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let got = hooks.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hooks.received().len(), 1, "only the subscribed event");

    let r = &got[0];
    let body = r.json();
    assert_eq!(body["type"], "ticket.created");
    assert_eq!(
        body["data"]["ticket"]["number"], "42",
        "int64 as a JSON string"
    );
    assert_eq!(body["data"]["ticket"]["subject"], "Ticket 42");
    assert_eq!(body["data"]["meta"]["accountId"], "acme");
    let event_id = body["data"]["meta"]["eventId"].as_str().expect("event id");
    assert_eq!(
        r.header("webhook-id"),
        event_id,
        "webhook-id is the event id"
    );
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(r.header("content-type"), "application/json");
    let ts = r.header("webhook-timestamp");
    let sent_at: i64 = ts.parse().expect("Unix seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 60);
    let signature = r.header("webhook-signature");
    assert!(spec_verifies(
        &endpoint.secret,
        event_id,
        ts,
        &r.body,
        signature
    ));
    assert!(library_verifies(&endpoint.secret, r));
    // A body changed in transit does not verify.
    let mut forged = r.clone();
    forged.body = r.body.replace_range_for_test();
    assert!(!library_verifies(&endpoint.secret, &forged));
    assert!(!spec_verifies(
        &endpoint.secret,
        event_id,
        ts,
        &forged.body,
        signature
    ));

    // The log shows one succeeded delivery with its answer.
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Succeeded
        })
        .await;
    assert_eq!(d[0].attempts, 1);
    assert_eq!(d[0].response_code, 200);
    assert_eq!(d[0].event_id, event_id);
    assert_eq!(d[0].event_type, "ticket.created");
    s.stop().await;
}

/// A byte of the body changed.
trait Forge {
    fn replace_range_for_test(&self) -> Vec<u8>;
}

impl Forge for Vec<u8> {
    fn replace_range_for_test(&self) -> Vec<u8> {
        String::from_utf8_lossy(self)
            .replace("Ticket 42", "Ticket 43")
            .into_bytes()
    }
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_during_its_grace() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    let endpoint = s.endpoint(&hooks.url, &["ticket.created"]).await;
    let rotated = s
        .client()
        .await
        .rotate_secret(authed(
            RotateSecretRequest {
                endpoint_id: endpoint.id.clone(),
                grace_seconds: 3600,
            },
            &s.admin,
        ))
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.secret, endpoint.secret);
    assert!(rotated.previous_valid_until.is_some());
    s.ticket(1).await;
    let got = hooks.wait_for(1, Duration::from_secs(10)).await;
    let r = &got[0];
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
    assert!(library_verifies(&rotated.secret, r), "the new secret");
    assert!(
        library_verifies(&endpoint.secret, r),
        "the old one, in grace"
    );

    // A rotation without grace left (1 s) stops signing with the old secret.
    let again = s
        .client()
        .await
        .rotate_secret(authed(
            RotateSecretRequest {
                endpoint_id: endpoint.id.clone(),
                grace_seconds: 1,
            },
            &s.admin,
        ))
        .await
        .expect("rotate")
        .into_inner();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    s.ticket(2).await;
    let got = hooks.wait_for(2, Duration::from_secs(10)).await;
    let r = &got[1];
    assert_eq!(r.header("webhook-signature").split(' ').count(), 1);
    assert!(library_verifies(&again.secret, r));
    assert!(!library_verifies(&rotated.secret, r));
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_then_recovers_gets_the_event_once_acknowledged() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    hooks.script([
        Reply::status(500).body("database is down"),
        Reply::status(302).header("location", "https://elsewhere.example/"),
        Reply::ok().body("thanks"),
    ]);
    let endpoint = s.endpoint(&hooks.url, &["*"]).await;
    s.ticket(5).await;
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Succeeded
        })
        .await;
    assert_eq!(d[0].attempts, 3, "500, a redirect (not followed), then 200");
    assert_eq!(d[0].response_excerpt, "thanks");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let got = hooks.received();
    assert_eq!(got.len(), 3, "nothing after the 2xx");
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id: {ids:?}"
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the same body each time"
    );

    let attempts = s
        .client()
        .await
        .list_delivery_attempts(authed(
            ListDeliveryAttemptsRequest {
                delivery_id: d[0].id.clone(),
            },
            &s.admin,
        ))
        .await
        .expect("attempts")
        .into_inner()
        .attempts;
    let codes: Vec<i32> = attempts.iter().map(|a| a.response_code).collect();
    assert_eq!(codes, vec![500, 302, 200]);
    assert_eq!(attempts[0].response_excerpt, "database is down");
    assert!(!attempts[0].succeeded && attempts[2].succeeded);

    let health = s
        .client()
        .await
        .get_endpoint_health(authed(
            GetEndpointHealthRequest {
                endpoint_id: endpoint.id.clone(),
                window_seconds: 0,
            },
            &s.admin,
        ))
        .await
        .expect("health")
        .into_inner();
    assert_eq!((health.attempts, health.successes), (3, 1));
    assert!((health.success_rate - 1.0 / 3.0).abs() < 1e-9);
    assert!(health.failing_since.is_none(), "it answers again");

    // Redelivered by hand: the same webhook-id once more.
    s.client()
        .await
        .redeliver(authed(
            RedeliverRequest {
                delivery_id: d[0].id.clone(),
            },
            &s.admin,
        ))
        .await
        .expect("redeliver");
    let got = hooks.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].header("webhook-id"), ids[0]);
    s.stop().await;
}

#[tokio::test]
async fn a_restart_in_the_middle_of_retrying_loses_nothing() {
    let mut settings = fast();
    settings.retry_schedule_seconds = vec![0.0, 3.0, 3.0];
    let mut s = Setup::start(settings.clone()).await;
    let hooks = Receiver::start().await;
    hooks.script([Reply::status(503)]);
    let endpoint = s.endpoint(&hooks.url, &["ticket.created"]).await;
    s.ticket(9).await;
    s.deliveries_when(&endpoint.id, |d| d.len() == 1 && d[0].attempts == 1)
        .await;
    // Down while the retry waits; back with the delivery still due.
    s.restart(settings).await;
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Succeeded
        })
        .await;
    assert_eq!(d[0].attempts, 2);
    let got = hooks.received();
    assert_eq!(
        got.len(),
        2,
        "the failed attempt and the one after the restart"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    s.stop().await;
}

#[tokio::test]
async fn a_410_disables_the_endpoint_with_an_event() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    hooks.answer_with(Reply::status(410));
    let endpoint = s.endpoint(&hooks.url, &["ticket.created"]).await;
    s.ticket(1).await;
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Failed
        })
        .await;
    assert_eq!(d[0].attempts, 1, "no retry after 410");
    let e = s.get_endpoint(&endpoint.id).await;
    assert!(!e.enabled);
    assert!(e.disabled_reason.contains("410"), "{}", e.disabled_reason);
    let events = stream_events(&s.env, "acme.notification.endpoint_disabled", 1).await;
    assert_eq!(events.len(), 1);
    // A disabled endpoint receives nothing more.
    s.ticket(2).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(hooks.received().len(), 1);
    assert_eq!(s.deliveries(&endpoint.id).await.len(), 1);

    // Enabled again by hand, it starts afresh.
    hooks.answer_with(Reply::ok());
    let mut client = s.client().await;
    let again = client
        .update_endpoint(authed(
            UpdateEndpointRequest {
                endpoint: Some(Endpoint {
                    id: endpoint.id.clone(),
                    enabled: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["enabled".into()],
                }),
            },
            &s.admin,
        ))
        .await
        .expect("enable")
        .into_inner();
    assert!(again.enabled && again.disabled_reason.is_empty());
    s.ticket(3).await;
    hooks.wait_for(2, Duration::from_secs(10)).await;
    s.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_longer_than_the_span_is_disabled_and_its_deliveries_give_up() {
    let mut settings = fast();
    settings.retry_schedule_seconds = vec![0.0, 0.5, 0.5, 0.5, 0.5, 0.5];
    settings.disable_after_failing_seconds = 1;
    let s = Setup::start(settings).await;
    let failing = Receiver::start().await;
    failing.answer_with(Reply::status(500));
    let watcher = Receiver::start().await;
    let endpoint = s.endpoint(&failing.url, &["ticket.created"]).await;
    // Another endpoint watches the platform's own notification events.
    let watch = s.endpoint(&watcher.url, &["notification.*"]).await;
    s.ticket(1).await;
    let e = eventually(Duration::from_secs(10), || async {
        let e = s.get_endpoint(&endpoint.id).await;
        (!e.enabled).then_some(e)
    })
    .await
    .expect("disabled after failing for a second");
    assert!(e.disabled_reason.contains("every attempt failed"));
    let got = watcher.wait_for(1, Duration::from_secs(10)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "notification.endpoint_disabled");
    assert_eq!(body["data"]["endpoint"]["id"], endpoint.id.as_str());
    // The watcher's own deliveries went through.
    s.deliveries_when(&watch.id, |d| {
        !d.is_empty() && d.iter().all(|d| status(d) == DeliveryStatus::Succeeded)
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured_before_the_next_attempt() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    hooks.script([Reply::status(429).header("retry-after", "2")]);
    let endpoint = s.endpoint(&hooks.url, &["ticket.created"]).await;
    s.ticket(1).await;
    let got = hooks.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(1_900),
        "retried after {waited:?}, though the schedule says 0.3 s and Retry-After 2 s"
    );
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Succeeded
        })
        .await;
    assert_eq!(d[0].attempts, 2);
    s.stop().await;
}

#[tokio::test]
async fn an_event_delivered_twice_to_the_service_is_sent_once() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    s.endpoint(&hooks.url, &["ticket.created"]).await;
    // The same event published twice (as a producer retrying past the stream's
    // duplicate window would): same ce-id, separate stream messages.
    let event_id = uuid::Uuid::now_v7().to_string();
    let event = TicketCreated {
        meta: Some(helpdesk_proto::common::v1::EventMeta {
            event_id: event_id.clone(),
            account_id: "acme".into(),
            ..Default::default()
        }),
        ticket: Some(Ticket {
            number: 3,
            ..Default::default()
        }),
    };
    let js = helpdesk_kit::async_nats::jetstream::new(s.env.nats().await);
    for copy in 0..2 {
        let mut h = helpdesk_kit::async_nats::HeaderMap::new();
        h.insert("ce-id", event_id.as_str());
        h.insert(
            "ce-type",
            <TicketCreated as prost::Name>::full_name().as_str(),
        );
        h.insert("Nats-Msg-Id", format!("{event_id}-{copy}").as_str());
        js.publish_with_headers(
            format!("{}.evt.acme.{}", s.env.subject_root, TicketCreated::KIND),
            h,
            prost::Message::encode_to_vec(&event).into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    }
    let got = hooks.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-id"), event_id);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        hooks.received().len(),
        1,
        "one delivery per event per endpoint"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another() {
    let mut settings = fast();
    settings.attempt_timeout_ms = 10_000;
    settings.per_endpoint_concurrency = 2;
    let s = Setup::start(settings).await;
    let hanging = Receiver::start().await;
    hanging.answer_with(Reply::ok().after(Duration::from_secs(30)));
    let healthy = Receiver::start().await;
    let slow = s.endpoint(&hanging.url, &["ticket.created"]).await;
    s.endpoint(&healthy.url, &["ticket.created"]).await;
    for n in 1..=20 {
        s.ticket(n).await;
    }
    let got = healthy.wait_for(20, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 20, "the healthy endpoint got every event");
    // Meanwhile the hanging one holds only its own share, and nothing of it has
    // finished (its first attempts are still waiting for an answer).
    assert!(
        hanging.received().len() <= 2,
        "{}",
        hanging.received().len()
    );
    let slow_done = s
        .deliveries(&slow.id)
        .await
        .iter()
        .filter(|d| d.attempts > 0)
        .count();
    assert_eq!(slow_done, 0);
    s.stop().await;
}

#[tokio::test]
async fn targets_inside_the_network_are_refused_when_saved_and_when_sent() {
    let mut open = fast();
    open.retry_schedule_seconds = vec![0.0, 0.3];
    let mut s = Setup::start(open).await;
    let hooks = Receiver::start().await;
    // Saved while loopback was allowed…
    let endpoint = s
        .endpoint(
            &hooks.url.replace("127.0.0.1", "localhost"),
            &["ticket.created"],
        )
        .await;
    // …then the operator closes it: the host name resolves to loopback on the attempt.
    let mut closed = fast();
    closed.allow_loopback_targets = false;
    closed.retry_schedule_seconds = vec![0.0, 0.3];
    s.restart(closed).await;
    s.ticket(1).await;
    let d = s
        .deliveries_when(&endpoint.id, |d| {
            d.len() == 1 && status(&d[0]) == DeliveryStatus::Failed
        })
        .await;
    assert!(d[0].error.contains("loopback"), "{}", d[0].error);
    assert_eq!(d[0].response_code, 0);
    assert!(hooks.received().is_empty(), "nothing reached the receiver");

    let mut client = s.client().await;
    for (url, why) in [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://10.0.0.8/hook", "private"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://[::ffff:192.168.0.1]/hook", "private"),
        ("ftp://example.com/hook", "http or https"),
        ("https://user:pw@example.com/hook", "credentials"),
    ] {
        let e = client
            .create_endpoint(authed(
                CreateEndpointRequest {
                    endpoint: Some(Endpoint {
                        url: url.into(),
                        event_types: vec!["*".into()],
                        ..Default::default()
                    }),
                },
                &s.admin,
            ))
            .await
            .expect_err(url);
        assert_eq!(e.code(), Code::InvalidArgument, "{url}");
        assert_eq!(
            helpdesk_kit::grpc::violated_fields(&e),
            vec!["endpoint.url"],
            "{url}"
        );
        assert!(e.message().contains(why), "{url}: {}", e.message());
    }
    s.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_tenants_and_roles_are_kept_apart() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    let endpoint = s.endpoint(&hooks.url, &["ticket.*"]).await;
    let mut client = s.client().await;
    let bad = client
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: hooks.url.clone(),
                    event_types: vec!["ticket.created".into(), "ticket.exploded".into()],
                    rate_limit_per_second: 1_000_000,
                    secret: "not-a-secret".into(),
                    ..Default::default()
                }),
            },
            &s.admin,
        ))
        .await
        .expect_err("bad endpoint");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let mut fields = helpdesk_kit::grpc::violated_fields(&bad);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "endpoint.event_types[1]",
            "endpoint.rate_limit_per_second",
            "endpoint.secret"
        ]
    );
    let listed = client
        .list_endpoints(authed(ListEndpointsRequest::default(), &s.admin))
        .await
        .expect("list")
        .into_inner()
        .endpoints;
    assert_eq!(listed.len(), 1, "nothing stored by the bad call");
    assert!(listed[0].secret.is_empty(), "secrets are not listed");

    // Another account's admin sees nothing of it.
    let stranger = s.env.token("other", "admin-9", Role::Admin);
    let e = client
        .get_endpoint(authed(
            GetEndpointRequest {
                id: endpoint.id.clone(),
            },
            &stranger,
        ))
        .await
        .expect_err("other tenant");
    assert_eq!(e.code(), Code::NotFound);
    let e = client
        .list_deliveries(authed(
            ListDeliveriesRequest {
                endpoint_id: endpoint.id.clone(),
                ..Default::default()
            },
            &stranger,
        ))
        .await
        .expect_err("other tenant");
    assert_eq!(e.code(), Code::NotFound);
    // Agents do not manage webhooks.
    let agent = s.env.token("acme", "agent-1", Role::Agent);
    let e = client
        .list_endpoints(authed(ListEndpointsRequest::default(), &agent))
        .await
        .expect_err("agent");
    assert_eq!(e.code(), Code::PermissionDenied);
    s.stop().await;
}

#[tokio::test]
async fn other_services_send_through_the_send_webhook_command_once_per_key() {
    let s = Setup::start(fast()).await;
    let hooks = Receiver::start().await;
    let endpoint = s.endpoint(&hooks.url, &["ticket.created"]).await;
    let bus = helpdesk_kit::bus::Bus::connect(&s.env.service_config(), "test")
        .await
        .expect("bus");
    let request = SendWebhookRequest {
        account_id: "acme".into(),
        endpoint_id: endpoint.id.clone(),
        idempotency_key: "rule-7:event-1".into(),
        event_type: "automation.webhook".into(),
        data_json: r#"{"rule":"VIP escalation","ticket":12}"#.into(),
    };
    let deadline = Duration::from_secs(5);
    let first = helpdesk_kit::command::call(&bus, &request, deadline)
        .await
        .expect("send");
    let again = helpdesk_kit::command::call(&bus, &request, deadline)
        .await
        .expect("send again");
    assert_eq!(first.delivery_id, again.delivery_id);
    let got = hooks.wait_for(1, Duration::from_secs(10)).await;
    let body = got[0].json();
    assert_eq!(body["type"], "automation.webhook");
    assert_eq!(body["data"]["rule"], "VIP escalation");
    assert_eq!(got[0].header("webhook-id"), "rule-7:event-1");
    assert!(library_verifies(&endpoint.secret, &got[0]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hooks.received().len(), 1, "once per key");

    let bad = helpdesk_kit::command::call(
        &bus,
        &SendWebhookRequest {
            data_json: "[1, 2]".into(),
            ..request.clone()
        },
        deadline,
    )
    .await
    .expect_err("not an object");
    let status = tonic::Status::from(bad);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("data_json"), "{status:?}");
    let other = helpdesk_kit::command::call(
        &bus,
        &SendWebhookRequest {
            account_id: "other".into(),
            ..request.clone()
        },
        deadline,
    )
    .await
    .expect_err("another account's endpoint");
    assert_eq!(tonic::Status::from(other).code(), Code::NotFound);

    // And the test event an admin sends from the settings page.
    let test = s
        .client()
        .await
        .send_test_event(authed(
            SendTestEventRequest {
                endpoint_id: endpoint.id.clone(),
            },
            &s.admin,
        ))
        .await
        .expect("test event")
        .into_inner();
    assert_eq!(test.event_type, "webhook.test");
    let got = hooks.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["type"], "webhook.test");
    s.stop().await;
}

#[tokio::test]
async fn failures_of_failure_news_are_not_news_again() {
    let mut settings = fast();
    settings.retry_schedule_seconds = vec![0.0];
    let s = Setup::start(settings).await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    a.answer_with(Reply::status(500));
    b.answer_with(Reply::status(500));
    // Both take tickets and the platform's own notification events, and both fail.
    let ea = s
        .endpoint(&a.url, &["ticket.created", "notification.*"])
        .await;
    let eb = s
        .endpoint(&b.url, &["ticket.created", "notification.*"])
        .await;
    s.ticket(1).await;
    // Each: the ticket, then the other's failure to deliver it; then nothing more.
    for e in [&ea, &eb] {
        let d = s
            .deliveries_when(&e.id, |d| {
                d.len() == 2 && d.iter().all(|d| status(d) == DeliveryStatus::Failed)
            })
            .await;
        let mut types: Vec<&str> = d.iter().map(|d| d.event_type.as_str()).collect();
        types.sort();
        assert_eq!(
            types,
            vec!["notification.delivery_failed", "ticket.created"]
        );
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(s.deliveries(&ea.id).await.len(), 2);
    assert_eq!(s.deliveries(&eb.id).await.len(), 2);
    assert_eq!(a.received().len() + b.received().len(), 4);
    s.stop().await;
}

#[tokio::test]
async fn finished_deliveries_are_forgotten_after_the_retention_and_waiting_ones_kept() {
    let mut settings = fast();
    settings.retry_schedule_seconds = vec![0.0, 3600.0];
    let s = Setup::start(settings).await;
    let (ok, failing) = (Receiver::start().await, Receiver::start().await);
    failing.answer_with(Reply::status(500));
    let e_ok = s.endpoint(&ok.url, &["ticket.created"]).await;
    let e_failing = s.endpoint(&failing.url, &["ticket.created"]).await;
    s.ticket(1).await;
    s.deliveries_when(&e_ok.id, |d| {
        d.len() == 1 && status(&d[0]) == DeliveryStatus::Succeeded
    })
    .await;
    s.deliveries_when(&e_failing.id, |d| d.len() == 1 && d[0].attempts == 1)
        .await;
    // Nothing is old enough yet.
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let removed = helpdesk_notification::store::deliveries::delete_finished(
        &s.service.pool,
        an_hour_ago,
        100,
    )
    .await
    .expect("retention");
    assert_eq!(removed, 0);
    // Everything finished before now goes; the one waiting for its retry stays.
    let now = chrono::Utc::now() + chrono::Duration::seconds(1);
    let removed =
        helpdesk_notification::store::deliveries::delete_finished(&s.service.pool, now, 100)
            .await
            .expect("retention");
    assert_eq!(removed, 1);
    assert!(s.deliveries(&e_ok.id).await.is_empty());
    assert_eq!(s.deliveries(&e_failing.id).await.len(), 1);
    s.stop().await;
}

mod agents {
    use std::time::Duration;

    use helpdesk_kit::auth::Role;
    use helpdesk_kit::testing::eventually;
    use helpdesk_kit::testing::smtp::SmtpServer;
    use helpdesk_proto::notification::v1::*;
    use helpdesk_proto::routing::v1::{Agent, AgentCreated, ConversationOverflowed, StaffRole};
    use helpdesk_proto::ticketing::v1::{SlaBreached, SlaMetric, Ticket, TicketCreated};

    use super::{Setup, authed, fast};

    fn agent(id: &str, role: StaffRole, teams: &[&str]) -> AgentCreated {
        AgentCreated {
            agent: Some(Agent {
                id: id.into(),
                name: format!("Agent {id}"),
                email: format!("{id}@acme.test"),
                role: role as i32,
                team_ids: teams.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn list(s: &Setup, who: &str) -> Vec<AgentNotification> {
        s.client()
            .await
            .list_notifications(authed(
                ListNotificationsRequest::default(),
                &s.env.token("acme", who, Role::Agent),
            ))
            .await
            .expect("list")
            .into_inner()
            .notifications
    }

    #[tokio::test]
    async fn overflows_reach_the_teams_supervisors_and_breaches_the_tickets_assignee_by_email_too()
    {
        let smtp = SmtpServer::start().await;
        let settings = helpdesk_notification::NotificationSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: smtp.port,
            smtp_tls: "none".into(),
            email_from: "Acme Support <support@acme.test>".into(),
            ..fast()
        };
        let s = Setup::start(settings).await;
        s.emit("acme", agent("sam", StaffRole::Supervisor, &["t1"]))
            .await;
        s.emit("acme", agent("zoe", StaffRole::Supervisor, &["t2"]))
            .await;
        s.emit("acme", agent("ana", StaffRole::Agent, &["t1"]))
            .await;
        // Ana wants breaches by email as well.
        s.client()
            .await
            .update_notification_preferences(authed(
                UpdateNotificationPreferencesRequest {
                    preferences: vec![NotificationPreference {
                        kind: NotificationKind::SlaBreach as i32,
                        in_app: true,
                        email: true,
                        ..Default::default()
                    }],
                },
                &s.env.token("acme", "ana", Role::Agent),
            ))
            .await
            .expect("preferences");
        for conversation in ["c1", "c2"] {
            s.emit(
                "acme",
                ConversationOverflowed {
                    conversation_id: conversation.into(),
                    from_team_id: "t1".into(),
                    reason: "queue_full".into(),
                    ..Default::default()
                },
            )
            .await;
        }
        let sam = eventually(Duration::from_secs(10), || async {
            list(&s, "sam").await.into_iter().find(|n| n.count == 2)
        })
        .await
        .expect("two overflows, one notification");
        assert_eq!(sam.kind, NotificationKind::QueueOverflow as i32);
        assert_eq!(sam.body, "A conversation overflowed: the queue is full.");
        assert!(
            list(&s, "zoe").await.is_empty(),
            "another team's supervisor"
        );
        assert!(
            list(&s, "ana")
                .await
                .iter()
                .all(|n| n.kind != NotificationKind::QueueOverflow as i32),
            "agents are not told"
        );

        s.emit(
            "acme",
            TicketCreated {
                ticket: Some(Ticket {
                    id: "tk-1".into(),
                    number: 31,
                    subject: "Refund overdue".into(),
                    assignee_id: "ana".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await;
        s.emit(
            "acme",
            SlaBreached {
                ticket_id: "tk-1".into(),
                ticket_number: 31,
                metric: SlaMetric::FirstReply as i32,
                ..Default::default()
            },
        )
        .await;
        let breach = eventually(Duration::from_secs(10), || async {
            list(&s, "ana")
                .await
                .into_iter()
                .find(|n| n.kind == NotificationKind::SlaBreach as i32)
        })
        .await
        .expect("told of the breach");
        assert_eq!(
            breach.title,
            "Ticket #31: the first reply target is overdue"
        );
        assert_eq!(breach.ticket_id, "tk-1");
        let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(mails.len(), 1, "by email too");
        assert_eq!(mails[0].to, vec!["ana@acme.test"]);
        let m = mail_parser::MessageParser::default()
            .parse(&mails[0].data)
            .expect("MIME");
        assert_eq!(
            m.subject(),
            Some("Ticket #31: the first reply target is overdue")
        );
        // The ticket-assigned notification came by the in-app channel only.
        assert!(
            list(&s, "ana")
                .await
                .iter()
                .any(|n| n.kind == NotificationKind::TicketAssigned as i32)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(smtp.mails().len(), 1);
        s.stop().await;
    }
}
