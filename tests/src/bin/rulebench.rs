//! `rulebench`: how cheap rule evaluation is, and how many events the automation
//! service runs rules for per second.
//!
//! 1. Evaluation: `--rules` active rules of one event (keyword, regular expression,
//!    label, status, contact and nested any/all conditions) evaluated against one
//!    incoming message, `--iterations` times: time per event (all rules), p50/p99.
//! 2. End to end: the same rules in a fresh account, plus one rule that matches the
//!    messages marked for it and labels their conversation (a command to the
//!    conversation service). `--events` `message.created` events of `--chats` real
//!    conversations are published straight to the event stream at `--rate` a second
//!    (as the conversation service would publish them); each is taken in by the
//!    automation service and evaluated against all rules. `--acting-share` of them
//!    (and the last event of each conversation) are marked, so the rule acts on
//!    them and logs the run. A conversation's events are run in order, so when the
//!    last one of every conversation is announced, all were run. Measured: events a
//!    second from the first publish to the last announcement, and the latency of the
//!    marked events (publish → `automation.rule_executed` received).
//!
//! Against a running platform with `--conversation`, `--automation` and `--nats`
//! (and HELPDESK_JWT_SECRET; `--root` if it is not `helpdesk`). Without them it runs
//! the platform in-process on NATS and PostgreSQL servers of its own (fsync off).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use helpdesk_automation::cache::AccountRules;
use helpdesk_automation::domain::facts::Facts;
use helpdesk_automation::domain::rules::compile;
use helpdesk_kit::auth::Role;
use helpdesk_kit::bus::headers;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::Event;
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::automation::v1::*;
use helpdesk_proto::common::v1::{Actor, ActorKind, EventMeta};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{
    Contact, Conversation, ConversationStatus, Message, MessageCreated, MessageKind,
    StartConversationRequest,
};
use helpdesk_tests::load::{self, Tokens, percentile, summary};
use helpdesk_tests::platform::{Platform, authed};
use helpdesk_tests::rules::{labels, pred};
use prost::Message as _;
use prost::Name as _;
use tonic::Request;

#[derive(Parser)]
#[command(about = "Automation rules benchmark")]
struct Args {
    /// Active rules of the event.
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Evaluations measured (each: every rule against one event).
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Events published in the end-to-end run.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events published a second.
    #[arg(long, default_value_t = 2_500)]
    rate: u64,
    /// Conversations the events are about.
    #[arg(long, default_value_t = 200)]
    chats: usize,
    /// Share of the events a rule acts on (the others match none of the rules).
    #[arg(long, default_value_t = 0.1)]
    acting_share: f64,
    /// Conversation service of a running platform (then --automation, --nats and
    /// HELPDESK_JWT_SECRET are required).
    #[arg(long, requires_all = ["automation", "nats"])]
    conversation: Option<String>,
    /// Automation service of a running platform.
    #[arg(long)]
    automation: Option<String>,
    /// NATS of a running platform.
    #[arg(long)]
    nats: Option<String>,
    /// Subject root of a running platform.
    #[arg(long, default_value = "helpdesk")]
    root: String,
}

/// What the bench message says; the rule that matches every bench event looks for it.
const MARK: &str = "#bench";

/// Rule `i` of the account: a mix of the conditions admins write, none of which
/// holds for a bench message.
fn rule(i: usize) -> Rule {
    let word = format!("keyword{i}");
    let conditions = match i % 5 {
        0 => vec![pred(
            "message.content",
            Operator::Contains,
            &[&word, "refund"],
        )],
        1 => vec![pred(
            "message.content",
            Operator::Matches,
            &[&format!(r"\b(order|invoice)\s*#?{i}\d{{3}}\b")],
        )],
        2 => vec![
            pred("conversation.status", Operator::EqualTo, &["open"]),
            pred(
                "conversation.labels",
                Operator::Contains,
                &[&format!("vip{i}")],
            ),
        ],
        3 => vec![Condition {
            kind: Some(condition::Kind::Group(ConditionGroup {
                any: true,
                conditions: vec![
                    pred("contact.country", Operator::EqualTo, &[&format!("c{i}")]),
                    pred("contact.email", Operator::StartsWith, &[&word]),
                ],
            })),
        }],
        _ => vec![
            pred("conversation.priority", Operator::EqualTo, &["urgent"]),
            pred("message.content", Operator::StartsWith, &[&word]),
        ],
    };
    Rule {
        name: format!("rule {i}"),
        active: true,
        event: "message.incoming".into(),
        conditions: Some(ConditionGroup {
            any: false,
            conditions,
        }),
        actions: vec![labels(true, &[&format!("r{i}")])],
        ..Default::default()
    }
}

/// The rule that matches every bench message.
fn marker_rule() -> Rule {
    Rule {
        name: "bench marker".into(),
        active: true,
        event: "message.incoming".into(),
        conditions: Some(ConditionGroup {
            any: false,
            conditions: vec![pred("message.content", Operator::Contains, &[MARK])],
        }),
        actions: vec![labels(true, &["bench"])],
        ..Default::default()
    }
}

fn sample_facts() -> Facts {
    Facts {
        conversation: Some(Conversation {
            id: uuid::Uuid::now_v7().to_string(),
            status: ConversationStatus::Open as i32,
            labels: vec!["new".into(), "web".into()],
            ..Default::default()
        }),
        message: Some(Message {
            kind: MessageKind::Incoming as i32,
            content:
                "Hello, my order 4711 has not arrived yet and I would like to know where it is"
                    .into(),
            ..Default::default()
        }),
        contact: Some(Contact {
            email: "zoe@example.com".into(),
            custom_attributes: [("country".to_string(), "de".to_string())].into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Part 1: every rule against one event, `iterations` times.
fn evaluation(rules: usize, iterations: usize) -> anyhow::Result<String> {
    let mut compiled = Vec::with_capacity(rules);
    for i in 0..rules {
        let mut v = Violations::new();
        let c = compile(&mut v, "rule", &rule(i)).context("a bench rule does not compile")?;
        compiled.push(Arc::new(c));
    }
    let account = AccountRules { rules: compiled };
    let sample = sample_facts();
    let triggers = ["message.created", "message.incoming"];
    let mut micros = Vec::with_capacity(iterations);
    let mut matched = 0usize;
    for _ in 0..iterations {
        // A new event each time (the sample itself is never evaluated, so nothing
        // of it is folded yet).
        let facts = sample.clone();
        let started = Instant::now();
        matched += account.of(&triggers).filter(|r| r.matches(&facts)).count();
        micros.push(started.elapsed().as_micros() as u64);
    }
    micros.sort_unstable();
    anyhow::ensure!(matched == 0, "bench rules are meant not to match");
    Ok(format!(
        "evaluation: {rules} rules against one event, {iterations} times: {} (µs per event, all rules)",
        summary(&micros)
    ))
}

struct Target {
    conversation: String,
    automation: String,
    nats: String,
    root: String,
    secret: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("{}", evaluation(args.rules, args.iterations)?);

    let (_servers, platform, target) = match &args.conversation {
        Some(conversation) => {
            let target = Target {
                conversation: conversation.clone(),
                automation: args.automation.clone().context("--automation")?,
                nats: args.nats.clone().context("--nats")?,
                root: args.root.clone(),
                secret: load::jwt_secret_from_env()?,
            };
            (None, None, target)
        }
        None => {
            let servers = load::own_servers().await?;
            let p = Platform::start_with(1, |c| c.database_max_connections = 30).await;
            let target = Target {
                conversation: p.conversation.url(),
                automation: p.automation.url(),
                nats: p.env.nats_url.clone(),
                root: p.env.subject_root.clone(),
                secret: p.env.jwt_secret.clone(),
            };
            (Some(servers), Some(p), target)
        }
    };
    let place = load::place(args.conversation.as_deref());
    let report = end_to_end(&args, &target).await?;
    println!("end to end ({place}): {report}");
    if let Some(p) = platform {
        p.stop().await;
    }
    Ok(())
}

async fn end_to_end(args: &Args, t: &Target) -> anyhow::Result<String> {
    let account = load::fresh_account("rules");
    let tokens = Tokens::new(&t.secret, &account);
    let admin = tokens.mint("bench-admin", Role::Admin);
    let mut conv = ConversationServiceClient::connect(t.conversation.clone()).await?;
    let inbox = load::create_inbox(&mut conv, &tokens, "Rules").await?;
    // The conversations the events are about.
    let chats: Vec<(Conversation, Contact)> = futures::stream::iter(0..args.chats)
        .map(|i| {
            let (mut conv, key) = (conv.clone(), inbox.public_key.clone());
            async move {
                let started = conv
                    .start_conversation(Request::new(StartConversationRequest {
                        inbox_public_key: key,
                        contact: Some(Contact {
                            name: format!("Customer {i}"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                anyhow::Ok((
                    started.conversation.context("conversation")?,
                    started.contact.context("contact")?,
                ))
            }
        })
        .buffered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    // The rules.
    let automation = AutomationServiceClient::connect(t.automation.clone()).await?;
    let rules: Vec<Rule> = (0..args.rules.saturating_sub(1))
        .map(rule)
        .chain(std::iter::once(marker_rule()))
        .collect();
    let created = futures::stream::iter(rules)
        .map(|r| {
            let (mut client, admin) = (automation.clone(), admin.clone());
            async move {
                client
                    .create_rule(authed(CreateRuleRequest { rule: Some(r) }, &admin))
                    .await
                    .map(|_| ())
            }
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    for c in created {
        c.context("creating a rule")?;
    }

    let nats = async_nats::connect(&t.nats).await?;
    let js = async_nats::jetstream::new(nats.clone());
    // Every run the marker rule makes is announced: that is when an event is done.
    let executed = format!("{}.evt.{account}.automation.rule_executed", t.root);
    let mut sub = nats.subscribe(executed).await?;
    let every = (1.0 / args.acting_share.clamp(0.0001, 1.0))
        .round()
        .max(1.0) as usize;
    let last_round = args.events.saturating_sub(chats.len());
    // Whole rounds (one event of every conversation) act, so each conversation
    // gets its share.
    let rounds = chats.len().max(1);
    let acting = |i: usize| i >= last_round || (i / rounds).is_multiple_of(every);
    let expected = (0..args.events).filter(|i| acting(*i)).count();
    let collector = tokio::spawn(async move {
        let mut seen: HashMap<String, (Instant, i32)> = HashMap::with_capacity(expected);
        while seen.len() < expected {
            match tokio::time::timeout(Duration::from_secs(60), sub.next()).await {
                Ok(Some(msg)) => {
                    if let Ok(e) = RuleExecuted::decode(msg.payload) {
                        let run = e.run.unwrap_or_default();
                        seen.entry(run.event_id)
                            .or_insert((Instant::now(), run.outcome));
                    }
                }
                _ => break,
            }
        }
        seen
    });

    let subject = format!("{}.evt.{account}.{}", t.root, MessageCreated::KIND);
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let mut sent: HashMap<String, Instant> = HashMap::with_capacity(args.events);
    // Acknowledgements are awaited as they come (the client holds only so many).
    let (ack_tx, mut ack_rx) =
        tokio::sync::mpsc::unbounded_channel::<async_nats::jetstream::context::PublishAckFuture>();
    let acker = tokio::spawn(async move {
        let mut pending = futures::stream::FuturesUnordered::new();
        let mut refused = 0usize;
        loop {
            tokio::select! {
                next = ack_rx.recv() => match next {
                    Some(ack) => pending.push(ack.into_future()),
                    None => break,
                },
                Some(done) = pending.next(), if !pending.is_empty() => {
                    refused += usize::from(done.is_err());
                }
            }
        }
        while let Some(done) = pending.next().await {
            refused += usize::from(done.is_err());
        }
        refused
    });
    let first = Instant::now();
    for i in 0..args.events {
        let due = first + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (conversation, contact) = &chats[i % chats.len()];
        let event_id = uuid::Uuid::now_v7().to_string();
        let customer = Actor {
            kind: ActorKind::Contact as i32,
            id: contact.id.clone(),
        };
        let event = MessageCreated {
            meta: Some(EventMeta {
                event_id: event_id.clone(),
                occurred_at: Some(helpdesk_kit::time::to_timestamp(chrono::Utc::now())),
                account_id: account.clone(),
                actor: Some(customer.clone()),
                correlation_id: event_id.clone(),
                ..Default::default()
            }),
            message: Some(Message {
                id: uuid::Uuid::now_v7().to_string(),
                account_id: account.clone(),
                conversation_id: conversation.id.clone(),
                sequence: 1_000 + i as i64,
                kind: MessageKind::Incoming as i32,
                sender: Some(customer),
                content: if acting(i) {
                    format!("Has parcel {i} left yet? {MARK}")
                } else {
                    format!("Has parcel {i} left yet?")
                },
                ..Default::default()
            }),
            conversation: Some(conversation.clone()),
        };
        let mut h = async_nats::HeaderMap::new();
        h.insert(headers::SPECVERSION, "1.0");
        h.insert(headers::ID, event_id.as_str());
        h.insert(headers::TYPE, MessageCreated::full_name().as_str());
        h.insert(headers::SOURCE, "rulebench");
        h.insert(headers::SUBJECT, conversation.id.as_str());
        h.insert(headers::CONTENT_TYPE, "application/protobuf");
        h.insert(headers::NATS_MSG_ID, event_id.as_str());
        let ack = js
            .publish_with_headers(subject.clone(), h, event.encode_to_vec().into())
            .await?;
        if acting(i) {
            sent.insert(event_id, Instant::now());
        }
        let _ = ack_tx.send(ack);
    }
    let published = first.elapsed();
    drop(ack_tx);
    let refused = acker.await?;
    anyhow::ensure!(refused == 0, "the stream refused {refused} events");
    let seen = collector.await?;
    let done = seen.len();
    let failed = seen
        .values()
        .filter(|(_, o)| *o != RunOutcome::Fired as i32)
        .count();
    let last = seen.values().map(|(at, _)| *at).max().unwrap_or(first);
    let mut latencies: Vec<u64> = seen
        .iter()
        .filter_map(|(id, (at, _))| Some(at.duration_since(*sent.get(id)?).as_millis() as u64))
        .collect();
    latencies.sort_unstable();
    let span = last.duration_since(first).as_secs_f64().max(0.001);
    anyhow::ensure!(done > 0, "no rule run was announced");
    anyhow::ensure!(
        done == expected,
        "{done} of {expected} marked events were run within a minute of each other"
    );
    Ok(format!(
        "{} events run against {} rules, {done} of them acted on ({failed} not fired), in {span:.1} s: {:.0} events/s (published at {:.0}/s); latency of the acted-on p50 {} ms, p99 {} ms, max {} ms",
        args.events,
        args.rules,
        args.events as f64 / span,
        args.events as f64 / published.as_secs_f64().max(0.001),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    ))
}
