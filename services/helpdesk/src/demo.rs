//! `helpdesk demo`: a visitor and an agent chat over gRPC against a running platform;
//! routing hands the chat to the agent, the agent transfers it to a colleague who
//! accepts, the colleague turns the chat into a ticket and solves it, and both sides'
//! views are printed.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_proto::automation::v1 as automation;
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::{NotificationKind, WatchNotificationsRequest};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{
    AcceptTransferRequest, Agent, CreateAgentRequest, GetAgentRequest, Presence,
    RequestTransferRequest, SetPresenceRequest, WatchTransfersRequest,
};
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use helpdesk_proto::ticketing::v1::{
    CreateTicketFromConversationRequest, GetTranscriptRequest, Ticket, UpdateTicketRequest,
};
use tokio::sync::mpsc;
use tonic::Request;
use tonic::transport::Channel;

/// How long any one step may take.
const STEP: Duration = Duration::from_secs(10);
/// The agent the demo plays.
const AGENT_ID: &str = "ana";
/// The colleague the chat is transferred to.
const COLLEAGUE_ID: &str = "li";

/// Options of `helpdesk demo`.
#[derive(clap::Args)]
pub struct DemoArgs {
    /// Conversation service address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    conversation: String,
    /// Routing service address.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    routing: String,
    /// Ticketing service address.
    #[arg(long, default_value = "http://127.0.0.1:50053")]
    ticketing: String,
    /// Notification service address.
    #[arg(long, default_value = "http://127.0.0.1:50055")]
    notification: String,
    /// Automation service address.
    #[arg(long, default_value = "http://127.0.0.1:50054")]
    automation: String,
    /// Account to play in.
    #[arg(long, default_value = "demo")]
    account: String,
}

/// What the demo's rule tells a customer whose conversation was resolved.
const THANKS: &str = "Thanks for chatting with us! Reply here any time.";

type Updates = mpsc::UnboundedSender<(&'static str, Update)>;

fn authed<T>(msg: T, token: &str) -> anyhow::Result<Request<T>> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(req)
}

/// Runs one call, failing with `what` after [`STEP`].
async fn step<T, F>(what: &str, call: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    tokio::time::timeout(STEP, call)
        .await
        .with_context(|| format!("{what}: no answer within {} s", STEP.as_secs()))?
        .with_context(|| what.to_string())
}

/// Forwards a Subscribe stream's updates, labelled, into `tx`.
fn watch(who: &'static str, mut stream: tonic::Streaming<SubscribeResponse>, tx: Updates) {
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
            let conv = e.conversation.as_ref()?;
            // Only routing changes the assignee.
            if e.changed_fields.iter().any(|f| f == "assignee_id") && !conv.assignee_id.is_empty() {
                format!(
                    "[{who} sees] conversation assigned to {} by routing",
                    conv.assignee_id
                )
            } else {
                format!("[{who} sees] conversation updated: {:?}", e.changed_fields)
            }
        }
        Update::Typing(t) => format!(
            "[{who} sees] {} is typing: {}",
            t.actor.as_ref()?.id,
            t.typing
        ),
    })
}

/// Both sides' live updates, printed as they arrive and kept, so a wait is satisfied
/// by an update that came in while waiting for another. A message reaches a side once
/// even when it comes both from the transcript catch-up and the live stream.
struct Live {
    rx: mpsc::UnboundedReceiver<(&'static str, Update)>,
    seen: Vec<(&'static str, Update)>,
    shown: HashSet<(&'static str, String)>,
}

impl Live {
    /// Prints updates until one satisfies `want`; fails after [`STEP`] naming `what`.
    async fn wait_for(
        &mut self,
        what: &str,
        want: impl Fn(&str, &Update) -> bool,
    ) -> anyhow::Result<()> {
        let Self { rx, seen, shown } = self;
        if seen.iter().any(|(who, u)| want(who, u)) {
            return Ok(());
        }
        tokio::time::timeout(STEP, async {
            while let Some((who, update)) = rx.recv().await {
                if let Update::MessageCreated(e) = &update
                    && let Some(m) = &e.message
                    && !shown.insert((who, m.id.clone()))
                {
                    continue;
                }
                if let Some(l) = line(who, &update) {
                    println!("{l}");
                }
                let hit = want(who, &update);
                seen.push((who, update));
                if hit {
                    return Ok(());
                }
            }
            anyhow::bail!("live streams ended while waiting for {what}")
        })
        .await
        .with_context(|| format!("timed out after {} s waiting for {what}", STEP.as_secs()))?
    }
}

fn is_message(update: &Update, text: &str) -> bool {
    matches!(update, Update::MessageCreated(e) if e.message.as_ref().is_some_and(|m| m.content == text))
}

/// Creates a demo agent in routing, or reuses it, and sets it online; returns it.
async fn ensure_agent(
    routing: &mut RoutingServiceClient<Channel>,
    admin: &str,
    (id, name): (&str, &str),
    token: &str,
) -> anyhow::Result<Agent> {
    let agent = ensure_agent_exists(routing, admin, id, name).await?;
    step(
        &format!("setting {id} online"),
        routing.set_presence(authed(
            SetPresenceRequest {
                agent_id: String::new(),
                presence: Presence::Online as i32,
            },
            token,
        )?),
    )
    .await?;
    println!("[agent {id}] goes online");
    Ok(agent)
}

async fn ensure_agent_exists(
    routing: &mut RoutingServiceClient<Channel>,
    admin: &str,
    id: &str,
    name: &str,
) -> anyhow::Result<Agent> {
    let agent = Agent {
        id: id.into(),
        name: name.into(),
        max_chats: 3,
        ..Default::default()
    };
    let created = tokio::time::timeout(
        STEP,
        routing.create_agent(authed(CreateAgentRequest { agent: Some(agent) }, admin)?),
    )
    .await
    .with_context(|| format!("creating agent {id}: no answer within {} s", STEP.as_secs()))?;
    match created {
        Ok(agent) => {
            let agent = agent.into_inner();
            println!(
                "[admin] created agent {} ({}, up to {} chats) in routing",
                agent.id, agent.name, agent.max_chats
            );
            Ok(agent)
        }
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            let agent = step(
                &format!("reading agent {id}"),
                routing.get_agent(authed(GetAgentRequest { id: id.into() }, admin)?),
            )
            .await?
            .into_inner();
            println!(
                "[admin] agent {} ({}) already exists in routing; reusing it",
                agent.id, agent.name
            );
            Ok(agent)
        }
        Err(status) => Err(status).with_context(|| format!("creating agent {id} in routing")),
    }
}

/// Connects to a service, failing after [`STEP`].
async fn channel(addr: &str) -> anyhow::Result<Channel> {
    tonic::transport::Endpoint::from_shared(addr.to_string())
        .with_context(|| format!("bad address {addr}"))?
        .connect_timeout(STEP)
        .connect()
        .await
        .with_context(|| format!("connecting to {addr} (is `helpdesk up` running?)"))
}

/// Runs the scripted chat.
pub async fn run(data_dir: &std::path::Path, args: DemoArgs) -> anyhow::Result<()> {
    let keys = JwtKeys::new(crate::secret::load(data_dir)?.as_bytes());
    let mint = |subject: &str, role| {
        keys.mint(&Claims::new(
            &args.account,
            subject,
            role,
            chrono::Duration::hours(1),
        ))
    };
    let admin = mint("demo-admin", Role::Admin);
    let agent = mint(AGENT_ID, Role::Agent);
    let colleague = mint(COLLEAGUE_ID, Role::Agent);
    let mut client = ConversationServiceClient::new(channel(&args.conversation).await?);
    let mut routing = RoutingServiceClient::new(channel(&args.routing).await?);
    let mut tickets = TicketingServiceClient::new(channel(&args.ticketing).await?);
    let mut notifications = NotificationServiceClient::new(channel(&args.notification).await?);
    let mut automation = AutomationServiceClient::new(channel(&args.automation).await?);

    let inbox = Inbox {
        name: "Demo website".into(),
        channel_kind: ChannelKind::WebWidget as i32,
        greeting_message: "Hi! Ask us anything.".into(),
        ..Default::default()
    };
    let inbox = step(
        "creating the inbox",
        client.create_inbox(authed(CreateInboxRequest { inbox: Some(inbox) }, &admin)?),
    )
    .await?
    .into_inner();
    println!(
        "[admin] created inbox {:?} with public key {}",
        inbox.name, inbox.public_key
    );

    // A rule of this inbox thanks the customer whenever a conversation is resolved.
    let thanks = automation::Rule {
        name: format!("Thank on close ({})", inbox.name),
        active: true,
        event: "conversation.resolved".into(),
        conditions: Some(automation::ConditionGroup {
            any: false,
            conditions: vec![automation::Condition {
                kind: Some(automation::condition::Kind::Predicate(
                    automation::Predicate {
                        attribute: "conversation.inbox_id".into(),
                        operator: automation::Operator::EqualTo as i32,
                        values: vec![inbox.id.clone()],
                        ..Default::default()
                    },
                )),
            }],
        }),
        actions: vec![automation::Action {
            kind: Some(automation::action::Kind::SendMessage(
                automation::MessageAction {
                    content: THANKS.into(),
                },
            )),
        }],
        ..Default::default()
    };
    let thanks = step(
        "adding an automation rule",
        automation.create_rule(authed(
            automation::CreateRuleRequest { rule: Some(thanks) },
            &admin,
        )?),
    )
    .await?
    .into_inner();
    println!(
        "[admin] added the rule {:?}: when a conversation is resolved, say {THANKS:?}",
        thanks.name
    );

    // Ana exists in routing and is online before any visitor arrives.
    let ana = ensure_agent(&mut routing, &admin, (AGENT_ID, "Ana"), &agent).await?;

    let (tx, rx) = mpsc::unbounded_channel();
    let mut live = Live {
        rx,
        seen: Vec::new(),
        shown: HashSet::new(),
    };
    let agent_stream = step(
        "subscribing as the agent",
        client.subscribe(authed(SubscribeRequest::default(), &agent)?),
    )
    .await?
    .into_inner();
    watch("agent", agent_stream, tx.clone());

    let started = step(
        "starting the conversation",
        client.start_conversation(Request::new(StartConversationRequest {
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
        })),
    )
    .await?
    .into_inner();
    let conv = started.conversation.context("no conversation returned")?;
    let visitor = started.visitor_token;
    println!(
        "[visitor] started conversation {} (visitor token issued)",
        conv.id
    );
    let visitor_stream = step(
        "subscribing as the visitor",
        client.subscribe(authed(
            SubscribeRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &visitor,
        )?),
    )
    .await?
    .into_inner();
    watch("visitor", visitor_stream, tx.clone());
    // Like any client, the visitor catches up with the transcript once subscribed:
    // the greeting, and whatever routing posted before the stream opened.
    let history = step(
        "reading the visitor's transcript",
        client.list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &visitor,
        )?),
    )
    .await?
    .into_inner();
    for m in history.messages {
        let update = Update::MessageCreated(MessageCreated {
            message: Some(m),
            ..Default::default()
        });
        // The receiver lives in `live` until the end.
        let _ = tx.send(("visitor", update));
    }
    drop(tx);

    // Routing hands the chat to Ana; both sides learn it.
    live.wait_for("routing to assign the conversation to ana", |who, u| {
        who == "agent"
            && matches!(u, Update::ConversationUpdated(e)
                if e.conversation.as_ref().is_some_and(|c| c.id == conv.id && c.assignee_id == AGENT_ID))
    })
    .await?;
    let joined = format!("{} joined the conversation", ana.name);
    live.wait_for(&format!("the visitor to see {joined:?}"), |who, u| {
        who == "visitor" && is_message(u, &joined)
    })
    .await?;

    let question = "Hi, my parcel #42 hasn't arrived yet.";
    println!("[visitor] says: {question}");
    step(
        "sending the visitor's message",
        client.send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: question.into(),
                ..Default::default()
            },
            &visitor,
        )?),
    )
    .await?;
    live.wait_for("the agent to see the question", |who, u| {
        who == "agent" && is_message(u, question)
    })
    .await?;

    step(
        "sending the typing indicator",
        client.send_typing(authed(
            SendTypingRequest {
                conversation_id: conv.id.clone(),
                typing: true,
            },
            &agent,
        )?),
    )
    .await?;
    let answer = "Sorry about that! It left our warehouse today; you'll have it tomorrow.";
    println!("[agent ana] replies: {answer}");
    step(
        "sending the agent's reply",
        client.send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: answer.into(),
                ..Default::default()
            },
            &agent,
        )?),
    )
    .await?;
    live.wait_for("the visitor to see the reply", |who, u| {
        who == "visitor" && is_message(u, answer)
    })
    .await?;

    // Ana hands the chat to Li, who sees the offer live and accepts.
    let li = ensure_agent(&mut routing, &admin, (COLLEAGUE_ID, "Li"), &colleague).await?;
    let mut offers = step(
        "watching li's transfers",
        routing.watch_transfers(authed(WatchTransfersRequest::default(), &colleague)?),
    )
    .await?
    .into_inner();
    let mut bell = step(
        "watching li's notifications",
        notifications.watch_notifications(authed(WatchNotificationsRequest {}, &colleague)?),
    )
    .await?
    .into_inner();
    let note = "Parcel #42 is lost; finance approved a refund. Please arrange it.";
    println!("[agent ana] asks li to take over, with a note: {note}");
    let transfer = step(
        "requesting the transfer",
        routing.request_transfer(authed(
            RequestTransferRequest {
                conversation_id: conv.id.clone(),
                to_agent_id: COLLEAGUE_ID.into(),
                note: note.into(),
                ..Default::default()
            },
            &agent,
        )?),
    )
    .await?
    .into_inner();
    let offer = tokio::time::timeout(STEP, offers.message())
        .await
        .context("timed out waiting for li's offer")??
        .context("li's transfer stream ended")?;
    let left =
        offer.deadline.map(|d| d.seconds).unwrap_or_default() - chrono::Utc::now().timestamp();
    println!(
        "[agent li] is offered the conversation by {} ({} s to answer), note: {}",
        offer.from_agent_id, left, offer.note
    );
    // Li's workbench rings: the offer is also one of her notifications.
    let rung = tokio::time::timeout(STEP, async {
        while let Some(update) = bell.message().await? {
            if let Some(n) = update.notification
                && n.kind == NotificationKind::TransferOffer as i32
            {
                return Ok::<_, tonic::Status>(Some((n, update.unread_count)));
            }
        }
        Ok(None)
    })
    .await
    .context("timed out waiting for li's notification")??
    .context("li's notification stream ended")?;
    println!(
        "[li's notifications] {} ({} unread, sound {})",
        rung.0.title,
        rung.1,
        if rung.0.sound { "on" } else { "off" }
    );
    println!("[agent li] accepts");
    step(
        "accepting the transfer",
        routing.accept_transfer(authed(
            AcceptTransferRequest {
                transfer_id: transfer.id,
            },
            &colleague,
        )?),
    )
    .await?;
    let joined = format!("{} joined the conversation", li.name);
    live.wait_for(&format!("the visitor to see {joined:?}"), |who, u| {
        who == "visitor" && is_message(u, &joined)
    })
    .await?;
    let refund = "Hi Vera, Li here. I have arranged your refund; you'll see it within 3 days.";
    println!("[agent li] replies: {refund}");
    step(
        "sending li's reply",
        client.send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: refund.into(),
                ..Default::default()
            },
            &colleague,
        )?),
    )
    .await?;
    live.wait_for("the visitor to see li's reply", |who, u| {
        who == "visitor" && is_message(u, refund)
    })
    .await?;

    // The refund takes a few days: Li turns the chat into a ticket, which carries the
    // whole chat, and the visitor follows it in the same window.
    let ticket = step(
        "turning the chat into a ticket",
        tickets.create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: conv.id.clone(),
                subject: "Refund for lost parcel #42".into(),
                request_id: format!("demo-{}", conv.id),
                ..Default::default()
            },
            &colleague,
        )?),
    )
    .await?
    .into_inner();
    println!(
        "[agent li] turns the chat into ticket #{} ({:?}, requester {}, {} transcript lines kept)",
        ticket.number,
        ticket.subject,
        ticket
            .requester
            .as_ref()
            .map(|r| r.name.as_str())
            .unwrap_or_default(),
        step(
            "reading the ticket's transcript",
            tickets.get_transcript(authed(
                GetTranscriptRequest {
                    ticket_id: ticket.id.clone(),
                },
                &colleague,
            )?),
        )
        .await?
        .into_inner()
        .lines
        .len()
    );
    let created = format!("Ticket #{} created", ticket.number);
    live.wait_for(&format!("the visitor to see {created:?}"), |who, u| {
        who == "visitor" && is_message(u, &created)
    })
    .await?;
    println!(
        "[agent li] solves ticket #{} once the refund is through",
        ticket.number
    );
    step(
        "solving the ticket",
        tickets.update_ticket(authed(
            UpdateTicketRequest {
                ticket: Some(Ticket {
                    id: ticket.id.clone(),
                    status: "solved".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
                etag: ticket.etag.clone(),
            },
            &colleague,
        )?),
    )
    .await?;
    let solved = format!("Your ticket #{} is now: Solved", ticket.number);
    live.wait_for(&format!("the visitor to see {solved:?}"), |who, u| {
        who == "visitor" && is_message(u, &solved)
    })
    .await?;

    println!("[agent li] resolves the conversation");
    step(
        "resolving the conversation",
        client.set_status(authed(
            SetStatusRequest {
                conversation_id: conv.id.clone(),
                status: ConversationStatus::Resolved as i32,
                ..Default::default()
            },
            &colleague,
        )?),
    )
    .await?;
    live.wait_for("the visitor to see the conversation resolved", |who, u| {
        who == "visitor" && matches!(u, Update::ConversationStatusChanged(_))
    })
    .await?;
    live.wait_for("the rule's closing reply", |who, u| {
        who == "visitor" && is_message(u, THANKS)
    })
    .await?;
    println!(
        "[automation] the rule {:?} thanked the customer",
        thanks.name
    );
    let history = step(
        "reading the transcript",
        client.list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &agent,
        )?),
    )
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
