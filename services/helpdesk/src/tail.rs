//! `helpdesk events tail`: events from the JetStream stream, one JSON object a line in
//! protobuf's canonical JSON mapping, for `jq` and log tools.

use std::io::Write;

use anyhow::Context;
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use helpdesk_kit::bus::headers;
use serde_json::{Map, Value, json};

/// Options of `helpdesk events tail`.
#[derive(clap::Args)]
pub struct TailArgs {
    /// Only these event types (repeatable), e.g. `--type message.created`.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only this account's events.
    #[arg(long)]
    account: Option<String>,
    /// Start with the oldest event the stream keeps (default: only new events).
    #[arg(long, conflicts_with = "since")]
    from_start: bool,
    /// Start with the events since this time (RFC 3339, e.g. 2026-12-01T09:00:00Z) or
    /// this long ago (`90s`, `15m`, `2h`, `1d`).
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// NATS URL (default: HELPDESK_NATS_URL, NATS_URL, the one `helpdesk up` runs, else nats://127.0.0.1:4222).
    #[arg(long)]
    nats_url: Option<String>,
    /// Subject root.
    #[arg(long, env = "HELPDESK_SUBJECT_ROOT", default_value = "helpdesk")]
    root: String,
    /// The events' JetStream stream.
    #[arg(long, env = "HELPDESK_STREAM_NAME", default_value = "HELPDESK_EVENTS")]
    stream: String,
}

/// A start time: RFC 3339, or a duration ago.
fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: give a unit (s, m, h or d) or an RFC 3339 time"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number then s, m, h or d"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: the unit is s, m, h or d")),
    };
    Ok(Utc::now() - chrono::Duration::seconds(seconds))
}

impl TailArgs {
    /// The subjects to read: each type of the account (any account, any type).
    fn subjects(&self) -> Vec<String> {
        let account = self.account.as_deref().unwrap_or("*");
        if self.types.is_empty() {
            vec![format!("{}.evt.{account}.>", self.root)]
        } else {
            self.types
                .iter()
                .map(|t| format!("{}.evt.{account}.{t}", self.root))
                .collect()
        }
    }

    fn deliver(&self) -> DeliverPolicy {
        match (self.from_start, self.since) {
            (true, _) => DeliverPolicy::All,
            (false, Some(start)) => DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    start.timestamp_nanos_opt().unwrap_or_default().into(),
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            },
            (false, None) => DeliverPolicy::New,
        }
    }
}

/// Event kinds (`message.created`) by protobuf full name (`ce-type`).
type Kinds = std::collections::HashMap<String, &'static str>;

/// One event as a JSON line: its type (`message.created`), NATS subject, id, time,
/// account, the aggregate it is about (`ce-subject`), and the event itself (`data`).
fn line(kinds: &Kinds, subject: &str, headers: &async_nats::HeaderMap, payload: &[u8]) -> Value {
    let get = |k: &str| headers.get(k).map(|v| v.as_str()).unwrap_or_default();
    let proto_type = get(headers::TYPE);
    let kind = kinds.get(proto_type).copied().unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), kind.into());
    out.insert("protoType".into(), proto_type.into());
    out.insert("subject".into(), subject.into());
    out.insert("id".into(), get(headers::ID).into());
    out.insert("time".into(), get(headers::TIME).into());
    // `<root>.evt.<account>.<aggregate>.<event>`.
    let account = subject.split('.').nth(2).unwrap_or_default();
    out.insert("account".into(), account.into());
    out.insert("aggregate".into(), get(headers::SUBJECT).into());
    match helpdesk_proto::json::event_json(proto_type, payload) {
        Ok(data) => out.insert("data".into(), data),
        Err(e) => out.insert("error".into(), json!(e)),
    };
    Value::Object(out)
}

/// The NATS URL: `given`, else HELPDESK_NATS_URL, NATS_URL, the server of a running
/// `helpdesk up` with this data folder, else the default local one.
pub fn nats_url(data_dir: &std::path::Path, given: Option<String>) -> String {
    given
        .or_else(|| crate::up::env_any(&["HELPDESK_NATS_URL", "NATS_URL"]))
        .or_else(|| crate::up::private_url(data_dir, crate::up::NATS_URL_FILE))
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
}

/// JetStream on the NATS server [`nats_url`] names (3 s to connect at most).
pub async fn jetstream(
    data_dir: &std::path::Path,
    given: Option<String>,
) -> anyhow::Result<async_nats::jetstream::Context> {
    let url = nats_url(data_dir, given);
    let client = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        async_nats::connect(url.as_str()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{url} did not answer"))?
    .with_context(|| format!("connecting to {url}"))?;
    Ok(async_nats::jetstream::new(client))
}

/// Prints events until Ctrl-C (or until the reader of the output goes away).
pub async fn run(data_dir: &std::path::Path, args: TailArgs) -> anyhow::Result<()> {
    let url = nats_url(data_dir, args.nats_url.clone());
    let js = jetstream(data_dir, Some(url.clone())).await?;
    let stream = js
        .get_stream(&args.stream)
        .await
        .with_context(|| format!("the event stream {} on {url}", args.stream))?;
    let subjects = args.subjects();
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subjects: subjects.clone(),
            deliver_policy: args.deliver(),
            ..Default::default()
        })
        .await
        .context("reading the event stream")?;
    let mut messages = consumer.messages().await?;
    eprintln!("tailing {} on {url} (Ctrl-C to stop)", subjects.join(", "));
    let stop = helpdesk_kit::shutdown::on_signal();
    let stdout = std::io::stdout();
    let kinds: Kinds = helpdesk_proto::catalog()
        .into_iter()
        .map(|e| (e.full_name, e.kind))
        .collect();
    let empty = async_nats::HeaderMap::new();
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => break,
            next = messages.next() => next,
        };
        let msg = match next {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => anyhow::bail!("reading the event stream: {e}"),
            None => break,
        };
        let value = line(
            &kinds,
            &msg.subject,
            msg.headers.as_ref().unwrap_or(&empty),
            &msg.payload,
        );
        let mut out = stdout.lock();
        // A closed pipe (`| head`) ends the tail quietly.
        if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_are_rfc3339_or_a_time_ago() {
        let at = parse_since("2026-12-01T09:00:00Z").expect("rfc 3339");
        assert_eq!(at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        let ago = Utc::now() - parse_since("15m").expect("15 minutes");
        assert!((ago.num_seconds() - 900).abs() <= 1);
        assert!(parse_since("15").is_err());
        assert!(parse_since("3w").is_err());
    }
}
