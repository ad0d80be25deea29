//! `helpdesk events tail`: live events, decoded from protobuf by their `ce-type`.

use futures::StreamExt;
use helpdesk_kit::bus::headers;

/// Options of `helpdesk events tail`.
#[derive(clap::Args)]
pub struct TailArgs {
    /// Subject filter below `<root>.evt.`, e.g. `acme.>` or `*.message.created`.
    #[arg(default_value = ">")]
    filter: String,
    /// NATS URL (default: HELPDESK_NATS_URL, NATS_URL, the one `helpdesk up` runs, else nats://127.0.0.1:4222).
    #[arg(long)]
    nats_url: Option<String>,
    /// Subject root.
    #[arg(long, env = "HELPDESK_SUBJECT_ROOT", default_value = "helpdesk")]
    root: String,
}

/// Renders an event body of a known type.
pub fn describe(ce_type: &str, body: &[u8]) -> String {
    match helpdesk_proto::catalog()
        .into_iter()
        .find(|e| e.full_name == ce_type)
    {
        Some(entry) => (entry.describe)(body).unwrap_or_else(|e| format!("<undecodable: {e}>")),
        None => format!("<{} bytes of {ce_type}>", body.len()),
    }
}

/// Prints events until interrupted.
pub async fn run(data_dir: &std::path::Path, args: TailArgs) -> anyhow::Result<()> {
    let url = args
        .nats_url
        .or_else(|| std::env::var("HELPDESK_NATS_URL").ok())
        .or_else(|| std::env::var("NATS_URL").ok())
        .or_else(|| {
            std::fs::read_to_string(data_dir.join("nats-url"))
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(url.as_str()).await?;
    let subject = format!("{}.evt.{}", args.root, args.filter);
    let mut sub = client.subscribe(subject.clone()).await?;
    client.flush().await?;
    eprintln!("tailing {subject} on {url} (Ctrl-C to stop)");
    while let Some(msg) = sub.next().await {
        let get = |k: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        let ce_type = get(headers::TYPE);
        println!(
            "{} {} {}\n  {}",
            get(headers::TIME),
            msg.subject,
            ce_type,
            describe(&ce_type, &msg.payload)
        );
    }
    Ok(())
}
