//! The browser front ends, as people use them: `helpdesk up` serves the workbench and
//! the widget (built into `web/dist` by deploy/local/web), and Debian's Chromium, driven
//! by Playwright (`web/e2e/journey.mjs`), plays a visitor, two agents and a supervisor
//! in separate browsers against real NATS and PostgreSQL. What the browsers did is then
//! checked again through the API. Screenshots of each step are kept in
//! `target/browser-shots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use helpdesk_devservers::process::{free_port, port_open};
use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::TestEnv;
use helpdesk_kit::testing::http::Receiver;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{
    ChannelKind, CreateInboxRequest, CsatSurvey, Inbox, ListConversationsRequest,
    ListMessagesRequest,
};
use helpdesk_proto::conversation::v1::{ListInboxesRequest, Message, MessageKind};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{
    Agent, CreateAgentRequest, CreateTeamRequest, GetSettingsRequest, ListAgentsRequest,
    ListTeamsRequest, Team,
};
use helpdesk_proto::ticketing::v1::ListTicketsRequest;
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use helpdesk_tests::platform::authed;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_helpdesk");
const ACCOUNT: &str = "shop";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Debian's Chromium (HELPDESK_CHROMIUM, else the one on PATH).
fn chromium() -> PathBuf {
    let given = std::env::var("HELPDESK_CHROMIUM").unwrap_or_default();
    let path = if given.is_empty() {
        PathBuf::from("/usr/bin/chromium")
    } else {
        PathBuf::from(given)
    };
    assert!(
        path.is_file(),
        "no Chromium at {} (deploy/local/test installs Debian's `chromium`)",
        path.display()
    );
    path
}

/// Five free consecutive ports for the services.
async fn free_base_port() -> u16 {
    loop {
        let port = free_port().expect("port");
        if port >= u16::MAX - 5 {
            continue;
        }
        let mut free = true;
        for p in port + 1..port + 5 {
            free &= !port_open(p).await;
        }
        if free {
            return port;
        }
    }
}

/// `helpdesk up` on the test's servers, serving `web/dist` on `web_port`.
async fn start_platform(env: &TestEnv, data: &Path, base: u16, web_port: u16) -> Child {
    let web_dir = repo().join("web/dist");
    assert!(
        web_dir.join("index.html").is_file() && web_dir.join("widget/widget.js").is_file(),
        "the front ends are not built in {} (deploy/local/web builds them)",
        web_dir.display()
    );
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["up", "--grpc-base-port", &base.to_string()])
        .args(["--admin-port", "0"])
        .args(["--web-port", &web_port.to_string(), "--web-dir"])
        .arg(&web_dir)
        .env("HELPDESK_NATS_URL", &env.nats_url)
        .env("HELPDESK_DATABASE_URL", &env.database_url)
        .env("HELPDESK_JWT_SECRET", &env.jwt_secret)
        .env("HELPDESK_SUBJECT_ROOT", &env.subject_root)
        .env("HELPDESK_STREAM_NAME", &env.stream_name)
        // The admin journey's webhook goes to a receiver on this machine.
        .env("HELPDESK_NOTIFICATION__ALLOW_LOOPBACK_TARGETS", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start helpdesk up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let up = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("workbench") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(up, Ok(true)), "helpdesk up never served the web");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// The shop's inbox (a pre-chat field, a greeting, the survey), one team, two agents.
async fn seed(env: &TestEnv, base: u16) -> Inbox {
    let admin = env.token(ACCOUNT, "owner", Role::Admin);
    let mut conv = ConversationServiceClient::connect(format!("http://127.0.0.1:{base}"))
        .await
        .expect("conversation");
    let mut routing = RoutingServiceClient::connect(format!("http://127.0.0.1:{}", base + 1))
        .await
        .expect("routing");
    let inbox = Inbox {
        name: "Shop chat".into(),
        channel_kind: ChannelKind::WebWidget as i32,
        greeting_message: "Hello! Ask us anything about your order.".into(),
        visitor_attribute_keys: vec!["order_number".into()],
        csat_survey: Some(CsatSurvey {
            enabled: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let inbox = conv
        .create_inbox(authed(CreateInboxRequest { inbox: Some(inbox) }, &admin))
        .await
        .expect("inbox")
        .into_inner();
    let team = routing
        .create_team(authed(
            CreateTeamRequest {
                team: Some(Team {
                    name: "Support".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("team")
        .into_inner();
    for (id, name) in [("ana", "Ana"), ("li", "Li")] {
        routing
            .create_agent(authed(
                CreateAgentRequest {
                    agent: Some(Agent {
                        id: id.into(),
                        name: name.into(),
                        max_chats: 3,
                        team_ids: vec![team.id.clone()],
                        ..Default::default()
                    }),
                },
                &admin,
            ))
            .await
            .expect("agent");
    }
    inbox
}

/// A platform serving the front ends, and the journeys run against it.
struct Browsers {
    env: TestEnv,
    base: u16,
    web_port: u16,
    data: PathBuf,
    chromium: PathBuf,
    _platform: Child,
}

impl Browsers {
    async fn start() -> Self {
        let chromium = chromium();
        let env = TestEnv::new().await;
        let data = std::env::temp_dir().join(format!("hd-browser-{}", uuid::Uuid::new_v4()));
        let (base, web_port) = (free_base_port().await, free_port().expect("port"));
        let platform = start_platform(&env, &data, base, web_port).await;
        Self {
            env,
            base,
            web_port,
            data,
            chromium,
            _platform: platform,
        }
    }

    fn token(&self, subject: &str, role: Role) -> String {
        self.env.token(ACCOUNT, subject, role)
    }

    /// Runs `web/e2e/<script>` with `vars`, its screenshots in
    /// `target/browser-shots/<name>/`; fails the test with its output when it fails.
    async fn run(&self, script: &str, vars: &[(&str, String)]) {
        let name = script.trim_end_matches(".mjs");
        // This run's screenshots only.
        let shots = repo().join("target/browser-shots").join(name);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("screenshot folder");
        let mut cmd = Command::new("node");
        cmd.arg(repo().join("web/e2e").join(script))
            .current_dir(repo().join("web"))
            .env("HD_WEB", format!("http://127.0.0.1:{}/", self.web_port))
            .env("HD_CHROMIUM", &self.chromium)
            .env("HD_SHOTS", &shots)
            .env("HD_ACCOUNT", ACCOUNT)
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
            .await
            .expect("the browser journey finished within 5 minutes")
            .expect("run node");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("{log}");
        assert!(
            out.status.success(),
            "the browser journey {name} failed:\n{log}"
        );
    }

    async fn conversations(&self) -> ConversationServiceClient<tonic::transport::Channel> {
        ConversationServiceClient::connect(format!("http://127.0.0.1:{}", self.base))
            .await
            .expect("conversation")
    }

    /// A conversation's messages (its first 200), as staff read them.
    async fn messages(&self, conversation_id: &str) -> Vec<Message> {
        self.conversations()
            .await
            .list_messages(authed(
                ListMessagesRequest {
                    conversation_id: conversation_id.into(),
                    page_size: 200,
                    ..Default::default()
                },
                &self.token("owner", Role::Admin),
            ))
            .await
            .expect("messages")
            .into_inner()
            .messages
    }
}

impl Drop for Browsers {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_visitor_two_agents_and_a_supervisor_work_a_chat_in_real_browsers() {
    let b = Browsers::start().await;
    let inbox = seed(&b.env, b.base).await;
    b.run(
        "journey.mjs",
        &[
            ("HD_INBOX_KEY", inbox.public_key.clone()),
            ("HD_TOKEN_ANA", b.token("ana", Role::Agent)),
            ("HD_TOKEN_LI", b.token("li", Role::Agent)),
            ("HD_TOKEN_SUPERVISOR", b.token("sam", Role::Supervisor)),
        ],
    )
    .await;

    // What the browsers did, read back through the API.
    let admin = b.token("owner", Role::Admin);
    let mut conv = b.conversations().await;
    let conversations = conv
        .list_conversations(authed(ListConversationsRequest::default(), &admin))
        .await
        .expect("list")
        .into_inner()
        .conversations;
    assert_eq!(conversations.len(), 1, "one chat was started");
    let chat = &conversations[0];
    assert_eq!(
        chat.custom_attributes
            .get("order_number")
            .map(String::as_str),
        Some("A-1042"),
        "the pre-chat form's field is on the conversation"
    );
    assert_eq!(chat.csat_rating, 5, "the visitor's rating was stored");
    let messages = b.messages(&chat.id).await;
    let said = |kind: ActorKind, text: &str| {
        messages.iter().any(|m| {
            m.sender.as_ref().is_some_and(|s| s.kind == kind as i32) && m.content.contains(text)
        })
    };
    assert!(said(ActorKind::Contact, "Where is my parcel?"));
    assert!(said(ActorKind::Agent, "Let me check that for you"));
    assert!(said(ActorKind::Agent, "I have opened a ticket"));
    let mut tickets = TicketingServiceClient::connect(format!("http://127.0.0.1:{}", b.base + 2))
        .await
        .expect("ticketing");
    let made = tickets
        .list_tickets(authed(ListTicketsRequest::default(), &admin))
        .await
        .expect("tickets")
        .into_inner()
        .tickets;
    assert_eq!(made.len(), 1, "one ticket was created from the chat");
    assert_eq!(made[0].conversation_ids, vec![chat.id.clone()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_sets_up_the_shop_and_agents_work_it_in_real_browsers() {
    let b = Browsers::start().await;
    let receiver = Receiver::start().await;
    b.run(
        "admin.mjs",
        &[
            ("HD_TOKEN_ADMIN", b.token("owner", Role::Admin)),
            ("HD_TOKEN_ANA", b.token("ana", Role::Agent)),
            ("HD_TOKEN_LI", b.token("li", Role::Agent)),
            ("HD_WEBHOOK_URL", receiver.url.clone()),
        ],
    )
    .await;

    // What the admin's pages made, read back through the API.
    let admin = b.token("owner", Role::Admin);
    let mut routing = RoutingServiceClient::connect(format!("http://127.0.0.1:{}", b.base + 1))
        .await
        .expect("routing");
    let teams = routing
        .list_teams(authed(ListTeamsRequest::default(), &admin))
        .await
        .expect("teams")
        .into_inner()
        .teams;
    let billing = teams
        .iter()
        .find(|t| t.name == "Billing")
        .expect("the team made on the Teams page");
    let agents = routing
        .list_agents(authed(ListAgentsRequest::default(), &admin))
        .await
        .expect("agents")
        .into_inner()
        .agents;
    for id in ["ana", "li"] {
        let agent = agents
            .iter()
            .find(|a| a.id == id)
            .expect("the agent made on the Agents page");
        assert_eq!(agent.team_ids, vec![billing.id.clone()]);
        assert_eq!(agent.max_chats, 2);
    }
    let settings = routing
        .get_settings(authed(GetSettingsRequest::default(), &admin))
        .await
        .expect("settings")
        .into_inner();
    assert!(
        settings.pooled_mode,
        "pooled mode saved on the Routing page"
    );
    let mut conv = b.conversations().await;
    let inboxes = conv
        .list_inboxes(authed(ListInboxesRequest::default(), &admin))
        .await
        .expect("inboxes")
        .into_inner()
        .inboxes;
    let inbox = inboxes
        .iter()
        .find(|i| i.name == "Help centre")
        .expect("the inbox made on the Inboxes page");
    assert_eq!(inbox.visitor_attribute_keys, ["order_number"]);

    // The chat the visitor started, picked by Ana, tagged by the rule.
    let chats = conv
        .list_conversations(authed(ListConversationsRequest::default(), &admin))
        .await
        .expect("conversations")
        .into_inner()
        .conversations;
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].assignee_id, "ana", "picked from the queue");
    assert!(
        chats[0].labels.contains(&"refund".to_string()),
        "the rule's label"
    );
    let notes = b.messages(&chats[0].id).await;
    assert!(
        notes
            .iter()
            .any(|m| m.kind == MessageKind::Note as i32 && m.content.contains("@li")),
        "Ana's note mentioning Li"
    );

    // The webhook endpoint made on the Webhooks page received the chat's events,
    // one of them twice (redelivered from the delivery log).
    let received = receiver.received();
    let types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        types.iter().any(|t| t.contains("conversation.created")),
        "{types:?}"
    );
    let mut ids: Vec<&str> = received.iter().map(|r| r.header("webhook-id")).collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert!(ids.len() < all, "a redelivery repeats its webhook-id");
}
