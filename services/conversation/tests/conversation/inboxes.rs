//! Inbox events: other services and integrators learn of every inbox, never of its
//! identity secret.

use std::time::Duration;

use helpdesk_proto::conversation::v1::*;
use prost::Message as _;

use super::support::{ACCOUNT, authed, spawn_app, spawn_app_in, stream_events};

#[tokio::test]
async fn inboxes_are_announced_once_without_their_secret() {
    let app = spawn_app().await;
    let inbox = app.inbox("Hi!", ReopenPolicy::Reopen).await;
    assert!(
        !inbox.identity_secret.is_empty(),
        "the admin sees the secret"
    );
    let created = stream_events(&app.env, &format!("{ACCOUNT}.inbox.created"), 1).await;
    let event = InboxCreated::decode(created[0].payload.clone()).expect("decode");
    let announced = event.inbox.expect("inbox");
    assert_eq!(
        (announced.id.as_str(), announced.name.as_str()),
        (inbox.id.as_str(), inbox.name.as_str())
    );
    assert_eq!(announced.identity_secret, "", "never in an event");

    let mut client = app.client().await;
    client
        .update_inbox(authed(
            UpdateInboxRequest {
                inbox: Some(Inbox {
                    id: inbox.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["identity_secret".into()],
                }),
            },
            &app.admin(),
        ))
        .await
        .expect("rotate the secret");
    let updated = stream_events(&app.env, &format!("{ACCOUNT}.inbox.updated"), 1).await;
    let event = InboxUpdated::decode(updated[0].payload.clone()).expect("decode");
    assert_eq!(event.changed_fields, ["identity_secret"]);
    assert_eq!(event.inbox.expect("inbox").identity_secret, "");

    // An inbox from before `inbox.created` existed is announced once, at the next start.
    sqlx::query("UPDATE inboxes SET announced = false WHERE id = $1::uuid")
        .bind(&inbox.id)
        .execute(&app.pool)
        .await
        .expect("as if it predated the event");
    let app = spawn_app_in(app.stop().await).await;
    let created = stream_events(&app.env, &format!("{ACCOUNT}.inbox.created"), 2).await;
    assert_eq!(created.len(), 2, "announced at start");
    let app = spawn_app_in(app.stop().await).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let created = stream_events(&app.env, &format!("{ACCOUNT}.inbox.created"), 2).await;
    assert_eq!(created.len(), 2, "not again at the next start");
    app.stop().await;
}

#[tokio::test]
async fn the_widget_reads_an_inbox_public_face_with_its_key_alone() {
    let app = spawn_app().await;
    let inbox = app
        .inbox("Welcome to the shop!", ReopenPolicy::Reopen)
        .await;
    let mut client = app.client().await;
    client
        .update_inbox(authed(
            UpdateInboxRequest {
                inbox: Some(Inbox {
                    id: inbox.id.clone(),
                    visitor_attribute_keys: vec!["order_number".into()],
                    csat_survey: Some(CsatSurvey {
                        enabled: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["visitor_attribute_keys".into(), "csat_survey".into()],
                }),
            },
            &app.admin(),
        ))
        .await
        .expect("pre-chat field and survey");

    // No token: the key is on every page that embeds the widget.
    let settings = client
        .get_widget_settings(GetWidgetSettingsRequest {
            inbox_public_key: inbox.public_key.clone(),
        })
        .await
        .expect("public")
        .into_inner();
    assert_eq!(settings.inbox_name, inbox.name);
    assert_eq!(settings.greeting_message, "Welcome to the shop!");
    assert_eq!(settings.pre_chat_fields, ["order_number"]);
    assert!(settings.csat_enabled);
    assert!(!settings.csat_question.is_empty(), "the default question");
    assert!(!settings.has_bot);

    let unknown = client
        .get_widget_settings(GetWidgetSettingsRequest {
            inbox_public_key: "no-such-key".into(),
        })
        .await
        .expect_err("unknown key");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let empty = client
        .get_widget_settings(GetWidgetSettingsRequest::default())
        .await
        .expect_err("no key");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert!(empty.message().contains("inbox_public_key"));
}
