//! What a visitor says about itself counts only when the customer's own backend
//! vouches for it: an identity hash over the external id, keyed with the inbox's
//! identity secret (computed here with the `hmac` crate, as a backend would).

use helpdesk_kit::grpc::violated_fields;
use helpdesk_proto::conversation::v1::*;
use hmac::Mac;
use tonic::{Code, Request};

use super::support::{TestApp, authed, spawn_app};

fn identity_hash(secret: &str, external_id: &str) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(external_id.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn visitor(inbox: &Inbox, contact: Contact) -> StartConversationRequest {
    StartConversationRequest {
        inbox_public_key: inbox.public_key.clone(),
        contact: Some(contact),
        initial_message: "hello".into(),
        ..Default::default()
    }
}

fn claimed() -> Contact {
    Contact {
        name: "Mallory".into(),
        external_id: "cust-1".into(),
        email: "real@example.com".into(),
        ..Default::default()
    }
}

async fn start(
    app: &TestApp,
    req: StartConversationRequest,
) -> Result<StartConversationResponse, tonic::Status> {
    let mut client = app.client().await;
    client
        .start_conversation(Request::new(req))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn an_unverified_visitor_never_takes_over_a_customers_contact() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    assert_eq!(inbox.identity_secret.len(), 64, "admins get the secret");
    let mut client = app.client().await;
    let as_agent = client
        .get_inbox(authed(
            GetInboxRequest {
                id: inbox.id.clone(),
            },
            &app.agent(),
        ))
        .await
        .expect("get inbox")
        .into_inner();
    assert!(as_agent.identity_secret.is_empty(), "agents do not");

    // The real customer, known to the CRM.
    let real = client
        .upsert_contact(authed(
            UpsertContactRequest {
                contact: Some(Contact {
                    name: "Rita Real".into(),
                    external_id: "cust-1".into(),
                    email: "real@example.com".into(),
                    ..Default::default()
                }),
            },
            &app.admin(),
        ))
        .await
        .expect("upsert")
        .into_inner()
        .contact
        .expect("contact");
    assert!(real.identity_verified);

    // Someone claims that identity from the widget, twice: each gets a contact of its
    // own, marked unverified, and neither is refused (no lock-out, no oracle).
    for _ in 0..2 {
        let started = start(&app, visitor(&inbox, claimed()))
            .await
            .expect("an unverified claim still starts a chat");
        let contact = started.contact.expect("contact");
        assert_ne!(contact.id, real.id);
        assert!(!contact.identity_verified);
        assert_eq!(contact.external_id, "cust-1", "kept, shown as unverified");
    }

    // Staff and integrations still find the real customer by external id and email.
    for (external_id, email) in [("cust-1", ""), ("", "REAL@example.com")] {
        let matched = client
            .upsert_contact(authed(
                UpsertContactRequest {
                    contact: Some(Contact {
                        external_id: external_id.into(),
                        email: email.into(),
                        ..Default::default()
                    }),
                },
                &app.admin(),
            ))
            .await
            .expect("upsert")
            .into_inner();
        assert!(!matched.created);
        assert_eq!(matched.contact.expect("contact").id, real.id);
    }

    // A wrong hash is refused; the right one (from the customer's backend) claims the
    // real contact, whose token then reads its conversations.
    let mut forged = visitor(&inbox, claimed());
    forged.identity_hash = identity_hash("guessed-secret", "cust-1");
    let e = start(&app, forged).await.expect_err("forged hash");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["identity_hash"]);

    let mut signed_in = visitor(
        &inbox,
        Contact {
            external_id: "cust-1".into(),
            custom_attributes: [("vip_level".to_string(), "gold".to_string())].into(),
            ..Default::default()
        },
    );
    signed_in.identity_hash = identity_hash(&inbox.identity_secret, "cust-1");
    signed_in.priority = Priority::High as i32;
    let started = start(&app, signed_in).await.expect("verified visitor");
    let contact = started.contact.expect("contact");
    assert_eq!(contact.id, real.id, "the signed-in customer's own contact");
    assert_eq!(contact.custom_attributes["vip_level"], "gold");
    let listed = client
        .list_conversations(authed(
            ListConversationsRequest::default(),
            &started.visitor_token,
        ))
        .await
        .expect("list as the customer")
        .into_inner();
    assert_eq!(listed.conversations.len(), 1);
    assert_eq!(listed.conversations[0].contact_id, real.id);
}

#[tokio::test]
async fn an_anonymous_visitor_cannot_choose_what_routing_trusts() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let conversations = app.count("conversations").await;
    let anonymous = || visitor(&inbox, Contact::default());

    let mut req = anonymous();
    req.priority = Priority::Urgent as i32;
    req.labels = vec!["vip".into()];
    let e = start(&app, req).await.expect_err("priority and labels");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["priority", "labels"]);

    let mut req = anonymous();
    req.contact = Some(Contact {
        custom_attributes: [("vip_level".to_string(), "gold".to_string())].into(),
        ..Default::default()
    });
    let e = start(&app, req).await.expect_err("contact attributes");
    assert_eq!(violated_fields(&e), vec!["contact.custom_attributes"]);

    let mut req = anonymous();
    req.custom_attributes = [("topic".to_string(), "billing".to_string())].into();
    let e = start(&app, req.clone())
        .await
        .expect_err("not a form field yet");
    assert_eq!(violated_fields(&e), vec!["custom_attributes.topic"]);
    assert_eq!(
        app.count("conversations").await,
        conversations,
        "nothing stored"
    );

    // The inbox's pre-chat form field is accepted.
    let mut client = app.client().await;
    let updated = client
        .update_inbox(authed(
            UpdateInboxRequest {
                inbox: Some(Inbox {
                    id: inbox.id.clone(),
                    visitor_attribute_keys: vec!["topic".into()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["visitor_attribute_keys".into()],
                }),
            },
            &app.admin(),
        ))
        .await
        .expect("update inbox")
        .into_inner();
    assert_eq!(updated.visitor_attribute_keys, vec!["topic"]);
    let started = start(&app, req).await.expect("form field accepted");
    assert_eq!(
        started
            .conversation
            .expect("conversation")
            .custom_attributes["topic"],
        "billing"
    );
}
