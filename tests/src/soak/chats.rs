//! The load: each visitor's chat, and what its agents do with it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{
    Contact, ConversationStatus, GetConversationRequest, SendMessageRequest, SetStatusRequest,
    StartConversationRequest,
};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{AcceptTransferRequest, RequestTransferRequest};
use helpdesk_proto::ticketing::v1::CreateTicketFromConversationRequest;
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use tonic::transport::Channel;

use super::{ACCOUNT, PERSIST};
use crate::platform::authed;

/// Clients of every process, spread round robin.
#[derive(Clone)]
pub(super) struct Clients {
    pub(super) conversation: Vec<Channel>,
    pub(super) routing: Vec<Channel>,
    pub(super) ticketing: Vec<Channel>,
    pub(super) keys: JwtKeys,
    pub(super) refused: Arc<std::sync::atomic::AtomicUsize>,
}

impl Clients {
    pub(super) fn token(&self, subject: &str, role: Role) -> String {
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

    pub(super) fn conversation(&self, n: usize) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::new(Self::pick(&self.conversation, n))
    }

    pub(super) fn routing(&self, n: usize) -> RoutingServiceClient<Channel> {
        RoutingServiceClient::new(Self::pick(&self.routing, n))
    }

    pub(super) fn ticketing(&self, n: usize) -> TicketingServiceClient<Channel> {
        TicketingServiceClient::new(Self::pick(&self.ticketing, n))
    }

    /// Runs `call` (given the attempt number, to pick a process) until it is answered
    /// with anything but a refusal (UNAVAILABLE, or no connection), for at most
    /// [`PERSIST`].
    pub(super) async fn persist<T, F, Fut>(&self, mut call: F) -> Result<T, tonic::Status>
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
pub(super) struct Chat {
    pub(super) id: String,
    /// Contents of the messages acknowledged, with when.
    pub(super) acked: Vec<(String, Instant)>,
    pub(super) ticket: Option<String>,
    pub(super) transfer: Option<String>,
}

/// What the load recorded.
#[derive(Default)]
pub(super) struct Recorded {
    pub(super) chats: Vec<Chat>,
    pub(super) not_started: usize,
    pub(super) send_latency_us: Vec<u64>,
    pub(super) assign_latency_us: Vec<u64>,
    pub(super) transfers_accepted: usize,
}

/// One visitor's chat and what its agents do with it.
pub(super) async fn chat(
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
pub(super) async fn assignee(
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
