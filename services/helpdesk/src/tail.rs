//! `helpdesk events tail`: live events, decoded from protobuf by their `ce-type`.

use futures::StreamExt;
use helpdesk_kit::bus::headers;
use helpdesk_proto::conversation::v1 as conversation;
use helpdesk_proto::routing::v1 as routing;
use prost::Message;

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
    fn show<M: Message + Default + std::fmt::Debug>(body: &[u8]) -> String {
        match M::decode(body) {
            Ok(m) => format!("{m:?}"),
            Err(e) => format!("<undecodable: {e}>"),
        }
    }
    match ce_type {
        "helpdesk.conversation.v1.ConversationCreated" => {
            show::<conversation::ConversationCreated>(body)
        }
        "helpdesk.conversation.v1.ConversationUpdated" => {
            show::<conversation::ConversationUpdated>(body)
        }
        "helpdesk.conversation.v1.ConversationStatusChanged" => {
            show::<conversation::ConversationStatusChanged>(body)
        }
        "helpdesk.conversation.v1.ConversationRated" => {
            show::<conversation::ConversationRated>(body)
        }
        "helpdesk.conversation.v1.MessageCreated" => show::<conversation::MessageCreated>(body),
        "helpdesk.conversation.v1.ContactCreated" => show::<conversation::ContactCreated>(body),
        "helpdesk.conversation.v1.ContactUpdated" => show::<conversation::ContactUpdated>(body),
        "helpdesk.routing.v1.ConversationQueued" => show::<routing::ConversationQueued>(body),
        "helpdesk.routing.v1.QueuePositionChanged" => show::<routing::QueuePositionChanged>(body),
        "helpdesk.routing.v1.ConversationAssigned" => show::<routing::ConversationAssigned>(body),
        "helpdesk.routing.v1.ConversationUnassigned" => {
            show::<routing::ConversationUnassigned>(body)
        }
        "helpdesk.routing.v1.ConversationOverflowed" => {
            show::<routing::ConversationOverflowed>(body)
        }
        "helpdesk.routing.v1.AgentPresenceChanged" => show::<routing::AgentPresenceChanged>(body),
        other => format!("<{} bytes of {other}>", body.len()),
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
