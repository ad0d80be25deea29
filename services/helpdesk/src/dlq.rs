//! `helpdesk dlq`: what did not go through, and what to do with it. Two kinds:
//!
//! - **dead letters**: events a service's consumer gave up on, in `<stream>_DLQ`
//!   under `<root>.dlq.<consumer>`, named by their sequence there (`17`);
//! - **parked events**: events NATS refused for good, moved out of a service's outbox
//!   into its `outbox_parked` table, named `<service>/<id>` (`routing/42`).
//!
//! `replay` sends a dead letter again on its original subject (with its `ce-id`, so
//! consumers that already applied it skip it) or puts a parked event back in its
//! outbox; `discard` drops it. Either way it leaves the list.

use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use helpdesk_kit::bus::headers;
use serde::Serialize;
use sqlx::Row;

/// Options shared by the `dlq` subcommands.
#[derive(clap::Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
    /// PostgreSQL URL, for parked events (default: HELPDESK_DATABASE_URL,
    /// DATABASE_URL, else the private server of a running `helpdesk up`).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// NATS URL (default: HELPDESK_NATS_URL, NATS_URL, the one `helpdesk up` runs, else nats://127.0.0.1:4222).
    #[arg(long, global = true)]
    nats_url: Option<String>,
    /// The events' JetStream stream (dead letters are in `<stream>_DLQ`).
    #[arg(
        long,
        global = true,
        env = "HELPDESK_STREAM_NAME",
        default_value = "HELPDESK_EVENTS"
    )]
    stream: String,
    /// Subject root (parked events are shown on their full subject).
    #[arg(
        long,
        global = true,
        env = "HELPDESK_SUBJECT_ROOT",
        default_value = "helpdesk"
    )]
    root: String,
}

#[derive(clap::Subcommand)]
enum DlqCommand {
    /// Lists dead letters and parked events.
    List {
        /// Only this consumer's dead letters and this service's parked events.
        #[arg(long)]
        consumer: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Prints one, with its event in protobuf's JSON mapping.
    Show {
        /// `17` (a dead letter) or `routing/42` (a parked event).
        id: String,
    },
    /// Sends them again.
    Replay(Pick),
    /// Drops them.
    Discard(Pick),
}

/// Which entries a `replay` or `discard` acts on.
#[derive(clap::Args)]
struct Pick {
    /// Entries by id (`17`, `routing/42`).
    ids: Vec<String>,
    /// Every entry (of `--consumer`, when given).
    #[arg(long, conflicts_with = "ids")]
    all: bool,
    /// With `--all`: only this consumer's / service's entries.
    #[arg(long, requires = "all")]
    consumer: Option<String>,
}

/// One dead letter or parked event.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// `17` or `routing/42`.
    id: String,
    /// `consumer` (a dead letter) or `outbox` (a parked event).
    source: &'static str,
    /// The consumer that gave up, or the service whose outbox parked it.
    owner: String,
    /// The event's protobuf type (`ce-type`).
    proto_type: String,
    /// Its subject.
    subject: String,
    event_id: String,
    /// When it was dead-lettered or parked (RFC 3339; for dead letters, the event's time).
    time: String,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

/// What `dlq` works with.
struct Stores {
    root: String,
    dlq: Stream,
    js: async_nats::jetstream::Context,
    db: Option<sqlx::PgPool>,
    db_error: Option<String>,
}

/// Runs a `dlq` subcommand.
pub async fn run(data_dir: &std::path::Path, args: DlqArgs) -> anyhow::Result<()> {
    let js = crate::tail::jetstream(data_dir, args.nats_url.clone()).await?;
    let dlq = js
        .get_stream(format!("{}_DLQ", args.stream))
        .await
        .with_context(|| format!("the dead-letter stream {}_DLQ", args.stream))?;
    let (db, db_error) = match crate::status::database(data_dir, args.database_url.clone()).await {
        Ok(pool) => (Some(pool), None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let stores = Stores {
        root: args.root.clone(),
        dlq,
        js,
        db,
        db_error,
    };
    match args.command {
        DlqCommand::List { consumer, json } => {
            let entries = stores.list(consumer.as_deref()).await?;
            for e in &entries {
                if json {
                    println!("{}", serde_json::to_string(e)?);
                } else {
                    println!(
                        "{:<14} {:<8} {:<13} {:<45} {}  {}",
                        e.id, e.source, e.owner, e.proto_type, e.time, e.reason
                    );
                }
            }
            if !json && entries.is_empty() {
                println!("nothing dead-lettered or parked");
            }
            if let Some(e) = &stores.db_error {
                eprintln!("parked events not read: {e}");
            }
        }
        DlqCommand::Show { id } => {
            let entry = stores.get(&id).await?;
            println!("{}", serde_json::to_string_pretty(&entry)?);
        }
        DlqCommand::Replay(pick) => {
            for id in stores.pick(pick).await? {
                stores.replay(&id).await?;
                println!("replayed {id}");
            }
        }
        DlqCommand::Discard(pick) => {
            for id in stores.pick(pick).await? {
                stores.discard(&id).await?;
                println!("discarded {id}");
            }
        }
    }
    Ok(())
}

/// A parked event's id: `<service>/<row id>`.
fn parked_id(id: &str) -> Option<(&'static str, i64)> {
    let (service, row) = id.split_once('/')?;
    let service = crate::up::services()
        .into_iter()
        .map(|e| e.name)
        .find(|s| *s == service)?;
    Some((service, row.parse().ok()?))
}

fn header(h: Option<&HeaderMap>, name: &str) -> String {
    h.and_then(|h| h.get(name))
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

impl Stores {
    fn db(&self) -> anyhow::Result<&sqlx::PgPool> {
        self.db.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "parked events need PostgreSQL: {}",
                self.db_error.as_deref().unwrap_or_default()
            )
        })
    }

    /// Every dead letter (of one consumer) and parked event (of one service).
    async fn list(&self, only: Option<&str>) -> anyhow::Result<Vec<Entry>> {
        let mut out = self.dead_letters(only).await?;
        if let Some(db) = &self.db {
            for entry in crate::up::services() {
                if only.is_some_and(|o| o != entry.name) {
                    continue;
                }
                out.extend(parked(db, &self.root, entry.name, None).await?);
            }
        }
        Ok(out)
    }

    async fn dead_letters(&self, only: Option<&str>) -> anyhow::Result<Vec<Entry>> {
        let mut dlq = self.dlq.clone();
        if dlq.info().await?.state.messages == 0 {
            return Ok(Vec::new());
        }
        let root_filter = match only {
            Some(c) => format!("*.dlq.{c}"),
            None => "*.dlq.*".to_string(),
        };
        let consumer = self
            .dlq
            .create_consumer(OrderedConfig {
                filter_subject: root_filter,
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        let mut stream = consumer.messages().await?;
        let mut out = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(2), stream.next()).await;
            let Ok(Some(Ok(msg))) = next else { break };
            let info = msg.info().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (seq, pending) = (info.stream_sequence, info.pending);
            out.push(dead_letter_entry(
                seq,
                msg.headers.as_ref(),
                &msg.payload,
                false,
            ));
            if pending == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// One entry, with its event.
    async fn get(&self, id: &str) -> anyhow::Result<Entry> {
        if let Some((service, row)) = parked_id(id) {
            return parked(self.db()?, &self.root, service, Some(row))
                .await?
                .pop()
                .with_context(|| format!("no parked event {id}"));
        }
        let seq: u64 = id.parse().with_context(|| {
            format!("{id:?} is neither a dead letter (17) nor a parked event (routing/42)")
        })?;
        let msg = self
            .dlq
            .get_raw_message(seq)
            .await
            .with_context(|| format!("no dead letter {id}"))?;
        Ok(dead_letter_entry(
            seq,
            Some(&msg.headers),
            &msg.payload,
            true,
        ))
    }

    /// The ids `pick` names (checked to exist).
    async fn pick(&self, pick: Pick) -> anyhow::Result<Vec<String>> {
        if pick.all {
            return Ok(self
                .list(pick.consumer.as_deref())
                .await?
                .into_iter()
                .map(|e| e.id)
                .collect());
        }
        anyhow::ensure!(!pick.ids.is_empty(), "name the entries, or --all");
        for id in &pick.ids {
            self.get(id).await?;
        }
        Ok(pick.ids)
    }

    async fn replay(&self, id: &str) -> anyhow::Result<()> {
        if let Some((service, row)) = parked_id(id) {
            let mut tx = self.db()?.begin().await?;
            let moved = sqlx::query(&format!(
                "WITH p AS (DELETE FROM {service}.outbox_parked WHERE id = $1 RETURNING *)
                 INSERT INTO {service}.outbox
                     (event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at)
                 SELECT event_id, subject, event_type, ce_subject, payload, traceparent, tracestate, occurred_at FROM p"
            ))
            .bind(row)
            .execute(&mut *tx)
            .await?;
            anyhow::ensure!(moved.rows_affected() == 1, "no parked event {id}");
            tx.commit().await?;
            return Ok(());
        }
        let seq: u64 = id.parse()?;
        let msg = self.dlq.get_raw_message(seq).await?;
        let original = header(Some(&msg.headers), headers::DLQ_SUBJECT);
        anyhow::ensure!(
            !original.is_empty(),
            "dead letter {id} has no original subject"
        );
        let mut h = HeaderMap::new();
        for (name, values) in msg.headers.iter() {
            let name: &str = name.as_ref();
            if name.starts_with("helpdesk-dlq-") {
                continue;
            }
            for v in values {
                h.append(name, v.as_str());
            }
        }
        // A fresh message id: the stream's de-duplication window would drop the
        // event's own; `ce-id` stays, so consumers that applied it skip it.
        h.insert(
            headers::NATS_MSG_ID,
            format!("{}:replay:{seq}", header(Some(&msg.headers), headers::ID)).as_str(),
        );
        self.js
            .publish_with_headers(original, h, msg.payload.clone())
            .await?
            .await
            .context("publishing the replay")?;
        self.dlq.delete_message(seq).await?;
        Ok(())
    }

    async fn discard(&self, id: &str) -> anyhow::Result<()> {
        if let Some((service, row)) = parked_id(id) {
            let gone = sqlx::query(&format!(
                "DELETE FROM {service}.outbox_parked WHERE id = $1"
            ))
            .bind(row)
            .execute(self.db()?)
            .await?;
            anyhow::ensure!(gone.rows_affected() == 1, "no parked event {id}");
            return Ok(());
        }
        let seq: u64 = id.parse()?;
        self.dlq.delete_message(seq).await?;
        Ok(())
    }
}

fn dead_letter_entry(seq: u64, h: Option<&HeaderMap>, payload: &[u8], with_data: bool) -> Entry {
    let proto_type = header(h, headers::TYPE);
    Entry {
        id: seq.to_string(),
        source: "consumer",
        owner: header(h, headers::DLQ_CONSUMER),
        subject: header(h, headers::DLQ_SUBJECT),
        event_id: header(h, headers::ID),
        time: header(h, headers::TIME),
        reason: header(h, headers::DLQ_REASON),
        data: with_data.then(|| event_data(&proto_type, payload)),
        proto_type,
    }
}

fn event_data(proto_type: &str, payload: &[u8]) -> serde_json::Value {
    helpdesk_proto::json::event_json(proto_type, payload)
        .unwrap_or_else(|e| serde_json::json!({ "error": e }))
}

/// A service's parked events (or one of them); the outbox keeps subjects below
/// `<root>.evt.`.
async fn parked(
    db: &sqlx::PgPool,
    root: &str,
    service: &'static str,
    only: Option<i64>,
) -> anyhow::Result<Vec<Entry>> {
    let rows = sqlx::query(&format!(
        "SELECT id, event_id::text, subject, event_type, payload,
                to_char(parked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), reason
           FROM {service}.outbox_parked WHERE $1::bigint IS NULL OR id = $1 ORDER BY id"
    ))
    .bind(only)
    .fetch_all(db)
    .await
    .with_context(|| format!("the {service} parked events"))?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            let proto_type: String = r.try_get(3)?;
            let payload: Vec<u8> = r.try_get(4)?;
            Ok(Entry {
                id: format!("{service}/{id}"),
                source: "outbox",
                owner: service.to_string(),
                event_id: r.try_get(1)?,
                subject: format!("{root}.evt.{}", r.try_get::<String, _>(2)?),
                data: only.map(|_| event_data(&proto_type, &payload)),
                proto_type,
                time: r.try_get(5)?,
                reason: r.try_get(6)?,
            })
        })
        .collect()
}
