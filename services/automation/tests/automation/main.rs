//! The automation service on its own, with real NATS and PostgreSQL: rules kept in
//! order, bad rules refused naming the field, dry runs that explain each condition,
//! and accounts kept apart. Rules acting through the other services are tested with
//! the whole platform (`tests/tests/automation.rs`).

mod lanes;

use std::time::Duration;

use helpdesk_automation::Automation;
use helpdesk_kit::auth::Role;
use helpdesk_kit::event::Origin;
use helpdesk_kit::grpc::violated_fields;
use helpdesk_kit::testing::{Spawned, TestEnv, eventually, spawn};
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::automation::v1::*;
use helpdesk_proto::conversation::v1::{
    Contact, Conversation, ConversationCreated, ConversationStatus, Message, MessageKind,
};
use tonic::transport::Channel;
use tonic::{Code, Request};

type Client = AutomationServiceClient<Channel>;

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

fn pred(attribute: &str, operator: Operator, values: &[&str]) -> Condition {
    Condition {
        kind: Some(condition::Kind::Predicate(Predicate {
            attribute: attribute.into(),
            operator: operator as i32,
            values: values.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        })),
    }
}

fn group(any: bool, conditions: Vec<Condition>) -> Condition {
    Condition {
        kind: Some(condition::Kind::Group(ConditionGroup { any, conditions })),
    }
}

fn label(name: &str) -> Action {
    Action {
        kind: Some(action::Kind::AddLabels(LabelsAction {
            labels: vec![name.into()],
        })),
    }
}

fn named(name: &str, event: &str) -> Rule {
    Rule {
        name: name.into(),
        active: true,
        event: event.into(),
        actions: vec![label("x")],
        ..Default::default()
    }
}

struct Setup {
    env: TestEnv,
    service: Spawned,
    admin: String,
}

impl Setup {
    async fn start() -> Self {
        let env = TestEnv::new().await;
        let service = spawn::<Automation>(env.service_config()).await;
        let admin = env.token("acme", "admin-1", Role::Admin);
        Self {
            env,
            service,
            admin,
        }
    }

    async fn client(&self) -> Client {
        Client::connect(self.service.url()).await.expect("connect")
    }

    async fn create(&self, rule: Rule) -> Result<Rule, tonic::Status> {
        self.client()
            .await
            .create_rule(authed(CreateRuleRequest { rule: Some(rule) }, &self.admin))
            .await
            .map(|r| r.into_inner())
    }

    async fn names(&self, token: &str) -> Vec<(i32, String)> {
        self.client()
            .await
            .list_rules(authed(ListRulesRequest::default(), token))
            .await
            .expect("list")
            .into_inner()
            .rules
            .into_iter()
            .map(|r| (r.position, r.name))
            .collect()
    }
}

#[tokio::test]
async fn rules_keep_their_order_and_bad_rules_are_refused_naming_the_field() {
    let s = Setup::start().await;
    let a = s.create(named("a", "message.incoming")).await.expect("a");
    s.create(named("b", "conversation.resolved"))
        .await
        .expect("b");
    let first = s
        .create(Rule {
            position: 1,
            ..named("first", "ticket.created")
        })
        .await;
    // Ticket events have no conversation to label.
    assert_eq!(
        violated_fields(&first.expect_err("labels on a ticket event")),
        vec!["rule.actions[0]"]
    );
    let first = s
        .create(Rule {
            position: 1,
            actions: vec![Action {
                kind: Some(action::Kind::UpdateTicket(UpdateTicketAction {
                    add_tags: vec!["seen".into()],
                    ..Default::default()
                })),
            }],
            ..named("first", "ticket.created")
        })
        .await
        .expect("first");
    assert_eq!(
        s.names(&s.admin).await,
        vec![(1, "first".into()), (2, "a".into()), (3, "b".into())]
    );
    // Moving one moves the others; deleting closes the gap.
    let moved = s
        .client()
        .await
        .update_rule(authed(
            UpdateRuleRequest {
                rule: Some(Rule {
                    id: first.id.clone(),
                    position: 3,
                    name: "last now".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["position".into(), "name".into()],
                }),
            },
            &s.admin,
        ))
        .await
        .expect("move")
        .into_inner();
    assert_eq!(
        (moved.position, moved.event.as_str()),
        (3, "ticket.created")
    );
    assert_eq!(
        s.names(&s.admin).await,
        vec![(1, "a".into()), (2, "b".into()), (3, "last now".into())]
    );
    s.client()
        .await
        .delete_rule(authed(DeleteRuleRequest { id: a.id.clone() }, &s.admin))
        .await
        .expect("delete");
    assert_eq!(
        s.names(&s.admin).await,
        vec![(1, "b".into()), (2, "last now".into())]
    );

    // Each mistake is named by its field, and nothing is stored.
    let cases: Vec<(Rule, Vec<&str>)> = vec![
        (named("", "message.incoming"), vec!["rule.name"]),
        (named("x", "message.sent"), vec!["rule.event"]),
        (
            Rule {
                actions: vec![],
                ..named("x", "message.incoming")
            },
            vec!["rule.actions"],
        ),
        (
            Rule {
                conditions: Some(ConditionGroup {
                    any: false,
                    conditions: vec![
                        pred("message.colour", Operator::EqualTo, &["red"]),
                        group(
                            true,
                            vec![
                                pred("message.content", Operator::Unspecified, &["a"]),
                                pred("message.content", Operator::Matches, &["(unclosed"]),
                            ],
                        ),
                        pred("contact.email", Operator::GreaterThan, &["3"]),
                        pred("conversation.csat_rating", Operator::LessThan, &["three"]),
                    ],
                }),
                ..named("x", "message.incoming")
            },
            vec![
                "rule.conditions.conditions[0].predicate.attribute",
                "rule.conditions.conditions[1].group.conditions[0].predicate.operator",
                "rule.conditions.conditions[1].group.conditions[1].predicate.values",
                "rule.conditions.conditions[2].predicate.operator",
                "rule.conditions.conditions[3].predicate.values",
            ],
        ),
        (
            Rule {
                actions: vec![
                    Action {
                        kind: Some(action::Kind::ChangeStatus(StatusAction {
                            status: "snoozed".into(),
                            snooze_seconds: 0,
                        })),
                    },
                    Action {
                        kind: Some(action::Kind::ChangePriority("critical".into())),
                    },
                    Action { kind: None },
                    Action {
                        kind: Some(action::Kind::SendMessage(MessageAction {
                            content: "x".repeat(4001),
                        })),
                    },
                ],
                ..named("x", "message.incoming")
            },
            vec![
                "rule.actions[0].change_status.snooze_seconds",
                "rule.actions[1].change_priority",
                "rule.actions[2]",
                "rule.actions[3].send_message.content",
            ],
        ),
        (
            Rule {
                delay: Some(Delay {
                    seconds: 0,
                    episode: 0,
                }),
                ..named("x", "message.incoming")
            },
            vec!["rule.delay.seconds"],
        ),
    ];
    for (rule, fields) in cases {
        let err = s.create(rule).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violated_fields(&err), fields, "{}", err.message());
    }
    assert_eq!(s.names(&s.admin).await.len(), 2);

    // Agents do not manage rules; another account sees none of these.
    let agent = s.env.token("acme", "ana", Role::Agent);
    let denied = s
        .client()
        .await
        .list_rules(authed(ListRulesRequest::default(), &agent))
        .await
        .expect_err("agents may not");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let other = s.env.token("globex", "admin-2", Role::Admin);
    assert!(s.names(&other).await.is_empty());
    let hidden = s
        .client()
        .await
        .get_rule(authed(GetRuleRequest { id: first.id }, &other))
        .await
        .expect_err("not theirs");
    assert_eq!(hidden.code(), Code::NotFound);
    s.service.stop().await;
}

#[tokio::test]
async fn a_dry_run_explains_each_condition_against_a_stored_conversation_or_a_sample() {
    let s = Setup::start().await;
    // A conversation as the conversation service announces it.
    let conversation = Conversation {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: "acme".into(),
        contact_id: uuid::Uuid::now_v7().to_string(),
        status: ConversationStatus::Open as i32,
        labels: vec!["vip".into()],
        version: 1,
        ..Default::default()
    };
    let contact = Contact {
        id: conversation.contact_id.clone(),
        email: "zoe@example.com".into(),
        custom_attributes: [("country".to_string(), "DE".to_string())].into(),
        ..Default::default()
    };
    let mut tx = s.service.pool.begin().await.expect("tx");
    helpdesk_kit::outbox::emit(
        &mut tx,
        &Origin::system("acme"),
        ConversationCreated {
            conversation: Some(conversation.clone()),
            contact: Some(contact),
            ..Default::default()
        },
    )
    .await
    .expect("emit");
    tx.commit().await.expect("commit");

    let draft = Rule {
        conditions: Some(ConditionGroup {
            any: false,
            conditions: vec![
                pred("conversation.labels", Operator::Contains, &["VIP"]),
                group(
                    true,
                    vec![
                        pred("contact.country", Operator::EqualTo, &["fr"]),
                        pred("contact.email", Operator::Matches, &[r"@example\.com$"]),
                    ],
                ),
                pred("conversation.assignee_id", Operator::IsNotPresent, &[]),
            ],
        }),
        ..named("vip", "conversation.created")
    };
    let run = |req: DryRunRuleRequest| {
        let s = &s;
        async move {
            s.client()
                .await
                .dry_run_rule(authed(req, &s.admin))
                .await
                .map(|r| r.into_inner())
        }
    };
    let stored = eventually(Duration::from_secs(20), || async {
        run(DryRunRuleRequest {
            rule: Some(draft.clone()),
            conversation_id: conversation.id.clone(),
            ..Default::default()
        })
        .await
        .ok()
    })
    .await
    .expect("the conversation is known");
    assert!(stored.matched, "{stored:#?}");
    let results: Vec<(&str, &str, bool)> = stored
        .conditions
        .iter()
        .map(|c| (c.path.as_str(), c.actual.as_str(), c.matched))
        .collect();
    assert_eq!(
        results,
        vec![
            ("0", "vip", true),
            ("1.0", "DE", false),
            ("1.1", "zoe@example.com", true),
            ("2", "", true),
        ]
    );
    assert_eq!(stored.actions, vec!["add labels x"]);

    // A sample event: an incoming message with a keyword.
    let sample = SampleEvent {
        event: "message.incoming".into(),
        conversation: Some(conversation.clone()),
        message: Some(Message {
            kind: MessageKind::Incoming as i32,
            content: "I want a REFUND now".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let keyword = Rule {
        conditions: Some(ConditionGroup {
            any: false,
            conditions: vec![
                pred("message.content", Operator::Contains, &["refund", "退款"]),
                pred("message.kind", Operator::EqualTo, &["incoming"]),
            ],
        }),
        ..named("refunds", "message.incoming")
    };
    let sampled = run(DryRunRuleRequest {
        rule: Some(keyword),
        sample: Some(sample),
        ..Default::default()
    })
    .await
    .expect("dry run");
    assert!(sampled.matched);
    // Neither a rule nor facts: refused, naming what is missing.
    let err = run(DryRunRuleRequest {
        conversation_id: conversation.id.clone(),
        ..Default::default()
    })
    .await
    .expect_err("no rule");
    assert_eq!(violated_fields(&err), vec!["rule_id"]);
    // Another account's dry run does not find this conversation.
    let other = s.env.token("globex", "admin-2", Role::Admin);
    let err = s
        .client()
        .await
        .dry_run_rule(authed(
            DryRunRuleRequest {
                rule: Some(draft),
                conversation_id: conversation.id.clone(),
                ..Default::default()
            },
            &other,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(err.code(), Code::NotFound);
    s.service.stop().await;
}
