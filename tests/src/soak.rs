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

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_kit::testing::http::Receiver;
use helpdesk_kit::testing::smtp::SmtpServer;
use helpdesk_kit::testing::{PrivateNats, PrivatePostgres};
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::automation::v1::{Action, CreateRuleRequest, LabelsAction, Rule, action};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{
    ChannelKind, Contact, ConversationStatus, CreateInboxRequest, GetConversationRequest, Inbox,
    ListMessagesRequest, SendMessageRequest, SetStatusRequest, StartConversationRequest,
};
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{
    AcceptTransferRequest, Agent, AssignReason, ConversationAssigned, CreateAgentRequest, Presence,
    RequestTransferRequest, SetPresenceRequest,
};
use helpdesk_proto::ticketing::v1::CreateTicketFromConversationRequest;
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use prost::Message as _;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::load::summary;
use crate::platform::authed;

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

/// What was counted.
#[derive(Debug, Default)]
pub struct Report {
    pub duration: Duration,
    pub processes: usize,
    pub faults: Vec<String>,
    pub chats_started: usize,
    pub chats_not_started: usize,
    pub messages_sent: usize,
    pub messages_stored: usize,
    pub messages_lost: usize,
    pub messages_duplicated: usize,
    pub events: u64,
    pub assignments: usize,
    pub double_assignments: usize,
    pub chats_never_assigned: usize,
    pub transfers_requested: usize,
    pub transfers_accepted: usize,
    pub transfers_left_pending: usize,
    pub tickets: usize,
    pub emails: usize,
    pub emails_lost: usize,
    pub emails_duplicated: usize,
    pub webhooks: usize,
    pub webhooks_lost: usize,
    pub webhooks_duplicated: usize,
    pub rule_labels_missing: usize,
    pub refused_calls: usize,
    /// SendMessage, first try to acknowledgement (µs, sorted).
    pub send_latency_us: Vec<u64>,
    /// Chat started → routing assigned it (µs, sorted).
    pub assign_latency_us: Vec<u64>,
    /// Message acknowledged → its webhook received (µs, sorted).
    pub webhook_latency_us: Vec<u64>,
}

impl Report {
    /// Everything lost or repeated: empty when the run was clean.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |n: usize, what: &str| {
            if n > 0 {
                problems.push(format!("{n} {what}"));
            }
        };
        check(self.messages_lost, "acknowledged messages lost");
        check(self.messages_duplicated, "messages stored twice");
        check(self.double_assignments, "chats routed twice");
        check(self.chats_never_assigned, "chats never assigned");
        check(self.transfers_left_pending, "transfers never decided");
        check(self.emails_lost, "ticket emails never sent");
        check(self.emails_duplicated, "emails sent twice");
        check(self.webhooks_lost, "message webhooks never delivered");
        check(self.webhooks_duplicated, "webhooks delivered twice");
        check(self.rule_labels_missing, "chats the rule never labelled");
        if self.messages_sent == 0 || self.chats_started == 0 {
            problems.push("no load ran".into());
        }
        problems
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "soak: {:.0} s, {} service processes (2 of each), faults: {}",
            self.duration.as_secs_f64(),
            self.processes,
            if self.faults.is_empty() {
                "none".to_string()
            } else {
                self.faults.join(", ")
            }
        )?;
        writeln!(
            f,
            "  chats       {} started ({} never started), {} assignments, {} routed twice, {} never assigned",
            self.chats_started,
            self.chats_not_started,
            self.assignments,
            self.double_assignments,
            self.chats_never_assigned
        )?;
        writeln!(
            f,
            "  messages    {} sent, {} stored, {} lost, {} duplicated",
            self.messages_sent, self.messages_stored, self.messages_lost, self.messages_duplicated
        )?;
        writeln!(
            f,
            "  transfers   {} requested, {} accepted, {} never decided",
            self.transfers_requested, self.transfers_accepted, self.transfers_left_pending
        )?;
        writeln!(
            f,
            "  tickets     {} made, {} emails received, {} lost, {} duplicated",
            self.tickets, self.emails, self.emails_lost, self.emails_duplicated
        )?;
        writeln!(
            f,
            "  webhooks    {} received, {} lost, {} duplicated",
            self.webhooks, self.webhooks_lost, self.webhooks_duplicated
        )?;
        writeln!(
            f,
            "  rule        {} chats not labelled",
            self.rule_labels_missing
        )?;
        writeln!(
            f,
            "  events      {} on the stream; {} calls refused (retried)",
            self.events, self.refused_calls
        )?;
        writeln!(f, "  SendMessage       {}", summary(&self.send_latency_us))?;
        writeln!(
            f,
            "  chat → assigned   {}",
            summary(&self.assign_latency_us)
        )?;
        write!(
            f,
            "  message → webhook {}",
            summary(&self.webhook_latency_us)
        )
    }
}

/// A service binary built next to the running program (`target/<profile>/`).
fn binary(service: &str) -> anyhow::Result<PathBuf> {
    let name = format!("helpdesk-{service}");
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(&name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "{name} is not built next to {} (cargo build --bins builds it)",
        exe.display()
    )
}

/// One service process.
struct Process {
    service: &'static str,
    port: u16,
    child: Option<Child>,
}

/// Every service process, with what they share.
struct Fleet {
    processes: Vec<Process>,
    env: Vec<(String, String)>,
    logs: PathBuf,
}

impl Fleet {
    fn start_one(&self, p: &mut Process, replica: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}-{replica}.log", p.service)))?;
        let child = Command::new(binary(p.service)?)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HELPDESK_GRPC_ADDR", format!("127.0.0.1:{}", p.port))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", p.service))?;
        p.child = Some(child);
        Ok(())
    }

    async fn start(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let logs = std::env::temp_dir().join(format!("helpdesk-soak-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&logs)?;
        let mut fleet = Self {
            processes: Vec::new(),
            env,
            logs,
        };
        let mut taken = HashSet::new();
        for service in SERVICES {
            for replica in 0..REPLICAS {
                let port = loop {
                    let port = helpdesk_devservers::process::free_port()?;
                    if taken.insert(port) {
                        break port;
                    }
                };
                let mut p = Process {
                    service,
                    port,
                    child: None,
                };
                fleet.start_one(&mut p, replica)?;
                fleet.processes.push(p);
                // Replicas of a service race on their schema's migrations: let them.
            }
        }
        for p in &fleet.processes {
            wait_serving(p.port, Duration::from_secs(120))
                .await
                .with_context(|| {
                    format!(
                        "{} on {} never served (logs in {})",
                        p.service,
                        p.port,
                        fleet.logs.display()
                    )
                })?;
        }
        Ok(fleet)
    }

    /// The ports of `service`'s processes.
    fn ports(&self, service: &str) -> Vec<u16> {
        self.processes
            .iter()
            .filter(|p| p.service == service)
            .map(|p| p.port)
            .collect()
    }

    /// Kills `service`'s `replica` with SIGKILL, then starts it again after `pause`.
    async fn kill_and_restart(
        &mut self,
        service: &str,
        replica: usize,
        pause: Duration,
    ) -> anyhow::Result<()> {
        let index = self
            .processes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.service == service)
            .nth(replica)
            .map(|(i, _)| i)
            .context("no such process")?;
        if let Some(mut child) = self.processes[index].child.take() {
            child.start_kill()?;
            let _ = child.wait().await;
        }
        tokio::time::sleep(pause).await;
        let mut p = Process {
            service: self.processes[index].service,
            port: self.processes[index].port,
            child: None,
        };
        self.start_one(&mut p, replica)?;
        let port = p.port;
        self.processes[index] = p;
        wait_serving(port, Duration::from_secs(60)).await
    }

    async fn stop(mut self) {
        for p in &mut self.processes {
            if let Some(child) = p.child.as_mut()
                && let Some(pid) = child.id()
            {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for p in &mut self.processes {
            if let Some(mut child) = p.child.take() {
                let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

async fn wait_serving(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let channel = channel(port);
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(2),
            client.check(tonic_health::pb::HealthCheckRequest::default()),
        )
        .await
            && r.into_inner().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not serving on {port}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("a URL")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// Clients of every process, spread round robin.
#[derive(Clone)]
struct Clients {
    conversation: Vec<Channel>,
    routing: Vec<Channel>,
    ticketing: Vec<Channel>,
    keys: JwtKeys,
    refused: Arc<std::sync::atomic::AtomicUsize>,
}

impl Clients {
    fn token(&self, subject: &str, role: Role) -> String {
        self.keys.mint(&Claims::new(
            ACCOUNT,
            subject,
            role,
            chrono::Duration::hours(2),
        ))
    }

    fn pick(channels: &[Channel], n: usize) -> Channel {
        channels[n % channels.len()].clone()
    }

    fn conversation(&self, n: usize) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::new(Self::pick(&self.conversation, n))
    }

    fn routing(&self, n: usize) -> RoutingServiceClient<Channel> {
        RoutingServiceClient::new(Self::pick(&self.routing, n))
    }

    fn ticketing(&self, n: usize) -> TicketingServiceClient<Channel> {
        TicketingServiceClient::new(Self::pick(&self.ticketing, n))
    }

    /// Runs `call` (given the attempt number, to pick a process) until it is answered
    /// with anything but a refusal (UNAVAILABLE, or no connection), for at most
    /// [`PERSIST`].
    async fn persist<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let answer = tokio::time::timeout(Duration::from_secs(10), call(attempt))
                .await
                .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("no answer in 10 s")));
            match answer {
                Err(s)
                    if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
                        && started.elapsed() < PERSIST =>
                {
                    self.refused
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * attempt.min(5) as u64)).await;
                }
                other => return other,
            }
        }
    }
}

/// What one chat did.
#[derive(Debug, Default, Clone)]
struct Chat {
    id: String,
    /// Contents of the messages acknowledged, with when.
    acked: Vec<(String, Instant)>,
    ticket: Option<String>,
    transfer: Option<String>,
}

/// What the load recorded.
#[derive(Default)]
struct Recorded {
    chats: Vec<Chat>,
    not_started: usize,
    send_latency_us: Vec<u64>,
    assign_latency_us: Vec<u64>,
    transfers_accepted: usize,
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

/// One visitor's chat and what its agents do with it.
async fn chat(
    clients: Clients,
    n: usize,
    inbox_key: String,
    agents: Vec<String>,
    messages: usize,
    recorded: Arc<Mutex<Recorded>>,
) {
    let began = Instant::now();
    let start = clients
        .persist(|attempt| {
            let mut c = clients.conversation(n + attempt);
            let req = StartConversationRequest {
                inbox_public_key: inbox_key.clone(),
                contact: Some(Contact {
                    name: format!("Visitor {n}"),
                    email: format!("visitor-{n}@example.com"),
                    ..Default::default()
                }),
                ..Default::default()
            };
            async move { c.start_conversation(req).await.map(|r| r.into_inner()) }
        })
        .await;
    let Ok(started) = start else {
        recorded.lock().expect("lock").not_started += 1;
        return;
    };
    let Some(conversation) = started.conversation.map(|c| c.id) else {
        return;
    };
    let visitor = started.visitor_token;
    let mut chat = Chat {
        id: conversation.clone(),
        ..Default::default()
    };
    // Routing's choice is watched for while the visitor writes.
    let supervisor = clients.token("soak-supervisor", Role::Supervisor);
    let routed = tokio::spawn(assignee(
        clients.clone(),
        conversation.clone(),
        supervisor,
        began,
    ));
    let mut latencies = Vec::new();
    for m in 0..messages {
        let content = format!("c{n}-m{m}");
        let t = Instant::now();
        let sent = clients
            .persist(|attempt| {
                let mut c = clients.conversation(n + m + attempt);
                let req = authed(
                    SendMessageRequest {
                        conversation_id: conversation.clone(),
                        content: content.clone(),
                        client_message_id: content.clone(),
                        ..Default::default()
                    },
                    &visitor,
                );
                async move { c.send_message(req).await.map(|_| ()) }
            })
            .await;
        if sent.is_ok() {
            latencies.push(t.elapsed().as_micros() as u64);
            chat.acked.push((content, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The agent routing chose.
    let Ok(Some((mut agent, assigned_after))) = routed.await else {
        push(&recorded, chat, latencies, None, false);
        return;
    };
    // One chat in four is passed to another agent, who accepts.
    let mut accepted = false;
    if n % 4 == 1 {
        let to = agents
            .iter()
            .find(|a| **a != agent)
            .cloned()
            .unwrap_or_default();
        let token = clients.token(&agent, Role::Agent);
        let requested = clients
            .persist(|attempt| {
                let mut r = clients.routing(n + attempt);
                let req = authed(
                    RequestTransferRequest {
                        conversation_id: conversation.clone(),
                        to_agent_id: to.clone(),
                        note: "soak".into(),
                        ..Default::default()
                    },
                    &token,
                );
                async move { r.request_transfer(req).await.map(|r| r.into_inner()) }
            })
            .await;
        if let Ok(transfer) = requested {
            chat.transfer = Some(transfer.id.clone());
            let token = clients.token(&to, Role::Agent);
            let answer = clients
                .persist(|attempt| {
                    let mut r = clients.routing(n + attempt);
                    let req = authed(
                        AcceptTransferRequest {
                            transfer_id: transfer.id.clone(),
                        },
                        &token,
                    );
                    async move { r.accept_transfer(req).await.map(|_| ()) }
                })
                .await;
            if answer.is_ok() {
                accepted = true;
                agent = to;
            }
        }
    }
    // One chat in three becomes a ticket; its requester hears of it by email.
    if n.is_multiple_of(3) {
        let token = clients.token(&agent, Role::Agent);
        let made = clients
            .persist(|attempt| {
                let mut t = clients.ticketing(n + attempt);
                let req = authed(
                    CreateTicketFromConversationRequest {
                        conversation_id: conversation.clone(),
                        request_id: format!("soak-ticket-{n}"),
                        ..Default::default()
                    },
                    &token,
                );
                async move {
                    t.create_ticket_from_conversation(req)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await;
        if let Ok(ticket) = made {
            chat.ticket = Some(ticket.id);
        }
    }
    // Done: resolved, which frees the agent's seat.
    let token = clients.token(&agent, Role::Agent);
    let _ = clients
        .persist(|attempt| {
            let mut c = clients.conversation(n + attempt);
            let req = authed(
                SetStatusRequest {
                    conversation_id: conversation.clone(),
                    status: ConversationStatus::Resolved as i32,
                    ..Default::default()
                },
                &token,
            );
            async move { c.set_status(req).await.map(|_| ()) }
        })
        .await;
    push(&recorded, chat, latencies, Some(assigned_after), accepted);
}

/// The agent the conversation service says has the chat, once it has one, and how
/// long after `began` that was seen (µs; looked for every 50 ms, for 90 s at most).
async fn assignee(
    clients: Clients,
    conversation: String,
    supervisor: String,
    began: Instant,
) -> Option<(String, u64)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        let got = clients
            .persist(|attempt| {
                let mut c = clients.conversation(attempt);
                let req = authed(
                    GetConversationRequest {
                        id: conversation.clone(),
                    },
                    &supervisor,
                );
                async move { c.get_conversation(req).await.map(|r| r.into_inner()) }
            })
            .await;
        if let Ok(c) = got
            && !c.assignee_id.is_empty()
        {
            return Some((c.assignee_id, began.elapsed().as_micros() as u64));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn push(
    recorded: &Mutex<Recorded>,
    chat: Chat,
    latencies: Vec<u64>,
    assigned_after: Option<u64>,
    accepted: bool,
) {
    let mut r = recorded.lock().expect("lock");
    r.chats.push(chat);
    r.send_latency_us.extend(latencies);
    r.assign_latency_us.extend(assigned_after);
    if accepted {
        r.transfers_accepted += 1;
    }
}

/// The message webhooks received: (webhook-id, content, when).
fn message_webhooks(hooks: &Receiver) -> Vec<(String, String, Instant)> {
    hooks
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                r.header("webhook-id").to_string(),
                body["data"]["message"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                r.at,
            )
        })
        .collect()
}

/// The Message-IDs of the "ticket created" mails received.
fn ticket_mails(smtp: &SmtpServer) -> Vec<String> {
    smtp.mails()
        .iter()
        .filter_map(|m| {
            let parsed = mail_parser::MessageParser::default().parse(&m.data)?;
            let id = parsed.message_id()?.to_string();
            id.starts_with("ticket-").then_some(id)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn count(
    fleet: &Fleet,
    clients: &Clients,
    pg: &PrivatePostgres,
    nats: &PrivateNats,
    root: &str,
    stream: &str,
    hooks: &Receiver,
    smtp: &SmtpServer,
    recorded: Recorded,
    duration: Duration,
    faults: Vec<String>,
) -> anyhow::Result<Report> {
    let mut report = Report {
        duration,
        processes: fleet.processes.len(),
        faults,
        chats_started: recorded.chats.len(),
        chats_not_started: recorded.not_started,
        transfers_accepted: recorded.transfers_accepted,
        refused_calls: clients.refused.load(std::sync::atomic::Ordering::Relaxed),
        ..Default::default()
    };
    let supervisor = clients.token("soak-supervisor", Role::Supervisor);

    // Messages: every acknowledged one stored, once.
    for chat in &recorded.chats {
        let mut stored: HashMap<String, usize> = HashMap::new();
        let mut page_token = String::new();
        loop {
            let page = clients
                .persist(|attempt| {
                    let mut c = clients.conversation(attempt);
                    let req = authed(
                        ListMessagesRequest {
                            conversation_id: chat.id.clone(),
                            page_size: 100,
                            page_token: page_token.clone(),
                            ..Default::default()
                        },
                        &supervisor,
                    );
                    async move { c.list_messages(req).await.map(|r| r.into_inner()) }
                })
                .await
                .context("reading a transcript")?;
            for m in page.messages {
                if !m.client_message_id.is_empty() {
                    *stored.entry(m.content).or_default() += 1;
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        report.messages_sent += chat.acked.len();
        report.messages_stored += stored.values().sum::<usize>();
        report.messages_duplicated += stored.values().filter(|n| **n > 1).count();
        report.messages_lost += chat
            .acked
            .iter()
            .filter(|(content, _)| !stored.contains_key(content))
            .count();
        // The rule labelled it.
        let conversation = clients
            .persist(|attempt| {
                let mut c = clients.conversation(attempt);
                let req = authed(
                    GetConversationRequest {
                        id: chat.id.clone(),
                    },
                    &supervisor,
                );
                async move { c.get_conversation(req).await.map(|r| r.into_inner()) }
            })
            .await
            .context("reading a conversation")?;
        if !conversation.labels.iter().any(|l| l == "soak") {
            report.rule_labels_missing += 1;
        }
    }

    // Assignments, from the stream: each chat routed once.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let events = js.get_stream(stream).await?.info().await?.state.messages;
    report.events = events;
    let consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{root}.evt.{ACCOUNT}.routing.assigned"),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let mut routed: HashMap<String, usize> = HashMap::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        let mut got = 0;
        while let Some(Ok(m)) = batch.next().await {
            got += 1;
            let assigned = ConversationAssigned::decode(m.payload.clone())?;
            report.assignments += 1;
            if assigned.reason != AssignReason::Transfer as i32 {
                *routed.entry(assigned.conversation_id).or_default() += 1;
            }
        }
        if got == 0 {
            break;
        }
    }
    report.double_assignments = routed.values().filter(|n| **n > 1).count();
    report.chats_never_assigned = recorded
        .chats
        .iter()
        .filter(|c| !routed.contains_key(&c.id))
        .count();

    // Transfers: each one asked for was decided.
    let requested: Vec<uuid::Uuid> = recorded
        .chats
        .iter()
        .filter_map(|c| c.transfer.as_deref()?.parse().ok())
        .collect();
    report.transfers_requested = requested.len();
    let db = sqlx::PgPool::connect(&pg.url()).await?;
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM routing.transfers WHERE id = ANY($1) AND state = 'pending'",
    )
    .bind(&requested)
    .fetch_one(&db)
    .await?;
    report.transfers_left_pending = usize::try_from(pending).unwrap_or_default();
    db.close().await;

    // Webhooks: one per acknowledged message, none twice.
    let webhooks = message_webhooks(hooks);
    report.webhooks = webhooks.len();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut first_by_content: HashMap<&str, Instant> = HashMap::new();
    for (id, content, at) in &webhooks {
        *by_id.entry(id.as_str()).or_default() += 1;
        first_by_content.entry(content.as_str()).or_insert(*at);
    }
    report.webhooks_duplicated = by_id.values().filter(|n| **n > 1).count();
    for chat in &recorded.chats {
        for (content, acked) in &chat.acked {
            match first_by_content.get(content.as_str()) {
                Some(at) => report
                    .webhook_latency_us
                    .push(at.saturating_duration_since(*acked).as_micros() as u64),
                None => report.webhooks_lost += 1,
            }
        }
    }

    // Emails: one "ticket created" per ticket, none twice.
    let tickets: Vec<&String> = recorded
        .chats
        .iter()
        .filter_map(|c| c.ticket.as_ref())
        .collect();
    report.tickets = tickets.len();
    let mails = ticket_mails(smtp);
    report.emails = mails.len();
    let mut mail_ids: HashMap<&str, usize> = HashMap::new();
    for id in &mails {
        *mail_ids.entry(id.as_str()).or_default() += 1;
    }
    report.emails_duplicated = mail_ids.values().filter(|n| **n > 1).count();
    report.emails_lost = tickets
        .iter()
        .filter(|t| {
            !mail_ids
                .keys()
                .any(|id| id.starts_with(&format!("ticket-{t}@")))
        })
        .count();

    report.send_latency_us = recorded.send_latency_us;
    report.assign_latency_us = recorded.assign_latency_us;
    for v in [
        &mut report.send_latency_us,
        &mut report.assign_latency_us,
        &mut report.webhook_latency_us,
    ] {
        v.sort_unstable();
    }
    Ok(report)
}
