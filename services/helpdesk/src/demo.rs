//! `helpdesk demo`: a visitor and an agent chat over gRPC against a running platform;
//! both sides' views are printed.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use tokio::sync::mpsc;
use tonic::Request;
use tonic::transport::Channel;

/// Options of `helpdesk demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Conversation service address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    conversation: String,
    /// Account to play in.
    #[arg(long, default_value = "demo")]
    account: String,
}

fn authed<T>(msg: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

/// Forwards a Subscribe stream's updates, labelled, into `tx`.
fn watch(
    who: &'static str,
    mut stream: tonic::Streaming<SubscribeResponse>,
    tx: mpsc::UnboundedSender<(&'static str, Update)>,
) {
    tokio::spawn(async move {
        while let Some(Ok(item)) = stream.next().await {
            if let Some(update) = item.update
                && tx.send((who, update)).is_err()
            {
                break;
            }
        }
    });
}

fn line(who: &str, update: &Update) -> Option<String> {
    Some(match update {
        Update::MessageCreated(e) => {
            let m = e.message.as_ref()?;
            let from = m.sender.as_ref().map(|s| s.id.clone()).unwrap_or_default();
            let kind = MessageKind::try_from(m.kind)
                .unwrap_or_default()
                .as_str_name()
                .trim_start_matches("MESSAGE_KIND_")
                .to_lowercase();
            format!("[{who} sees] {kind} message from {from}: {}", m.content)
        }
        Update::ConversationCreated(e) => format!(
            "[{who} sees] new conversation {}",
            e.conversation.as_ref()?.id
        ),
        Update::ConversationStatusChanged(e) => format!(
            "[{who} sees] status {} -> {}",
            ConversationStatus::try_from(e.from)
                .unwrap_or_default()
                .as_str_name(),
            ConversationStatus::try_from(e.to)
                .unwrap_or_default()
                .as_str_name()
        ),
        Update::ConversationUpdated(e) => {
            format!("[{who} sees] conversation updated: {:?}", e.changed_fields)
        }
        Update::Typing(t) => format!(
            "[{who} sees] {} is typing: {}",
            t.actor.as_ref()?.id,
            t.typing
        ),
    })
}

async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<(&'static str, Update)>,
    want: impl Fn(&str, &Update) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some((who, update)) = rx.recv().await {
            if let Some(l) = line(who, &update) {
                println!("{l}");
            }
            if want(who, &update) {
                return Ok(());
            }
        }
        anyhow::bail!("live streams ended")
    })
    .await
    .context("timed out waiting for a live update")?
}

fn is_message(update: &Update, text: &str) -> bool {
    matches!(update, Update::MessageCreated(e) if e.message.as_ref().is_some_and(|m| m.content == text))
}

/// Runs the scripted chat.
pub async fn run(data_dir: &std::path::Path, args: DemoArgs) -> anyhow::Result<()> {
    let keys = JwtKeys::new(crate::secret::load(data_dir)?.as_bytes());
    let admin = keys.mint(&Claims::new(
        &args.account,
        "demo-admin",
        Role::Admin,
        chrono::Duration::hours(1),
    ));
    let agent = keys.mint(&Claims::new(
        &args.account,
        "ana",
        Role::Agent,
        chrono::Duration::hours(1),
    ));
    let mut client: ConversationServiceClient<Channel> =
        ConversationServiceClient::connect(args.conversation.clone())
            .await
            .with_context(|| {
                format!(
                    "connecting to {} (is `helpdesk up` running?)",
                    args.conversation
                )
            })?;

    let inbox = Inbox {
        name: "Demo website".into(),
        channel_kind: ChannelKind::WebWidget as i32,
        greeting_message: "Hi! Ask us anything.".into(),
        ..Default::default()
    };
    let inbox = client
        .create_inbox(authed(CreateInboxRequest { inbox: Some(inbox) }, &admin)?)
        .await?
        .into_inner();
    println!(
        "[admin] created inbox {:?} with public key {}",
        inbox.name, inbox.public_key
    );

    let (tx, mut rx) = mpsc::unbounded_channel();
    let agent_stream = client
        .subscribe(authed(SubscribeRequest::default(), &agent)?)
        .await?
        .into_inner();
    watch("agent", agent_stream, tx.clone());

    let started = client
        .start_conversation(Request::new(StartConversationRequest {
            inbox_public_key: inbox.public_key.clone(),
            contact: Some(Contact {
                name: "Vera".into(),
                ..Default::default()
            }),
            device: Some(DeviceInfo {
                os: "iOS 19".into(),
                app_version: "5.1".into(),
                current_page: "/orders/42".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let conv = started.conversation.context("no conversation returned")?;
    let visitor = started.visitor_token;
    println!(
        "[visitor] started conversation {} (visitor token issued)",
        conv.id
    );
    let visitor_stream = client
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &visitor,
        )?)
        .await?
        .into_inner();
    watch("visitor", visitor_stream, tx);

    let question = "Hi, my parcel #42 hasn't arrived yet.";
    println!("[visitor] says: {question}");
    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: question.into(),
                ..Default::default()
            },
            &visitor,
        )?)
        .await?;
    wait_for(&mut rx, |who, u| who == "agent" && is_message(u, question)).await?;

    client
        .send_typing(authed(
            SendTypingRequest {
                conversation_id: conv.id.clone(),
                typing: true,
            },
            &agent,
        )?)
        .await?;
    let answer = "Sorry about that! It left our warehouse today; you'll have it tomorrow.";
    println!("[agent ana] replies: {answer}");
    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: answer.into(),
                ..Default::default()
            },
            &agent,
        )?)
        .await?;
    wait_for(&mut rx, |who, u| who == "visitor" && is_message(u, answer)).await?;

    println!("[agent ana] resolves the conversation");
    client
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv.id.clone(),
                status: ConversationStatus::Resolved as i32,
                ..Default::default()
            },
            &agent,
        )?)
        .await?;
    wait_for(&mut rx, |who, u| {
        who == "visitor" && matches!(u, Update::ConversationStatusChanged(_))
    })
    .await?;
    let history = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &agent,
        )?)
        .await?
        .into_inner();
    println!("\nTranscript ({} messages):", history.messages.len());
    for m in history.messages {
        println!(
            "  #{} {}: {}",
            m.sequence,
            m.sender.map(|s| s.id).unwrap_or_default(),
            m.content
        );
    }
    println!(
        "\nDemo complete. Events were published on helpdesk.evt.{}.> (see `helpdesk events tail`).",
        args.account
    );
    Ok(())
}
