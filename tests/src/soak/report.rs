//! What the soak counted, and the counting.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::http::Receiver;
use helpdesk_kit::testing::smtp::SmtpServer;
use helpdesk_kit::testing::{PrivateNats, PrivatePostgres};
use helpdesk_proto::conversation::v1::{GetConversationRequest, ListMessagesRequest};
use helpdesk_proto::routing::v1::{AssignReason, ConversationAssigned};
use prost::Message as _;

use super::ACCOUNT;
use super::chats::{Clients, Recorded};
use super::fleet::Fleet;
use crate::load::summary;
use crate::platform::authed;

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
    /// What the processes' own metrics counted (summed over them; a killed process's
    /// counts die with it).
    pub metered: Metered,
}

/// Counters read from the processes' `/metrics` at the end.
#[derive(Debug, Default)]
pub struct Metered {
    pub assignments: f64,
    pub transfers_accepted: f64,
    pub rule_runs_fired: f64,
    pub emails_sent: f64,
    pub webhooks_delivered: f64,
    pub calls: f64,
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
        // The metrics tell the same story (automation and notification processes are
        // never killed, so their counts are whole; routing's may have lost a process).
        let m = &self.metered;
        if m.webhooks_delivered != self.webhooks as f64 {
            problems.push(format!(
                "metrics count {} webhooks delivered, the receiver got {}",
                m.webhooks_delivered, self.webhooks
            ));
        }
        if m.rule_runs_fired < self.chats_started as f64 {
            problems.push(format!(
                "metrics count {} rule runs for {} chats",
                m.rule_runs_fired, self.chats_started
            ));
        }
        if m.emails_sent < self.emails as f64 {
            problems.push(format!(
                "metrics count {} emails sent, the SMTP server got {}",
                m.emails_sent, self.emails
            ));
        }
        if self.transfers_accepted > 0
            && (m.transfers_accepted <= 0.0
                || m.transfers_accepted > self.transfers_accepted as f64)
        {
            problems.push(format!(
                "metrics count {} transfers accepted of {}",
                m.transfers_accepted, self.transfers_accepted
            ));
        }
        if m.assignments <= 0.0 || m.calls <= 0.0 {
            problems.push("metrics count no assignments or calls".into());
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
        writeln!(
            f,
            "  message → webhook {}",
            summary(&self.webhook_latency_us)
        )?;
        let m = &self.metered;
        write!(
            f,
            "  metrics     {:.0} calls, {:.0} assignments, {:.0} transfers accepted, {:.0} rule runs fired, {:.0} emails sent, {:.0} webhooks delivered",
            m.calls,
            m.assignments,
            m.transfers_accepted,
            m.rule_runs_fired,
            m.emails_sent,
            m.webhooks_delivered
        )
    }
}

/// The message webhooks received: (webhook-id, content, when).
pub(super) fn message_webhooks(hooks: &Receiver) -> Vec<(String, String, Instant)> {
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
pub(super) fn ticket_mails(smtp: &SmtpServer) -> Vec<String> {
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
pub(super) async fn count(
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

    let metrics = fleet.metrics().await?;
    let total = |name: &str, label: Option<&str>| -> f64 {
        metrics
            .iter()
            .filter(|((n, labels), _)| {
                n == name && label.is_none_or(|l| labels.split(',').any(|x| x == l))
            })
            .map(|(_, v)| v)
            .sum()
    };
    report.metered = Metered {
        assignments: total("helpdesk_assignments_total", None),
        transfers_accepted: total("helpdesk_transfers_total", Some("outcome=accepted")),
        rule_runs_fired: total(
            "helpdesk_rule_runs_total",
            Some("outcome=RUN_OUTCOME_FIRED"),
        ),
        emails_sent: total("helpdesk_email_attempts_total", Some("outcome=sent")),
        webhooks_delivered: total(
            "helpdesk_webhook_attempt_duration_seconds_count",
            Some("outcome=delivered"),
        ),
        calls: total("rpc_server_call_duration_seconds_count", None),
    };
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
