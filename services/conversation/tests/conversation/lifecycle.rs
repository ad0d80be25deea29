//! The lifecycle of an inbox's conversations: a quiet customer is warned and the
//! chat closed, a reply cancels the countdown, stale pending and bot chats are
//! resolved, and every resolution gets its closing line and survey as the inbox says.

use std::time::Duration;

use helpdesk_kit::grpc::violated_fields;
use helpdesk_kit::testing::eventually;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::*;
use tonic::Code;

use super::support::{TestApp, authed, spawn_app};

const WAIT: Duration = Duration::from_secs(20);
const AGENT_BYE: &str = "Glad we could help. This chat is closed now.";
const CUSTOMER_BYE: &str = "You ended the chat. Thanks for writing to us.";

/// An inbox with `lifecycle` and `survey`.
async fn inbox(app: &TestApp, lifecycle: InboxLifecycle, survey: CsatSurvey) -> Inbox {
    let inbox = Inbox {
        name: "Website".into(),
        channel_kind: ChannelKind::WebWidget as i32,
        lifecycle: Some(lifecycle),
        csat_survey: Some(survey),
        ..Default::default()
    };
    app.client()
        .await
        .create_inbox(authed(
            CreateInboxRequest { inbox: Some(inbox) },
            &app.admin(),
        ))
        .await
        .expect("create inbox")
        .into_inner()
}

async fn say(app: &TestApp, token: &str, conversation: &str, text: &str) {
    app.client()
        .await
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conversation.into(),
                content: text.into(),
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("message");
}

async fn resolve(app: &TestApp, token: &str, conversation: &str, skip_survey: bool) {
    app.client()
        .await
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conversation.into(),
                status: ConversationStatus::Resolved as i32,
                skip_survey,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("resolve");
}

/// What the customer reads, as (activity, text), platform lines only.
async fn lines(app: &TestApp, conversation: &str, visitor: &str) -> Vec<(ActivityType, String)> {
    app.client()
        .await
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conversation.into(),
                page_size: 100,
                ..Default::default()
            },
            visitor,
        ))
        .await
        .expect("messages")
        .into_inner()
        .messages
        .into_iter()
        .filter(|m| m.kind == MessageKind::Activity as i32)
        .map(|m| {
            (
                ActivityType::try_from(m.activity).unwrap_or_default(),
                m.content,
            )
        })
        .collect()
}

async fn status(app: &TestApp, conversation: &str) -> Conversation {
    app.client()
        .await
        .get_conversation(authed(
            GetConversationRequest {
                id: conversation.into(),
            },
            &app.agent(),
        ))
        .await
        .expect("get")
        .into_inner()
}

#[tokio::test]
async fn a_quiet_customer_is_warned_then_the_chat_closes_and_a_reply_cancels_it() {
    let app = spawn_app().await;
    let inbox = inbox(
        &app,
        InboxLifecycle {
            inactivity_warning_seconds: 1,
            inactivity_close_seconds: 2,
            warning_message: "Still there? This chat closes in {{minutes}} minute.".into(),
            ..Default::default()
        },
        CsatSurvey {
            enabled: true,
            skip_on_auto_close: true,
            ..Default::default()
        },
    )
    .await;
    let agent = app.agent();
    let quiet = app.visitor_starts(&inbox, "hello").await;
    let (quiet_id, quiet_visitor) = (quiet.conversation.expect("conv").id, quiet.visitor_token);
    let chatty = app.visitor_starts(&inbox, "hello").await;
    let (chatty_id, chatty_visitor) = (chatty.conversation.expect("conv").id, chatty.visitor_token);
    say(&app, &agent, &quiet_id, "How can I help?").await;
    say(&app, &agent, &chatty_id, "How can I help?").await;
    say(
        &app,
        &chatty_visitor,
        &chatty_id,
        "one moment, finding my order number",
    )
    .await;

    let warned = eventually(WAIT, || async {
        let l = lines(&app, &quiet_id, &quiet_visitor).await;
        l.iter()
            .any(|(a, _)| *a == ActivityType::InactivityWarning)
            .then_some(l)
    })
    .await
    .expect("the quiet customer is warned");
    assert!(
        warned.contains(&(
            ActivityType::InactivityWarning,
            "Still there? This chat closes in 1 minute.".into()
        )),
        "{warned:?}"
    );
    let closed = eventually(WAIT, || async {
        let c = status(&app, &quiet_id).await;
        (c.status == ConversationStatus::Resolved as i32).then_some(c)
    })
    .await
    .expect("closed for inactivity");
    assert_eq!(
        closed.status_actor.map(|a| a.kind),
        Some(ActorKind::System as i32)
    );
    let l = lines(&app, &quiet_id, &quiet_visitor).await;
    assert!(
        l.contains(&(
            ActivityType::Closed,
            "This chat was closed because we did not hear from you. Write again any time.".into()
        )),
        "{l:?}"
    );
    // The inbox skips the survey after a close for inactivity.
    assert!(
        !l.iter().any(|(a, _)| *a == ActivityType::CsatSurvey),
        "{l:?}"
    );
    // The customer who answered is neither warned nor closed.
    let l = lines(&app, &chatty_id, &chatty_visitor).await;
    assert!(
        !l.iter().any(|(a, _)| *a == ActivityType::InactivityWarning),
        "{l:?}"
    );
    assert_eq!(
        status(&app, &chatty_id).await.status,
        ConversationStatus::Open as i32
    );
    app.stop().await;
}

#[tokio::test]
async fn each_resolution_gets_its_closing_line_and_one_survey_as_the_inbox_says() {
    let app = spawn_app().await;
    let inbox = inbox(
        &app,
        InboxLifecycle {
            agent_closing_message: AGENT_BYE.into(),
            customer_closing_message: CUSTOMER_BYE.into(),
            pending_close_seconds: 1,
            ..Default::default()
        },
        CsatSurvey {
            enabled: true,
            question: "Rate us from 1 to 5".into(),
            ..Default::default()
        },
    )
    .await;
    let agent = app.agent();
    let survey = (ActivityType::CsatSurvey, "Rate us from 1 to 5".to_string());

    // Staff resolve: their closing line and the survey; resolved again after a
    // reopen: asked again, once per resolution.
    let by_agent = app.visitor_starts(&inbox, "hello").await;
    let (id, visitor) = (
        by_agent.conversation.expect("conv").id,
        by_agent.visitor_token,
    );
    resolve(&app, &agent, &id, false).await;
    assert_eq!(
        lines(&app, &id, &visitor).await,
        vec![(ActivityType::Closed, AGENT_BYE.into()), survey.clone()]
    );
    say(&app, &visitor, &id, "one more thing").await;
    resolve(&app, &agent, &id, false).await;
    let l = lines(&app, &id, &visitor).await;
    assert_eq!(l.iter().filter(|x| **x == survey).count(), 2, "{l:?}");

    // The customer ends it: theirs.
    let by_customer = app.visitor_starts(&inbox, "hello").await;
    let (id, visitor) = (
        by_customer.conversation.expect("conv").id,
        by_customer.visitor_token,
    );
    resolve(&app, &visitor, &id, false).await;
    assert_eq!(
        lines(&app, &id, &visitor).await,
        vec![(ActivityType::Closed, CUSTOMER_BYE.into()), survey.clone()]
    );

    // "Resolve without survey".
    let quiet = app.visitor_starts(&inbox, "hello").await;
    let (id, visitor) = (quiet.conversation.expect("conv").id, quiet.visitor_token);
    resolve(&app, &agent, &id, true).await;
    assert_eq!(
        lines(&app, &id, &visitor).await,
        vec![(ActivityType::Closed, AGENT_BYE.into())]
    );

    // A pending chat nobody writes in is resolved by itself (survey included:
    // this inbox does not skip it after an automatic close).
    let pending = app.visitor_starts(&inbox, "hello").await;
    let (id, visitor) = (
        pending.conversation.expect("conv").id,
        pending.visitor_token,
    );
    app.client()
        .await
        .set_status(authed(
            SetStatusRequest {
                conversation_id: id.clone(),
                status: ConversationStatus::Pending as i32,
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("pending");
    let closed = eventually(WAIT, || async {
        let c = status(&app, &id).await;
        (c.status == ConversationStatus::Resolved as i32).then_some(c)
    })
    .await
    .expect("a stale pending chat is resolved");
    assert_eq!(
        closed.status_actor.map(|a| a.kind),
        Some(ActorKind::System as i32)
    );
    let l = lines(&app, &id, &visitor).await;
    assert!(l.contains(&survey), "{l:?}");
    app.stop().await;
}

#[tokio::test]
async fn bad_lifecycle_settings_are_named() {
    let app = spawn_app().await;
    let err = app
        .client()
        .await
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox {
                    name: "Website".into(),
                    channel_kind: ChannelKind::WebWidget as i32,
                    lifecycle: Some(InboxLifecycle {
                        inactivity_close_seconds: 60,
                        bot_close_seconds: -1,
                        agent_closing_message: "x".repeat(2001),
                        ..Default::default()
                    }),
                    csat_survey: Some(CsatSurvey {
                        enabled: true,
                        only_labels: vec!["not a label".into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &app.admin(),
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        vec![
            "inbox.lifecycle.bot_close_seconds",
            "inbox.lifecycle.inactivity_warning_seconds",
            "inbox.lifecycle.agent_closing_message",
            "inbox.csat_survey.only_labels",
        ]
    );
    assert_eq!(app.count("inboxes").await, 0);
    app.stop().await;
}
