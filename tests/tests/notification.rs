//! Webhooks across the platform: what the services do reaches an integrator's
//! endpoint signed the Standard Webhooks way, with each event's data in protobuf's own
//! JSON mapping, checked by implementations this platform did not write (the
//! `standardwebhooks` library, and the reference `protobuf` package's json_format).

use std::collections::BTreeSet;
use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::http::{Received, Receiver};
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::Presence;
use helpdesk_proto::ticketing::v1::CreateTicketFromConversationRequest;
use helpdesk_tests::platform::{Platform, authed};

/// Checks every body's `data` against protobuf's own JSON mapping (Python's
/// `google.protobuf.json_format`, from the tools deploy/local/tools installs).
fn check_with_protobuf(received: &[Received]) {
    let python = std::env::var("HELPDESK_TOOLS_PYTHON").unwrap_or_else(|_| {
        panic!("HELPDESK_TOOLS_PYTHON is not set: run the tests through deploy/local/test")
    });
    let names: std::collections::HashMap<&str, String> = helpdesk_proto::catalog()
        .into_iter()
        .map(|e| (e.kind, e.full_name))
        .collect();
    let cases: Vec<serde_json::Value> = received
        .iter()
        .map(|r| {
            let body = r.json();
            let kind = body["type"].as_str().expect("a type");
            serde_json::json!({
                "type": names.get(kind).unwrap_or_else(|| panic!("unknown kind {kind}")),
                "json": body["data"],
            })
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("hd-json-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let descriptors = dir.join("descriptors.bin");
    let cases_file = dir.join("cases.json");
    std::fs::write(&descriptors, helpdesk_proto::FILE_DESCRIPTOR_SET).expect("write");
    std::fs::write(&cases_file, serde_json::to_vec(&cases).expect("json")).expect("write");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/check/protobuf_json.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&descriptors)
        .arg(&cases_file)
        .output()
        .expect("run the protobuf check");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "protobuf's json_format disagrees:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_chat_and_its_ticket_reach_a_webhook_signed_and_in_protobufs_own_json_mapping() {
    let p = Platform::start(1).await;
    let hooks = Receiver::start().await;
    let endpoint = p
        .notifications()
        .await
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: hooks.url.clone(),
                    event_types: vec!["*".into()],
                    description: "CRM sync".into(),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("endpoint")
        .into_inner();

    let team = p.team("Support").await;
    p.agent("ana", 2, &[&team], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, _visitor) = p
        .chat(&inbox, "Hello, my order #1234 is late", &[("plan", "gold")])
        .await;
    p.wait_assigned(&chat, Duration::from_secs(10))
        .await
        .expect("assigned");
    let ticket = p
        .tickets()
        .await
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: chat.clone(),
                request_id: "from-chat-1".into(),
                ..Default::default()
            },
            &p.token("ana", Role::Agent),
        ))
        .await
        .expect("ticket")
        .into_inner();

    // Everything the account did, as the endpoint saw it.
    let wanted = [
        "conversation.created",
        "message.created",
        "routing.assigned",
        "agent.presence_changed",
        "ticket.created",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let received = loop {
        let got = hooks.received();
        let kinds: BTreeSet<String> = got
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
            .collect();
        if wanted.iter().all(|k| kinds.contains(*k)) || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: BTreeSet<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect();
    for k in wanted {
        assert!(kinds.contains(k), "{k} not received; got {kinds:?}");
    }

    // Each request verifies with the Standard Webhooks library, and its id is the
    // event's; no event came twice.
    let webhook = standardwebhooks::Webhook::new(&endpoint.secret).expect("secret");
    let mut ids = BTreeSet::new();
    for r in &received {
        webhook
            .verify(&r.body, &r.headers)
            .unwrap_or_else(|e| panic!("{} does not verify: {e:?}", r.json()["type"]));
        let body = r.json();
        assert_eq!(r.header("webhook-id"), body["data"]["meta"]["eventId"]);
        assert_eq!(body["data"]["meta"]["accountId"], "acme");
        assert!(ids.insert(r.header("webhook-id").to_string()), "sent twice");
    }
    let first_message = received
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "message.created")
        .expect("a message");
    assert_eq!(
        first_message["data"]["message"]["content"],
        "Hello, my order #1234 is late"
    );
    assert_eq!(first_message["data"]["conversation"]["id"], chat.as_str());
    let created = received
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "ticket.created")
        .expect("a ticket");
    assert_eq!(created["data"]["ticket"]["id"], ticket.id.as_str());
    assert_eq!(
        created["data"]["ticket"]["number"],
        ticket.number.to_string()
    );

    check_with_protobuf(&received);
    p.stop().await;
}
