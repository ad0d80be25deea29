//! Email end to end: ticket events mail the requester through a real SMTP server
//! started by the test, and the messages are parsed back with a MIME parser.

use std::time::Duration;

use helpdesk_kit::testing::smtp::SmtpServer;
use helpdesk_kit::testing::{eventually, stream_events};
use helpdesk_notification::NotificationSettings;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::notification::v1::*;
use helpdesk_proto::ticketing::v1::{
    Comment, Requester, Ticket, TicketCommentAdded, TicketCreated, TicketStatusChanged,
};
use mail_parser::{HeaderValue, MessageParser};
use tonic::Code;

use super::{Setup, authed, fast};

fn mail_settings(smtp: &SmtpServer) -> NotificationSettings {
    NotificationSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: smtp.port,
        smtp_tls: "none".into(),
        smtp_timeout_ms: 5_000,
        email_from: "Acme Support <support@acme.test>".into(),
        email_retry_schedule_seconds: vec![0.0, 0.3, 0.3],
        poll_interval_ms: 100,
        ..fast()
    }
}

fn ticket(id: &str, number: i64, status: &str) -> Ticket {
    Ticket {
        id: id.into(),
        number,
        subject: "Printer on fire".into(),
        external_status_label: status.into(),
        requester: Some(Requester {
            name: "Jo Customer".into(),
            email: "jo@example.com".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A header's text, as the parser reads it.
fn header(m: &mail_parser::Message<'_>, name: &str) -> String {
    match m.header(name) {
        Some(HeaderValue::Text(t)) => t.to_string(),
        Some(HeaderValue::TextList(l)) => l.join(" "),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

async fn emails(s: &Setup) -> Vec<Email> {
    s.client()
        .await
        .list_emails(authed(ListEmailsRequest::default(), &s.admin))
        .await
        .expect("list emails")
        .into_inner()
        .emails
}

#[tokio::test]
async fn a_tickets_life_mails_its_requester_in_one_thread() {
    let smtp = SmtpServer::start().await;
    let mut s = Setup::start(mail_settings(&smtp)).await;
    let id = uuid::Uuid::now_v7().to_string();
    s.emit(
        "acme",
        TicketCreated {
            ticket: Some(ticket(&id, 12, "Open")),
            ..Default::default()
        },
    )
    .await;
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["jo@example.com"]);
    assert_eq!(got[0].from, "support@acme.test");
    let created = MessageParser::default()
        .parse(&got[0].data)
        .expect("a MIME message");
    assert_eq!(created.subject(), Some("[#12] Printer on fire"));
    let root = format!("ticket-{id}@acme.test");
    assert_eq!(created.message_id(), Some(root.as_str()));
    assert_eq!(header(&created, "Auto-Submitted"), "auto-replied");
    let from = created.from().and_then(|a| a.first()).expect("a sender");
    assert_eq!(from.name(), Some("Acme Support"));
    assert!(
        created
            .body_text(0)
            .expect("a text part")
            .contains("We received your request #12")
    );
    assert!(
        created
            .body_html(0)
            .expect("an HTML part")
            .contains("<p>Hello Jo Customer,</p>")
    );

    // An agent answers and solves in one go: the reply and the status change both go.
    let agent = Actor {
        kind: ActorKind::Agent as i32,
        id: "ana".into(),
    };
    s.emit(
        "acme",
        TicketCommentAdded {
            ticket: Some(ticket(&id, 12, "Open")),
            comment: Some(Comment {
                author: Some(agent.clone()),
                body: "We sent a technician <today>.".into(),
                public: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    s.emit(
        "acme",
        TicketStatusChanged {
            ticket: Some(ticket(&id, 12, "Solved")),
            external_changed: true,
            ..Default::default()
        },
    )
    .await;
    // An internal note never reaches the customer.
    s.emit(
        "acme",
        TicketCommentAdded {
            ticket: Some(ticket(&id, 12, "Solved")),
            comment: Some(Comment {
                author: Some(agent),
                body: "customer was rude".into(),
                public: false,
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    let got = smtp.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3);
    let parsed: Vec<_> = got[1..]
        .iter()
        .map(|m| MessageParser::default().parse(&m.data).expect("MIME"))
        .collect();
    let reply = parsed
        .iter()
        .find(|m| m.subject() == Some("Re: [#12] Printer on fire"))
        .expect("the reply");
    assert!(
        reply
            .body_text(0)
            .expect("text")
            .contains("We sent a technician <today>.")
    );
    assert!(
        reply
            .body_html(0)
            .expect("html")
            .contains("We sent a technician &lt;today&gt;.")
    );
    assert_eq!(
        header(reply, "Auto-Submitted"),
        "",
        "an agent's reply is not automatic"
    );
    let status = parsed
        .iter()
        .find(|m| m.subject() == Some("[#12] Printer on fire: Solved"))
        .expect("the status change");
    assert_eq!(header(status, "Auto-Submitted"), "auto-generated");
    for m in &parsed {
        assert_eq!(header(m, "In-Reply-To"), root, "threaded under the first");
        assert!(header(m, "References").contains(&root));
    }

    // Recorded as sent once the server took them, each after one attempt.
    let log = eventually(Duration::from_secs(10), || async {
        let log = emails(&s).await;
        log.iter()
            .all(|e| e.status == EmailStatus::Sent as i32)
            .then_some(log)
    })
    .await
    .expect("all recorded as sent");
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|e| e.attempts == 1 && e.sent_time.is_some()));
    // Kept for the retention, then forgotten (nothing is old enough yet).
    let pool = &s.service.pool;
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    let forgotten = helpdesk_notification::store::emails::delete_finished(pool, an_hour_ago, 10)
        .await
        .expect("retention");
    assert_eq!(forgotten, 0);
    // A restart sends nothing again.
    s.restart(mail_settings(&smtp)).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(smtp.mails().len(), 3);
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    let forgotten =
        helpdesk_notification::store::emails::delete_finished(&s.service.pool, later, 10)
            .await
            .expect("retention");
    assert_eq!(forgotten, 3);
    assert!(emails(&s).await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn temporary_failures_are_retried_and_refusals_fail_once_with_an_event() {
    let smtp = SmtpServer::start().await;
    let s = Setup::start(mail_settings(&smtp)).await;
    smtp.fail_next(["451 4.3.0 mailbox busy, try again"]);
    s.emit(
        "acme",
        TicketCreated {
            ticket: Some(ticket(&uuid::Uuid::now_v7().to_string(), 1, "Open")),
            ..Default::default()
        },
    )
    .await;
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let sent = eventually(Duration::from_secs(10), || async {
        emails(&s)
            .await
            .into_iter()
            .find(|e| e.status == EmailStatus::Sent as i32)
    })
    .await
    .expect("sent after a retry");
    assert_eq!(sent.attempts, 2);

    // A refusal for good is not retried.
    smtp.fail_next(["550 5.1.1 no such user"]);
    let bus = helpdesk_kit::bus::Bus::connect(&s.env.service_config(), "test")
        .await
        .expect("bus");
    let request = SendEmailRequest {
        account_id: "acme".into(),
        idempotency_key: "rule-3:event-9".into(),
        kind: EmailKind::TeamAlert as i32,
        to: vec!["nobody@example.com".into()],
        subject: "Queue overflowing".into(),
        variables: [("body".to_string(), "12 chats waiting".to_string())].into(),
        ..Default::default()
    };
    let first = helpdesk_kit::command::call(&bus, &request, Duration::from_secs(5))
        .await
        .expect("send");
    let failed = eventually(Duration::from_secs(10), || async {
        emails(&s)
            .await
            .into_iter()
            .find(|e| e.id == first.email_id && e.status == EmailStatus::Failed as i32)
    })
    .await
    .expect("failed");
    assert_eq!(failed.attempts, 1);
    assert!(failed.error.contains("no such user"), "{}", failed.error);
    assert_eq!(
        stream_events(&s.env, "acme.notification.email_failed", 1)
            .await
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(smtp.mails().len(), 1, "the refused one was not tried again");
    s.stop().await;
}

#[tokio::test]
async fn an_accounts_sender_templates_and_commands_shape_its_mail() {
    let smtp = SmtpServer::start().await;
    let s = Setup::start(mail_settings(&smtp)).await;
    let mut client = s.client().await;
    let bad = client
        .update_email_settings(authed(
            UpdateEmailSettingsRequest {
                settings: Some(EmailSettings {
                    from_address: "not an address".into(),
                    templates: vec![EmailTemplate::default()],
                    ..Default::default()
                }),
            },
            &s.admin,
        ))
        .await
        .expect_err("bad settings");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let mut fields = helpdesk_kit::grpc::violated_fields(&bad);
    fields.sort();
    assert_eq!(
        fields,
        vec!["settings.from_address", "settings.templates[0].kind"]
    );
    client
        .update_email_settings(authed(
            UpdateEmailSettingsRequest {
                settings: Some(EmailSettings {
                    from_name: "Acme Help".into(),
                    from_address: "help@acme.test".into(),
                    reply_to: "replies@acme.test".into(),
                    templates: vec![EmailTemplate {
                        kind: EmailKind::TicketCreated as i32,
                        subject: "Got it: {{ticket.subject}} (#{{ticket.number}})".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            &s.admin,
        ))
        .await
        .expect("settings");
    s.emit(
        "acme",
        TicketCreated {
            ticket: Some(ticket(&uuid::Uuid::now_v7().to_string(), 4, "Open")),
            ..Default::default()
        },
    )
    .await;
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    let m = MessageParser::default().parse(&got[0].data).expect("MIME");
    assert_eq!(m.subject(), Some("Got it: Printer on fire (#4)"));
    let from = m.from().and_then(|a| a.first()).expect("a sender");
    assert_eq!(
        (from.name(), from.address()),
        (Some("Acme Help"), Some("help@acme.test"))
    );
    let reply_to = m.reply_to().and_then(|a| a.first()).expect("reply-to");
    assert_eq!(reply_to.address(), Some("replies@acme.test"));
    assert!(
        m.body_text(0)
            .expect("text")
            .contains("We received your request #4"),
        "the body keeps the built-in template"
    );

    // An automatic reply through the command, once per key.
    let bus = helpdesk_kit::bus::Bus::connect(&s.env.service_config(), "test")
        .await
        .expect("bus");
    let request = SendEmailRequest {
        account_id: "acme".into(),
        idempotency_key: "ooo-1".into(),
        kind: EmailKind::AutomaticReply as i32,
        to: vec!["jo@example.com".into()],
        variables: [
            ("subject".to_string(), "Where is my order".to_string()),
            (
                "body".to_string(),
                "We are closed until Monday.".to_string(),
            ),
        ]
        .into(),
        ..Default::default()
    };
    let deadline = Duration::from_secs(5);
    let a = helpdesk_kit::command::call(&bus, &request, deadline)
        .await
        .expect("send");
    let b = helpdesk_kit::command::call(&bus, &request, deadline)
        .await
        .expect("again");
    assert_eq!(a.email_id, b.email_id);
    let got = smtp.wait_for(2, Duration::from_secs(10)).await;
    let m = MessageParser::default().parse(&got[1].data).expect("MIME");
    assert_eq!(m.subject(), Some("Re: Where is my order"));
    assert_eq!(header(&m, "Auto-Submitted"), "auto-replied");
    assert_eq!(m.message_id(), Some(a.message_id.trim_matches(['<', '>'])));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(smtp.mails().len(), 2, "once per key");
    let bad = helpdesk_kit::command::call(
        &bus,
        &SendEmailRequest {
            to: vec!["not-an-address".into()],
            idempotency_key: "x".into(),
            ..request
        },
        deadline,
    )
    .await
    .expect_err("bad address");
    let status = tonic::Status::from(bad);
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("to[0]"), "{status:?}");
    s.stop().await;
}

/// Settings for a TLS server: its CA trusted through a file.
fn tls_settings(smtp: &SmtpServer, tls: &str, dir: &std::path::Path) -> NotificationSettings {
    let ca = dir.join(format!("ca-{}.pem", smtp.port));
    std::fs::write(&ca, &smtp.ca_pem).expect("write the CA");
    NotificationSettings {
        smtp_tls: tls.into(),
        smtp_ca_file: ca.display().to_string(),
        ..mail_settings(smtp)
    }
}

async fn send_one(s: &Setup, key: &str) -> String {
    let bus = helpdesk_kit::bus::Bus::connect(&s.env.service_config(), "test")
        .await
        .expect("bus");
    let request = SendEmailRequest {
        account_id: "acme".into(),
        idempotency_key: key.into(),
        kind: EmailKind::TeamAlert as i32,
        to: vec!["team@acme.test".into()],
        subject: "Over TLS".into(),
        variables: [("body".to_string(), "sealed".to_string())].into(),
        ..Default::default()
    };
    helpdesk_kit::command::call(&bus, &request, Duration::from_secs(5))
        .await
        .expect("send")
        .email_id
}

async fn email_when(s: &Setup, id: &str, done: impl Fn(&Email) -> bool) -> Email {
    let found = eventually(Duration::from_secs(10), || async {
        emails(s).await.into_iter().find(|e| e.id == id && done(e))
    })
    .await;
    match found {
        Some(e) => e,
        None => panic!("email {id} now: {:?}", emails(s).await),
    }
}

#[tokio::test]
async fn mail_goes_over_starttls_with_a_login_or_implicit_tls_and_never_in_the_clear() {
    use helpdesk_kit::testing::smtp::SmtpTls;
    let dir = std::env::temp_dir().join(format!("hd-smtp-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");

    // STARTTLS, then a login.
    let smtp = SmtpServer::start_with(SmtpTls::StartTls, Some(("mailer", "s3cret"))).await;
    let settings = NotificationSettings {
        smtp_username: "mailer".into(),
        smtp_password: "s3cret".into(),
        ..tls_settings(&smtp, "starttls", &dir)
    };
    let s = Setup::start(settings.clone()).await;
    let id = send_one(&s, "tls-1").await;
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let m = MessageParser::default().parse(&got[0].data).expect("MIME");
    assert_eq!(m.subject(), Some("Over TLS"));
    email_when(&s, &id, |e| e.status == EmailStatus::Sent as i32).await;
    s.stop().await;

    // A wrong password is refused for good, once.
    let s = Setup::start(NotificationSettings {
        smtp_password: "wrong".into(),
        ..settings
    })
    .await;
    let id = send_one(&s, "tls-2").await;
    let failed = email_when(&s, &id, |e| e.status == EmailStatus::Failed as i32).await;
    assert!(failed.error.contains("535"), "{}", failed.error);
    assert_eq!(smtp.refused_logins(), 1);
    assert_eq!(smtp.mails().len(), 1);
    s.stop().await;

    // Implicit TLS.
    let smtps = SmtpServer::start_with(SmtpTls::Implicit, None).await;
    let s = Setup::start(tls_settings(&smtps, "tls", &dir)).await;
    let id = send_one(&s, "tls-3").await;
    smtps.wait_for(1, Duration::from_secs(10)).await;
    email_when(&s, &id, |e| e.status == EmailStatus::Sent as i32).await;
    s.stop().await;

    // A server whose certificate nobody vouches for gets nothing; the email waits.
    let untrusted = SmtpServer::start_with(SmtpTls::Implicit, None).await;
    let s = Setup::start(NotificationSettings {
        smtp_tls: "tls".into(),
        ..mail_settings(&untrusted)
    })
    .await;
    let id = send_one(&s, "tls-4").await;
    let waiting = email_when(&s, &id, |e| e.attempts >= 1).await;
    assert_ne!(waiting.status, EmailStatus::Sent as i32);
    assert!(!waiting.error.is_empty());
    assert!(untrusted.mails().is_empty());
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
