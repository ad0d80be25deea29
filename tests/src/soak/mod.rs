//! The soak: every service in two processes of its own (the service binaries, not
//! `helpdesk up`) against one NATS and one PostgreSQL, under mixed load for a while:
//! visitors chat and send messages, agents take chats, pass some on (transfers) and
//! make tickets of others (whose requesters get an email), a rule labels every chat,
//! and an endpoint gets every message as a webhook. With faults, a routing process is
//! killed with SIGKILL (and started again), NATS is restarted and PostgreSQL is
//! restarted during the run. Then everything is counted: sent, stored, events,
//! deliveries, duplicates, lost, and latency percentiles.
//!
//! Only what the platform acknowledged is owed: a call refused with UNAVAILABLE (a
//! dependency down) is tried again by the visitor or agent, with the same idempotency
//! key where the API has one.

mod chats;
mod fleet;
mod report;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use helpdesk_kit::auth::{JwtKeys, Role};
use helpdesk_kit::testing::http::Receiver;
use helpdesk_kit::testing::smtp::SmtpServer;
use helpdesk_kit::testing::{PrivateNats, PrivatePostgres};
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::automation::v1::{Action, CreateRuleRequest, LabelsAction, Rule, action};
use helpdesk_proto::conversation::v1::{ChannelKind, CreateInboxRequest, Inbox};
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::{Agent, CreateAgentRequest, Presence, SetPresenceRequest};

use crate::platform::authed;
use chats::{Clients, Recorded, chat};
use fleet::{Fleet, channel};
use report::{count, message_webhooks, ticket_mails};

pub use report::{Metered, Report};

/// The account the soak works in.
const ACCOUNT: &str = "soak";
/// The services, in the order their processes start.
const SERVICES: [&str; 5] = [
    "conversation",
    "routing",
    "ticketing",
    "automation",
    "notification",
];
/// Processes of each service.
const REPLICAS: usize = 2;
/// How long one visitor or agent keeps trying a refused call.
const PERSIST: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakSpec {
    /// How long the load runs.
    pub duration: Duration,
    /// Chats started per second.
    pub chats_per_second: f64,
    /// Messages each visitor sends.
    pub messages_per_chat: usize,
    /// Agents online (four chats each at most).
    pub agents: usize,
    /// Kill a routing process, restart NATS and restart PostgreSQL during the run.
    pub faults: bool,
}

impl Default for SoakSpec {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(120),
            chats_per_second: 2.0,
            messages_per_chat: 5,
            agents: 8,
            faults: true,
        }
    }
}

/// Runs the soak; the report (its [`Report::problems`] say whether it was clean).
pub async fn run(spec: &SoakSpec) -> anyhow::Result<Report> {
    let mut nats = PrivateNats::start().await;
    let mut pg = PrivatePostgres::start().await;
    let smtp = SmtpServer::start().await;
    let hooks = Receiver::start().await;
    let secret = format!("soak-secret-{}", uuid::Uuid::now_v7().simple());
    let root = "soak";
    let stream = "SOAK_EVENTS";
    let env: Vec<(String, String)> = [
        ("HELPDESK_DATABASE_URL", pg.url()),
        ("HELPDESK_NATS_URL", nats.url()),
        ("HELPDESK_JWT_SECRET", secret.clone()),
        ("HELPDESK_SUBJECT_ROOT", root.into()),
        ("HELPDESK_STREAM_NAME", stream.into()),
        ("HELPDESK_DATABASE_MAX_CONNECTIONS", "8".into()),
        (
            "HELPDESK_NOTIFICATION__ALLOW_LOOPBACK_TARGETS",
            "true".into(),
        ),
        ("HELPDESK_NOTIFICATION__SMTP_HOST", "127.0.0.1".into()),
        ("HELPDESK_NOTIFICATION__SMTP_PORT", smtp.port.to_string()),
        ("HELPDESK_NOTIFICATION__SMTP_TLS", "none".into()),
        (
            "HELPDESK_NOTIFICATION__EMAIL_FROM",
            "Soak Support <support@soak.test>".into(),
        ),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut fleet = Fleet::start(env).await?;
    let clients = Clients {
        conversation: fleet
            .ports("conversation")
            .into_iter()
            .map(channel)
            .collect(),
        routing: fleet.ports("routing").into_iter().map(channel).collect(),
        ticketing: fleet.ports("ticketing").into_iter().map(channel).collect(),
        keys: JwtKeys::new(secret.as_bytes()),
        refused: Arc::default(),
    };
    let admin = clients.token("soak-admin", Role::Admin);

    // The setup: an inbox, agents online, a rule, a webhook endpoint.
    let inbox = clients
        .conversation(0)
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox {
                    name: "Shop".into(),
                    channel_kind: ChannelKind::WebWidget as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .context("inbox")?
        .into_inner();
    let agents: Vec<String> = (0..spec.agents).map(|i| format!("agent-{i}")).collect();
    for agent in &agents {
        clients
            .routing(0)
            .create_agent(authed(
                CreateAgentRequest {
                    agent: Some(Agent {
                        id: agent.clone(),
                        name: agent.clone(),
                        max_chats: 4,
                        ..Default::default()
                    }),
                },
                &admin,
            ))
            .await
            .context("agent")?;
    }
    let automation_port = fleet.ports("automation")[0];
    AutomationServiceClient::new(channel(automation_port))
        .create_rule(authed(
            CreateRuleRequest {
                rule: Some(Rule {
                    name: "Label every chat".into(),
                    active: true,
                    event: "conversation.created".into(),
                    actions: vec![Action {
                        kind: Some(action::Kind::AddLabels(LabelsAction {
                            labels: vec!["soak".into()],
                        })),
                    }],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .context("rule")?;
    NotificationServiceClient::new(channel(fleet.ports("notification")[0]))
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: hooks.url.clone(),
                    event_types: vec!["message.created".into()],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .context("webhook endpoint")?;
    let online = |clients: Clients, agents: Vec<String>| async move {
        for agent in &agents {
            let token = clients.token(agent, Role::Agent);
            let _ = clients
                .persist(|n| {
                    let mut r = clients.routing(n);
                    let req = authed(
                        SetPresenceRequest {
                            agent_id: String::new(),
                            presence: Presence::Online as i32,
                        },
                        &token,
                    );
                    async move { r.set_presence(req).await.map(|_| ()) }
                })
                .await;
        }
    };
    online(clients.clone(), agents.clone()).await;
    // Routing learns of the inbox from its event.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The load, with its heartbeat and the faults.
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let started = Instant::now();
    let load_ends = started + spec.duration;
    let heartbeat = {
        let (clients, agents) = (clients.clone(), agents.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                online(clients.clone(), agents.clone()).await;
            }
        })
    };
    let mut chats = tokio::task::JoinSet::new();
    let every = Duration::from_secs_f64(1.0 / spec.chats_per_second.max(0.01));
    let plan: Vec<(f64, &str)> = if spec.faults {
        vec![
            (0.3, "kill -9 of a routing process"),
            (0.55, "NATS restart"),
            (0.8, "PostgreSQL restart"),
        ]
    } else {
        Vec::new()
    };
    let mut faults_done = Vec::new();
    let mut next_fault = 0;
    let mut n = 0usize;
    while Instant::now() < load_ends {
        let c = clients.clone();
        let (inbox_key, agents, recorded, messages) = (
            inbox.public_key.clone(),
            agents.clone(),
            recorded.clone(),
            spec.messages_per_chat,
        );
        chats.spawn(async move { chat(c, n, inbox_key, agents, messages, recorded).await });
        n += 1;
        let elapsed = started.elapsed().as_secs_f64() / spec.duration.as_secs_f64();
        if let Some((at, what)) = plan.get(next_fault)
            && elapsed >= *at
        {
            next_fault += 1;
            let pause = Duration::from_secs(3);
            match *what {
                "NATS restart" => {
                    nats.stop().await;
                    tokio::time::sleep(pause).await;
                    nats.restart().await;
                }
                "PostgreSQL restart" => {
                    pg.stop().await;
                    tokio::time::sleep(pause).await;
                    pg.start_again().await;
                }
                _ => fleet.kill_and_restart("routing", 1, pause).await?,
            }
            faults_done.push(what.to_string());
            continue;
        }
        tokio::time::sleep(every).await;
    }
    while chats.join_next().await.is_some() {}
    heartbeat.abort();
    let duration = started.elapsed();

    // Drain: what is owed arrives, or the wait runs out.
    let recorded = std::mem::take(&mut *recorded.lock().expect("lock"));
    let acked_messages: usize = recorded.chats.iter().map(|c| c.acked.len()).sum();
    let tickets: Vec<String> = recorded
        .chats
        .iter()
        .filter_map(|c| c.ticket.clone())
        .collect();
    let drain = Instant::now() + Duration::from_secs(90);
    while Instant::now() < drain {
        let webhooks_in = message_webhooks(&hooks).len();
        let mails_in = ticket_mails(&smtp).len();
        if webhooks_in >= acked_messages && mails_in >= tickets.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let report = count(
        &fleet,
        &clients,
        &pg,
        &nats,
        root,
        stream,
        &hooks,
        &smtp,
        recorded,
        duration,
        faults_done,
    )
    .await;
    fleet.stop().await;
    drop(pg);
    drop(nats);
    report
}
