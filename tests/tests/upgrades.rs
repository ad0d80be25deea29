//! Deploying onto a real database. Upgrades: each service starts on a database its
//! previous release left (every migration but its newest), with events still waiting
//! in the outbox, and two replicas starting at once apply each migration exactly once
//! and publish what the previous release had not. Roles: with the roles
//! `deploy/k8s/README.md` tells an operator to make, each service works in its own
//! schema and is refused everyone else's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use helpdesk_kit::Service;
use helpdesk_kit::event::Origin;
use helpdesk_kit::testing::{TestEnv, spawn, stream_events};
use helpdesk_proto::common::v1::OutboxEventParked;
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::Presence;
use helpdesk_proto::ticketing::v1::{CreateTicketRequest, Ticket};
use helpdesk_tests::platform::{Platform, authed, eventually};
use sqlx::Connection as _;
use sqlx::migrate::Migrator;

/// A copy of `service`'s migrations without the newest: the previous release's.
fn previous_release(service: &str) -> (PathBuf, usize) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../services")
        .join(service)
        .join("migrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
        .expect("migrations")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{service} has a history to upgrade from");
    let dir = std::env::temp_dir().join(format!(
        "hd-previous-{service}-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    for file in &files[..files.len() - 1] {
        std::fs::copy(file, dir.join(file.file_name().expect("name"))).expect("copy");
    }
    (dir, files.len() - 1)
}

async fn upgrades<S: Service>() {
    let env = TestEnv::new().await;
    let config = env.service_config();
    let (dir, previous_count) = previous_release(S::NAME);
    let previous = Migrator::new(dir.as_path())
        .await
        .expect("previous migrations");
    let pool = helpdesk_kit::db::connect_and_migrate(&config.database_url, S::NAME, 2, &previous)
        .await
        .expect("the previous release's schema");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(applied as usize, previous_count);
    // The previous release stopped with an event not yet published.
    let event_id = {
        let mut tx = pool.begin().await.expect("tx");
        let event = OutboxEventParked {
            reason: format!("written by the previous {} release", S::NAME),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(&mut tx, &Origin::system("acme"), event)
            .await
            .expect("emit");
        tx.commit().await.expect("commit");
        let id: uuid::Uuid = sqlx::query_scalar("SELECT event_id FROM outbox")
            .fetch_one(&pool)
            .await
            .expect("pending");
        id.to_string()
    };
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);

    // Two replicas of the new release start at once.
    let (a, b) = tokio::join!(spawn::<S>(config.clone()), spawn::<S>(config.clone()));
    let versions: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&a.pool)
            .await
            .expect("migrations");
    let expected: Vec<(i64, bool)> = S::migrator().iter().map(|m| (m.version, true)).collect();
    assert_eq!(versions, expected, "{}: each migration once", S::NAME);
    // What the previous release left in the outbox goes out, once.
    let events = stream_events(&env, "acme.outbox.parked", 1).await;
    let ours: Vec<_> = events
        .iter()
        .filter(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .is_some_and(|id| id.as_str() == event_id)
        })
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "{}: the waiting event is published once",
        S::NAME
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn conversation_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_conversation::Conversation>().await;
}

#[tokio::test]
async fn routing_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_routing::Routing>().await;
}

#[tokio::test]
async fn ticketing_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_ticketing::Ticketing>().await;
}

#[tokio::test]
async fn automation_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_automation::Automation>().await;
}

#[tokio::test]
async fn notification_upgrades_from_its_previous_release() {
    upgrades::<helpdesk_notification::Notification>().await;
}

/// The five services, by schema.
const SERVICES: [&str; 5] = [
    "conversation",
    "routing",
    "ticketing",
    "notification",
    "automation",
];

/// The SQL `deploy/k8s/README.md` gives an operator, run on database `db` with each
/// role renamed `<prefix>_<role>` (roles belong to the whole server, so the test's
/// are its own); returns each schema's role and password. Fails on a statement it
/// does not know, so the README and this test cannot drift apart.
fn readme_roles(db: &str, prefix: &str) -> (Vec<String>, BTreeMap<String, (String, String)>) {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/k8s/README.md"
    ))
    .expect("deploy/k8s/README.md");
    let mut sql = String::new();
    let mut inside = false;
    for line in readme.lines() {
        match line.trim() {
            "```sql" => inside = true,
            "```" => inside = false,
            l if inside && !l.starts_with("--") => sql.push_str(&format!("{l}\n")),
            _ => {}
        }
    }
    let (mut statements, mut passwords, mut schemas) =
        (Vec::new(), BTreeMap::new(), BTreeMap::new());
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let ours = |role: &str| format!("{prefix}_{role}");
        statements.push(match words.as_slice() {
            ["CREATE", "ROLE", role, "LOGIN", "PASSWORD", password] => {
                passwords.insert(role.to_string(), password.trim_matches('\'').to_string());
                format!("CREATE ROLE {} LOGIN PASSWORD {password}", ours(role))
            }
            ["GRANT", "CONNECT", "ON", "DATABASE", "helpdesk", "TO", role] => {
                format!("GRANT CONNECT ON DATABASE {db} TO {}", ours(role))
            }
            ["CREATE", "SCHEMA", schema, "AUTHORIZATION", role] => {
                schemas.insert(schema.to_string(), role.to_string());
                format!("CREATE SCHEMA {schema} AUTHORIZATION {}", ours(role))
            }
            [
                "REVOKE",
                "CREATE",
                "ON",
                "SCHEMA",
                "public",
                "FROM",
                "PUBLIC",
            ] => statement.to_string(),
            _ => {
                panic!("deploy/k8s/README.md has a statement this test does not know: {statement}")
            }
        });
    }
    let roles = schemas
        .into_iter()
        .map(|(schema, role)| {
            let password = passwords.get(&role).expect("the role is created").clone();
            (schema, (format!("{prefix}_{role}"), password))
        })
        .collect();
    (statements, roles)
}

/// `url` with its user and password replaced.
fn as_role(url: &str, role: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}:{password}@{host}")
}

#[tokio::test]
async fn each_service_runs_as_its_own_role_and_is_refused_the_other_schemas() {
    let env = TestEnv::new().await;
    let db = env
        .database_url
        .rsplit_once('/')
        .and_then(|(_, db)| db.split('?').next())
        .expect("database name")
        .to_string();
    let prefix = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let (statements, roles) = readme_roles(&db, &prefix);
    assert_eq!(
        roles.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut all = SERVICES.to_vec();
            all.sort();
            all
        },
        "the README gives every service a role"
    );
    let admin = sqlx::PgPool::connect(&env.database_url)
        .await
        .expect("superuser");
    for statement in &statements {
        sqlx::query(statement)
            .execute(&admin)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let url = |service: &str| {
        let (role, password) = &roles[service];
        as_role(&env.database_url, role, password)
    };

    // The platform on those roles: migrations, the kit's tables, a routed chat and a
    // delivered webhook.
    let p = Platform::start_each(env.clone(), 1, |service, c| c.database_url = url(service)).await;
    let receiver = helpdesk_kit::testing::http::Receiver::start().await;
    p.notifications()
        .await
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: receiver.url.clone(),
                    event_types: vec!["routing.assigned".into()],
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("webhook");
    p.agent("ana", 2, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, _) = p.chat(&inbox, "Where is my parcel?", &[]).await;
    assert_eq!(
        p.wait_assigned(&chat, Duration::from_secs(15))
            .await
            .as_deref(),
        Some("ana")
    );
    let delivered = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(delivered.len(), 1, "the assignment's webhook");
    for (service, code, _) in p.one_call_each().await {
        assert_eq!(code, tonic::Code::Ok, "{service} as its own role");
    }
    // A ticket: ticketing's own outbox, published.
    p.tickets()
        .await
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: "Parcel lost".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &p.token("ana", helpdesk_kit::auth::Role::Agent),
        ))
        .await
        .expect("ticket");
    let created = stream_events(&p.env, "acme.ticket.created", 1).await;
    assert_eq!(created.len(), 1, "ticket.created published");
    // The services that follow chats consumed their events in their own schemas.
    for (service, pool) in [
        ("conversation", &p.conversation.pool),
        ("routing", &p.routers[0].pool),
        ("notification", &p.notification.pool),
        ("automation", &p.automation.pool),
    ] {
        let consumed = eventually(Duration::from_secs(15), || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox")
                .fetch_one(pool)
                .await
                .expect("its own inbox");
            (n > 0).then_some(n)
        })
        .await;
        assert!(consumed.is_some(), "{service} consumed events");
    }

    // And nothing else: no other schema, no new schema, nothing in public.
    for service in SERVICES {
        let mut conn = sqlx::PgConnection::connect(&url(service))
            .await
            .expect("connect as the role");
        let mut forbidden = vec![
            "CREATE TABLE public.sneaky (x int)".to_string(),
            "CREATE SCHEMA sneaky".to_string(),
        ];
        for other in SERVICES.iter().filter(|o| **o != service) {
            forbidden.extend([
                format!("SELECT count(*) FROM {other}.outbox"),
                format!(
                    "INSERT INTO {other}.inbox (consumer, event_id, subject) VALUES ('x', 'y', 'z')"
                ),
                format!("CREATE TABLE {other}.sneaky (x int)"),
            ]);
        }
        for statement in forbidden {
            let refused = sqlx::query(&statement)
                .execute(&mut conn)
                .await
                .expect_err(&format!("{service} may not: {statement}"));
            assert_eq!(
                refused
                    .as_database_error()
                    .and_then(|e| e.code())
                    .as_deref(),
                Some("42501"),
                "{service}: {statement}: {refused}"
            );
        }
    }
    p.stop().await;

    // Roles belong to the server: the test's go with it.
    for (role, _) in roles.values() {
        sqlx::query(&format!("DROP OWNED BY {role} CASCADE"))
            .execute(&admin)
            .await
            .expect("drop owned");
        sqlx::query(&format!("DROP ROLE {role}"))
            .execute(&admin)
            .await
            .expect("drop role");
    }
}
