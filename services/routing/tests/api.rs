//! The routing API on its own: directory, validation, presence, statistics.

use std::time::Duration;

use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_kit::grpc::violated_fields;
use helpdesk_kit::testing::{self, Spawned, TestEnv, eventually};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::*;
use helpdesk_routing::Routing;
use tonic::transport::Channel;
use tonic::{Code, Request};

struct App {
    env: TestEnv,
    port: u16,
    service: Spawned,
}

async fn spawn() -> App {
    let env = TestEnv::new().await;
    let service = testing::spawn::<Routing>(env.service_config()).await;
    App {
        env,
        port: service.port,
        service,
    }
}

impl App {
    async fn client(&self) -> RoutingServiceClient<Channel> {
        RoutingServiceClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("connect")
    }
    fn token(&self, sub: &str, role: Role) -> String {
        self.env.token("acme", sub, role)
    }
    /// Creates agent `id` (named `name`, two seats, offline) in `account`.
    async fn agent_in(&self, account: &str, id: &str, name: &str) -> Agent {
        let admin = self.env.token(account, "admin", Role::Admin);
        let agent = Agent {
            id: id.into(),
            name: name.into(),
            max_chats: 2,
            ..Default::default()
        };
        self.client()
            .await
            .create_agent(authed(CreateAgentRequest { agent: Some(agent) }, &admin))
            .await
            .expect("agent")
            .into_inner()
    }
    async fn stop(self) {
        self.service.stop().await;
    }
}

fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    r
}

fn range(start: &str, end: &str) -> TimeRange {
    TimeRange {
        start: start.into(),
        end: end.into(),
    }
}

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let app = spawn().await;
    let admin = app.token("admin", Role::Admin);
    let mut c = app.client().await;
    let team = c
        .create_team(authed(
            CreateTeamRequest {
                team: Some(Team {
                    name: "billing".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("team")
        .into_inner();

    // Negative capacity.
    let agent = |max: i32, teams: Vec<String>| Agent {
        id: "ana".into(),
        name: "Ana".into(),
        max_chats: max,
        team_ids: teams,
        ..Default::default()
    };
    let e = c
        .create_agent(authed(
            CreateAgentRequest {
                agent: Some(agent(-1, vec![])),
            },
            &admin,
        ))
        .await
        .expect_err("negative");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["agent.max_chats"]);
    // Unknown team.
    let unknown = uuid::Uuid::new_v4().to_string();
    let e = c
        .create_agent(authed(
            CreateAgentRequest {
                agent: Some(agent(3, vec![unknown.clone()])),
            },
            &admin,
        ))
        .await
        .expect_err("team");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["agent.team_ids"]);
    let e = c
        .create_routing_rule(authed(
            CreateRoutingRuleRequest {
                rule: Some(RoutingRule {
                    name: "r".into(),
                    target_team_id: unknown,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("rule team");
    assert_eq!(violated_fields(&e), vec!["rule.target_team_id"]);
    // Overlapping hours.
    let hours = BusinessHours {
        team_id: team.id.clone(),
        time_zone: "Europe/Berlin".into(),
        weekly: vec![DaySchedule {
            weekday: 1,
            ranges: vec![range("09:00", "13:00"), range("12:00", "17:00")],
        }],
        outside_hours_policy: OutsideHoursPolicy::LeaveMessage as i32,
        ..Default::default()
    };
    let e = c
        .set_business_hours(authed(
            SetBusinessHoursRequest {
                hours: Some(hours.clone()),
            },
            &admin,
        ))
        .await
        .expect_err("overlap");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        violated_fields(&e)
            .iter()
            .any(|f| f.starts_with("hours.weekly[0]")),
        "{e:?}"
    );
    assert!(e.message().contains("overlapping"), "{}", e.message());
    let mut bad_zone = hours.clone();
    bad_zone.weekly = vec![];
    bad_zone.time_zone = "Mars/Olympus".into();
    let e = c
        .set_business_hours(authed(
            SetBusinessHoursRequest {
                hours: Some(bad_zone),
            },
            &admin,
        ))
        .await
        .expect_err("zone");
    assert_eq!(violated_fields(&e), vec!["hours.time_zone"]);
    // Settings that cannot work.
    let e = c
        .update_settings(authed(
            UpdateSettingsRequest {
                settings: Some(RoutingSettings {
                    overflow_action: OverflowAction::OverflowTeam as i32,
                    max_wait_seconds: -5,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("settings");
    let mut fields = violated_fields(&e);
    fields.sort();
    assert_eq!(
        fields,
        vec!["settings.max_wait_seconds", "settings.overflow_team_id"]
    );
    // Unknown presence, bad ids.
    let e = c
        .set_presence(authed(
            SetPresenceRequest {
                agent_id: String::new(),
                presence: 0,
            },
            &app.token("ana", Role::Agent),
        ))
        .await
        .expect_err("presence");
    assert_eq!(violated_fields(&e), vec!["presence"]);
    let e = c
        .get_queue_position(authed(
            GetQueuePositionRequest {
                conversation_id: "nope".into(),
            },
            &admin,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(violated_fields(&e), vec!["conversation_id"]);
    // Nothing was stored by the refused calls.
    let agents = c
        .list_agents(authed(ListAgentsRequest::default(), &admin))
        .await
        .expect("list")
        .into_inner()
        .agents;
    assert!(agents.is_empty());
    let e = c
        .get_business_hours(authed(
            GetBusinessHoursRequest {
                team_id: team.id.clone(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect_err("none");
    assert_eq!(e.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn directory_roles_and_tenants() {
    let app = spawn().await;
    let admin = app.token("admin", Role::Admin);
    let mut c = app.client().await;
    let agent = Agent {
        id: "ana".into(),
        name: "Ana".into(),
        max_chats: 3,
        channel_capacity: [("email".to_string(), 1)].into(),
        skills: vec![Skill {
            name: "Billing".into(),
            level: SkillLevel::Primary as i32,
        }],
        languages: vec!["de".into(), "en".into()],
        ..Default::default()
    };
    let created = c
        .create_agent(authed(
            CreateAgentRequest {
                agent: Some(agent.clone()),
            },
            &admin,
        ))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.skills[0].name, "billing", "skills are normalised");
    assert_eq!(created.presence, Presence::Offline as i32);
    let e = c
        .create_agent(authed(CreateAgentRequest { agent: Some(agent) }, &admin))
        .await
        .expect_err("duplicate");
    assert_eq!(e.code(), Code::AlreadyExists);
    // Agents cannot administer; another tenant sees nothing; no token is unauthenticated.
    let e = c
        .create_team(authed(
            CreateTeamRequest {
                team: Some(Team {
                    name: "x".into(),
                    ..Default::default()
                }),
            },
            &app.token("ana", Role::Agent),
        ))
        .await
        .expect_err("agent");
    assert_eq!(e.code(), Code::PermissionDenied);
    let other = app.env.token("globex", "admin", Role::Admin);
    let e = c
        .get_agent(authed(GetAgentRequest { id: "ana".into() }, &other))
        .await
        .expect_err("tenant");
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        c.list_agents(authed(ListAgentsRequest::default(), &other))
            .await
            .expect("list")
            .into_inner()
            .agents
            .is_empty()
    );
    let e = c
        .list_agents(Request::new(ListAgentsRequest::default()))
        .await
        .expect_err("no token");
    assert_eq!(e.code(), Code::Unauthenticated);
    // Visitors cannot see the directory.
    let e = c
        .list_agents(authed(
            ListAgentsRequest::default(),
            &app.token(&uuid::Uuid::new_v4().to_string(), Role::Visitor),
        ))
        .await
        .expect_err("visitor");
    assert_eq!(e.code(), Code::PermissionDenied);
    // Update with a mask: raise capacity.
    let updated = c
        .update_agent(authed(
            UpdateAgentRequest {
                agent: Some(Agent {
                    id: "ana".into(),
                    max_chats: 5,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["max_chats".into()],
                }),
            },
            &admin,
        ))
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        (
            updated.max_chats,
            updated.name.as_str(),
            updated.languages.len()
        ),
        (5, "Ana", 2)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_vanished_workbench_turns_the_agent_away_and_stats_follow() {
    let app = spawn().await;
    let admin = app.token("admin", Role::Admin);
    let ana = app.token("ana", Role::Agent);
    let mut c = app.client().await;
    c.update_settings(authed(
        UpdateSettingsRequest {
            settings: Some(RoutingSettings {
                presence_idle_seconds: 2,
                ..Default::default()
            }),
        },
        &admin,
    ))
    .await
    .expect("settings");
    app.agent_in("acme", "ana", "Ana").await;
    c.set_presence(authed(
        SetPresenceRequest {
            agent_id: String::new(),
            presence: Presence::Online as i32,
        },
        &ana,
    ))
    .await
    .expect("online");
    let mut stats = c
        .watch_queue_stats(authed(
            GetQueueStatsRequest::default(),
            &app.token("sup", Role::Supervisor),
        ))
        .await
        .expect("stats")
        .into_inner();
    let first = stats.next().await.expect("first").expect("stats");
    let account_wide = first
        .teams
        .iter()
        .find(|t| t.team_id.is_empty())
        .expect("account-wide queue");
    assert_eq!(
        (
            account_wide.agents_online,
            account_wide.agents_available,
            account_wide.waiting
        ),
        (1, 1, 0)
    );

    // The workbench holds WatchPresence open for a while, then vanishes.
    let mut watch = c
        .watch_presence(authed(WatchPresenceRequest {}, &ana))
        .await
        .expect("watch")
        .into_inner();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent = c
        .get_agent(authed(GetAgentRequest { id: "ana".into() }, &admin))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        agent.presence,
        Presence::Online as i32,
        "an open workbench keeps the agent online"
    );
    drop(watch.next());
    drop(watch);
    let away = eventually(Duration::from_secs(15), || {
        let mut c = c.clone();
        let req = authed(GetAgentRequest { id: "ana".into() }, &admin);
        async move {
            let a = c.get_agent(req).await.ok()?.into_inner();
            (a.presence == Presence::Away as i32).then_some(a)
        }
    })
    .await;
    assert!(away.is_some(), "idle workbench: agent turns away");
    // Supervisors' stats stream shows the change.
    let changed = tokio::time::timeout(Duration::from_secs(5), stats.next())
        .await
        .expect("stats update")
        .expect("item")
        .expect("ok");
    let account_wide = changed
        .teams
        .iter()
        .find(|t| t.team_id.is_empty())
        .expect("queue");
    assert_eq!(account_wide.agents_online, 0);
    app.stop().await;
}

#[tokio::test]
async fn events_handled_out_of_order_never_route_a_closed_conversation() {
    use helpdesk_kit::consumer::{self, IncomingEvent};
    use helpdesk_proto::conversation::v1::{
        Conversation, ConversationCreated, ConversationStatus, ConversationStatusChanged,
    };
    use prost::Message;

    let app = spawn().await;
    let mut c = app.client().await;
    app.agent_in("acme", "ana", "Ana").await;
    c.set_presence(authed(
        SetPresenceRequest {
            agent_id: String::new(),
            presence: Presence::Online as i32,
        },
        &app.token("ana", Role::Agent),
    ))
    .await
    .expect("online");
    let pool = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("pool");
    let conv = |status: ConversationStatus, version: i64| Conversation {
        id: "018f0000-0000-7000-8000-000000000001".into(),
        account_id: "acme".into(),
        inbox_id: "018f0000-0000-7000-8000-000000000002".into(),
        contact_id: "018f0000-0000-7000-8000-000000000003".into(),
        channel_kind: 1,
        status: status as i32,
        version,
        ..Default::default()
    };
    let event = |kind: &str, id: &str, payload: Vec<u8>| IncomingEvent {
        subject: format!("x.evt.acme.{kind}"),
        account_id: "acme".into(),
        kind: kind.into(),
        event_id: id.into(),
        event_type: String::new(),
        payload: payload.into(),
        delivered: 1,
    };
    let resolved = ConversationStatusChanged {
        conversation: Some(conv(ConversationStatus::Resolved, 5)),
        from: ConversationStatus::Open as i32,
        to: ConversationStatus::Resolved as i32,
        ..Default::default()
    };
    let created = ConversationCreated {
        conversation: Some(conv(ConversationStatus::Open, 1)),
        ..Default::default()
    };
    // The newer event is handled first (another replica was faster).
    sqlx::query("SET search_path = routing")
        .execute(&pool)
        .await
        .expect("schema");
    let routing_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            app.env
                .database_url
                .parse::<sqlx::postgres::PgConnectOptions>()
                .expect("url")
                .options([("search_path", "routing")]),
        )
        .await
        .expect("routing pool");
    let handler = helpdesk_routing::consumers::consumer();
    consumer::apply(
        &routing_pool,
        "routing",
        &handler,
        &event(
            "conversation.status_changed",
            "e2",
            resolved.encode_to_vec(),
        ),
    )
    .await
    .expect("apply");
    consumer::apply(
        &routing_pool,
        "routing",
        &handler,
        &event("conversation.created", "e1", created.encode_to_vec()),
    )
    .await
    .expect("apply");
    let assigned: i64 = sqlx::query_scalar("SELECT count(*) FROM assignments")
        .fetch_one(&routing_pool)
        .await
        .expect("count");
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM queue")
        .fetch_one(&routing_pool)
        .await
        .expect("count");
    let status: String = sqlx::query_scalar("SELECT status FROM conversations")
        .fetch_one(&routing_pool)
        .await
        .expect("status");
    assert_eq!(
        (assigned, queued, status.as_str()),
        (0, 0, "resolved"),
        "the stale event changed nothing"
    );
    app.stop().await;
}

/// Two accounts never wait on each other's routing lock, even accounts whose names
/// collide in a 32-bit hash (the lock key is a 64-bit hash).
#[tokio::test]
async fn accounts_whose_names_collide_in_32_bits_do_not_share_a_lock() {
    let app = spawn().await;
    let pool = app.service.pool.clone();
    // Two names with the same 32-bit hashtext, found by brute force.
    let (a, b): (String, String) = sqlx::query_as(
        "SELECT (array_agg(name ORDER BY name))[1], (array_agg(name ORDER BY name))[2]
         FROM (SELECT 'acct-' || g AS name, hashtext('routing:acct-' || g) AS h
               FROM generate_series(1, 300000) g) names
         GROUP BY h HAVING count(*) > 1 LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .expect("a colliding pair exists among 300,000 names");
    let mut holder = pool.begin().await.expect("begin");
    helpdesk_routing::store::lock_account(&mut holder, &a)
        .await
        .expect("lock a");
    let mut other = pool.begin().await.expect("begin");
    sqlx::query("SET LOCAL lock_timeout = '2s'")
        .execute(&mut *other)
        .await
        .expect("timeout");
    helpdesk_routing::store::lock_account(&mut other, &b)
        .await
        .expect("b's lock is not a's");
    other.rollback().await.expect("rollback");
    holder.rollback().await.expect("rollback");
    app.stop().await;
}

/// A call stuck behind a busy account does not wait without bound: it answers
/// UNAVAILABLE (a code clients retry) once the lock wait times out, and works again
/// when the account is free.
#[tokio::test]
async fn a_call_behind_a_busy_account_answers_unavailable_quickly() {
    let app = spawn().await;
    let ana = app.token("ana", Role::Agent);
    let mut c = app.client().await;
    app.agent_in("acme", "ana", "Ana").await;
    let presence = |presence: Presence| {
        authed(
            SetPresenceRequest {
                agent_id: String::new(),
                presence: presence as i32,
            },
            &ana,
        )
    };
    // Another transaction holds the account's routing lock.
    let mut holder = app.service.pool.begin().await.expect("begin");
    helpdesk_routing::store::lock_account(&mut holder, "acme")
        .await
        .expect("lock");
    // Going online takes nothing from anyone: it does not wait for the account.
    c.set_presence(presence(Presence::Online))
        .await
        .expect("online while the account is busy");
    // Going away does (it changes who may be assigned): it answers UNAVAILABLE.
    let started = std::time::Instant::now();
    let e = c
        .set_presence(presence(Presence::Away))
        .await
        .expect_err("busy account");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered after {:?}",
        started.elapsed()
    );
    holder.rollback().await.expect("release");
    c.set_presence(presence(Presence::Away))
        .await
        .expect("works once the account is free");
    app.stop().await;
}

#[tokio::test]
async fn unknown_enum_values_are_refused_naming_the_field() {
    let app = spawn().await;
    let admin = app.token("admin", Role::Admin);
    let mut c = app.client().await;
    let e = c
        .update_settings(authed(
            UpdateSettingsRequest {
                settings: Some(RoutingSettings {
                    default_strategy: 77,
                    offline_policy: -3,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("unknown strategy and policy");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&e),
        vec!["settings.default_strategy", "settings.offline_policy"]
    );
    let e = c
        .list_agents(authed(
            ListAgentsRequest {
                presence: 9,
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect_err("unknown presence filter");
    assert_eq!(violated_fields(&e), vec!["presence"]);
    app.stop().await;
}

/// Many supervisors watching the same queue share one statistics computation: the
/// streams opened together receive the very same snapshot (same computation time).
#[tokio::test]
async fn queue_stats_watchers_share_one_computation() {
    let app = spawn().await;
    let supervisor = app.token("sue", Role::Supervisor);
    let mut streams = Vec::new();
    for _ in 0..10 {
        let mut c = app.client().await;
        streams.push(
            c.watch_queue_stats(authed(GetQueueStatsRequest::default(), &supervisor))
                .await
                .expect("watch")
                .into_inner(),
        );
    }
    let mut times = std::collections::HashSet::new();
    for s in &mut streams {
        let first = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("a snapshot")
            .expect("open")
            .expect("stats");
        let t = first.time.expect("time");
        times.insert((t.seconds, t.nanos));
    }
    assert!(
        times.len() <= 2,
        "ten watchers, {} computations: {times:?}",
        times.len()
    );
    app.stop().await;
}

/// Twenty calls line up behind a busy account: they wait for their turn without a
/// pooled connection, so only one of them waits in the database and another
/// account's calls go through meanwhile; once the account is free they all succeed.
#[tokio::test]
async fn calls_behind_a_busy_account_hold_at_most_one_connection() {
    const AGENTS: usize = 20;
    let app = spawn().await;
    let c = app.client().await;
    for i in 0..AGENTS {
        let id = format!("agent-{i}");
        app.agent_in("acme", &id, &id).await;
    }
    // Another connection, not the service's, holds the account's routing lock.
    let outside = sqlx::PgPool::connect(&app.env.database_url)
        .await
        .expect("pool");
    let mut holder = outside.begin().await.expect("begin");
    helpdesk_routing::store::lock_account(&mut holder, "acme")
        .await
        .expect("lock");
    let calls: Vec<_> = (0..AGENTS)
        .map(|i| {
            let mut c = c.clone();
            let token = app.token(&format!("agent-{i}"), Role::Agent);
            tokio::spawn(async move {
                c.set_presence(authed(
                    SetPresenceRequest {
                        agent_id: String::new(),
                        presence: Presence::Away as i32,
                    },
                    &token,
                ))
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
    )
    .fetch_one(&outside)
    .await
    .expect("activity");
    assert_eq!(
        waiting, 1,
        "one call waits in the database, the others in line"
    );
    // Another account is served meanwhile.
    app.agent_in("globex", "bob", "Bob").await;
    holder.rollback().await.expect("release");
    for call in calls {
        call.await
            .expect("join")
            .expect("served once the account is free");
    }
    app.stop().await;
}
