//! The platform's gRPC-web endpoints, as a browser reaches them (HTTP/1.1, CORS,
//! `application/grpc-web+proto` framing), with real NATS and PostgreSQL: a visitor
//! starts a chat from another site's page, bad input is refused with its code, and a
//! live stream delivers its messages and ends with its trailers.

use std::time::Duration;

use helpdesk_proto::conversation::v1::{
    Contact, StartConversationRequest, StartConversationResponse,
};
use helpdesk_proto::routing::v1::{GetQueuePositionRequest, Presence, QueuePosition};
use helpdesk_tests::platform::Platform;
use prost::Message;

const ORIGIN: &str = "https://shop.example";

/// A message in a gRPC-web data frame.
fn frame(m: &impl Message) -> Vec<u8> {
    let body = m.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The frames of a gRPC-web response body: its messages, and its trailers as text.
fn frames(mut body: &[u8]) -> (Vec<Vec<u8>>, String) {
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.len() >= 5 {
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let payload = &body[5..5 + len];
        if body[0] & 0x80 == 0 {
            messages.push(payload.to_vec());
        } else {
            trailers.push_str(&String::from_utf8_lossy(payload));
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

fn call(
    http: &reqwest::Client,
    port: u16,
    method: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = http
        .post(format!("http://127.0.0.1:{port}/{method}"))
        .header("origin", ORIGIN)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req
}

#[tokio::test]
async fn a_browser_starts_a_chat_and_watches_its_queue_place_over_grpc_web() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    p.agent("ana", 1, &[], &[]).await;
    let http = reqwest::Client::new();
    const START: &str = "helpdesk.conversation.v1.ConversationService/StartConversation";

    // The browser asks first whether another site's page may call.
    let preflight = http
        .request(
            reqwest::Method::OPTIONS,
            format!("http://127.0.0.1:{}/{START}", p.conversation.port),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        ORIGIN,
        "the page's origin may call"
    );

    let start = StartConversationRequest {
        inbox_public_key: inbox.public_key.clone(),
        contact: Some(Contact {
            name: "Zoe".into(),
            ..Default::default()
        }),
        initial_message: "Hello from the widget".into(),
        ..Default::default()
    };
    let res = call(&http, p.conversation.port, START, frame(&start), None)
        .send()
        .await
        .expect("start");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], ORIGIN);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/grpc-web")
    );
    let (messages, trailers) = frames(&res.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    let started = StartConversationResponse::decode(messages[0].as_slice()).expect("response");
    let chat = started.conversation.expect("conversation").id;
    assert!(!started.visitor_token.is_empty());
    assert_eq!(p.conversation(&chat).await.id, chat, "stored");

    // Bad input: the code and the field, in the headers of a trailers-only answer.
    let bad = StartConversationRequest::default();
    let res = call(&http, p.conversation.port, START, frame(&bad), None)
        .send()
        .await
        .expect("bad start");
    let status = res
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body = res.bytes().await.expect("body");
    let code = status.unwrap_or_else(|| frames(&body).1);
    assert!(code.contains('3'), "INVALID_ARGUMENT, got {code:?}");

    // Nobody is online: the chat waits, and the visitor's page watches its place live,
    // asking at once (routing may not have heard of the chat yet).
    let watch = GetQueuePositionRequest {
        conversation_id: chat.clone(),
    };
    let mut res = call(
        &http,
        p.routers[0].port,
        "helpdesk.routing.v1.RoutingService/WatchQueuePosition",
        frame(&watch),
        Some(&started.visitor_token),
    )
    .send()
    .await
    .expect("watch");
    assert_eq!(res.status(), 200);
    let refused = res.headers().get("grpc-status").cloned();
    let mut body = Vec::new();
    let mut seen: Vec<QueuePosition> = Vec::new();
    let mut agent_online = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .expect("the stream keeps flowing")
            .expect("chunk");
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        let (messages, _) = frames(&body);
        seen = messages
            .iter()
            .map(|m| QueuePosition::decode(m.as_slice()).expect("position"))
            .collect();
        if !agent_online && seen.iter().any(|q| q.position == 1) {
            // The first place arrived while waiting; now an agent comes online.
            p.presence("ana", Presence::Online).await;
            agent_online = true;
        }
    }
    let (_, trailers) = frames(&body);
    assert!(
        agent_online,
        "the waiting place was shown first: {seen:?} {trailers:?} {refused:?}"
    );
    assert_eq!(
        seen.last().map(|q| q.assigned_agent_id.as_str()),
        Some("ana"),
        "the stream ends with the agent: {seen:?}"
    );
    assert!(trailers.contains("grpc-status:0"), "{trailers:?}");
    p.stop().await;
}
