//! The platform in one test process: the conversation service, any number of routing
//! replicas, the ticketing, automation and notification services on one test
//! environment (one database, one stream).

use std::future::Future;
use std::time::Duration;

use helpdesk_automation::{Automation, AutomationSettings};
use helpdesk_conversation::Conversation as ConversationService;
use helpdesk_kit::Service as _;
use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::{Spawned, TestEnv, spawn};
use helpdesk_notification::{Notification, NotificationSettings};
use helpdesk_proto::automation::v1::ListRulesRequest;
use helpdesk_proto::automation::v1::automation_service_client::AutomationServiceClient;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::*;
use helpdesk_proto::notification::v1::ListEndpointsRequest;
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{
    Agent, CreateAgentRequest, CreateTeamRequest, ListAgentsRequest, Presence, RoutingSettings,
    SetPresenceRequest, Skill, Team, UpdateSettingsRequest,
};
use helpdesk_proto::ticketing::v1::ListTicketsRequest;
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use helpdesk_routing::Routing;
use helpdesk_ticketing::{Ticketing, TicketingSettings};
use tonic::Request;
use tonic::transport::Channel;

/// The account the scenarios use.
pub const ACCOUNT: &str = "acme";

/// Conversation service + routing replicas + ticketing + automation + notification.
pub struct Platform {
    pub env: TestEnv,
    pub conversation: Spawned,
    pub routers: Vec<Spawned>,
    /// The ticketing service (one replica).
    pub ticketing: Vec<Spawned>,
    /// The notification service (loopback receivers allowed, retries within seconds).
    pub notification: Spawned,
    /// The automation service (delayed runs looked for every 100 ms).
    pub automation: Spawned,
}

/// A channel to `127.0.0.1:port` that connects on first use (so that it can be made
/// while the service is unreachable).
pub fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("url")
        .connect_lazy()
}

/// Wraps `msg` with a bearer token.
pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// Polls `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    helpdesk_kit::testing::eventually(limit, check).await
}

impl Platform {
    /// Starts the conversation service and `routers` routing replicas.
    pub async fn start(routers: usize) -> Self {
        Self::start_with(routers, |_| {}).await
    }

    /// Like [`Platform::start`], adjusting the services' configuration first.
    pub async fn start_with(
        routers: usize,
        tune: impl Fn(&mut helpdesk_kit::config::ServiceConfig),
    ) -> Self {
        Self::start_in(TestEnv::new().await, routers, tune).await
    }

    /// Like [`Platform::start_with`], on `env` (e.g. one on a test's own NATS server).
    pub async fn start_in(
        env: TestEnv,
        routers: usize,
        tune: impl Fn(&mut helpdesk_kit::config::ServiceConfig),
    ) -> Self {
        Self::start_each(env, routers, |_, config| tune(config)).await
    }

    /// Like [`Platform::start_in`], adjusting each service's configuration by its
    /// name (`conversation`, `routing`, …).
    pub async fn start_each(
        env: TestEnv,
        routers: usize,
        tune: impl Fn(&str, &mut helpdesk_kit::config::ServiceConfig),
    ) -> Self {
        let config = |service: &str| {
            let mut config = env.service_config();
            config.database_max_connections = 20;
            tune(service, &mut config);
            config
        };
        let conversation = spawn::<ConversationService>(config(ConversationService::NAME)).await;
        let mut running = Vec::new();
        for _ in 0..routers {
            running.push(spawn::<Routing>(config(Routing::NAME)).await);
        }
        let ticketing = vec![spawn::<Ticketing>(config(Ticketing::NAME)).await];
        let notification = helpdesk_kit::testing::spawn_with::<Notification>(
            config(Notification::NAME),
            NotificationSettings {
                retry_schedule_seconds: vec![0.0, 1.0, 2.0, 5.0],
                allow_loopback_targets: true,
                ..Default::default()
            },
        )
        .await;
        let automation = helpdesk_kit::testing::spawn_with::<Automation>(
            config(Automation::NAME),
            AutomationSettings {
                poll_interval_ms: 100,
                ..Default::default()
            },
        )
        .await;
        Self {
            env,
            conversation,
            routers: running,
            ticketing,
            notification,
            automation,
        }
    }

    /// Stops the notification service and starts it again with `settings` (same
    /// database and subjects; loopback receivers allowed).
    pub async fn restart_notification(&mut self, settings: NotificationSettings) {
        let new = helpdesk_kit::testing::spawn_with::<Notification>(
            self.config(),
            NotificationSettings {
                allow_loopback_targets: true,
                ..settings
            },
        )
        .await;
        std::mem::replace(&mut self.notification, new).stop().await;
    }

    fn config(&self) -> helpdesk_kit::config::ServiceConfig {
        let mut config = self.env.service_config();
        config.database_max_connections = 20;
        config
    }

    /// Stops the ticketing service, waits `pause`, and starts it again with
    /// `settings` (same database and subjects), as a restart of that process.
    pub async fn restart_ticketing(&mut self, settings: TicketingSettings, pause: Duration) {
        for t in self.ticketing.drain(..) {
            t.stop().await;
        }
        tokio::time::sleep(pause).await;
        let config = self.config();
        self.ticketing
            .push(helpdesk_kit::testing::spawn_with::<Ticketing>(config, settings).await);
    }

    /// A ticketing client.
    pub async fn tickets(&self) -> TicketingServiceClient<Channel> {
        TicketingServiceClient::connect(format!("http://127.0.0.1:{}", self.ticketing[0].port))
            .await
            .expect("connect")
    }

    /// Stops routing replica `i` and starts a new one in its place (same database and
    /// subjects), as a restart of that process.
    pub async fn restart_router(&mut self, i: usize) {
        let old = self.routers.remove(i);
        old.stop().await;
        let config = self.config();
        self.routers.insert(i, spawn::<Routing>(config).await);
    }

    /// A notification client.
    pub async fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::connect(self.notification.url())
            .await
            .expect("connect")
    }

    /// An automation client.
    pub async fn automation(&self) -> AutomationServiceClient<Channel> {
        AutomationServiceClient::connect(self.automation.url())
            .await
            .expect("connect")
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.automation.stop().await;
        self.notification.stop().await;
        for t in self.ticketing {
            t.stop().await;
        }
        for r in self.routers {
            r.stop().await;
        }
        self.conversation.stop().await;
    }

    /// The five services' ports, named (routing's first replica, ticketing's first).
    pub fn ports(&self) -> [(&'static str, u16); 5] {
        [
            ("conversation", self.conversation.port),
            ("routing", self.routers[0].port),
            ("ticketing", self.ticketing[0].port),
            ("automation", self.automation.port),
            ("notification", self.notification.port),
        ]
    }

    /// One call of each service that needs its database (a read, and routing's a write),
    /// answered with its code and how long it took.
    pub async fn one_call_each(&self) -> Vec<(&'static str, tonic::Code, Duration)> {
        async fn timed<T>(
            name: &'static str,
            call: impl Future<Output = Result<T, tonic::Status>>,
        ) -> (&'static str, tonic::Code, Duration) {
            let started = std::time::Instant::now();
            let code = call.await.err().map_or(tonic::Code::Ok, |s| s.code());
            (name, code, started.elapsed())
        }
        let admin = self.admin();
        let team = CreateTeamRequest {
            team: Some(Team {
                name: format!("t-{}", uuid::Uuid::now_v7().simple()),
                ..Default::default()
            }),
        };
        let mut routing = RoutingServiceClient::new(channel(self.routers[0].port));
        vec![
            timed(
                "conversation",
                ConversationServiceClient::new(channel(self.conversation.port))
                    .list_inboxes(authed(ListInboxesRequest::default(), &admin)),
            )
            .await,
            timed("routing", routing.create_team(authed(team, &admin))).await,
            timed(
                "routing",
                routing.list_agents(authed(ListAgentsRequest::default(), &admin)),
            )
            .await,
            timed(
                "ticketing",
                TicketingServiceClient::new(channel(self.ticketing[0].port))
                    .list_tickets(authed(ListTicketsRequest::default(), &admin)),
            )
            .await,
            timed(
                "automation",
                AutomationServiceClient::new(channel(self.automation.port))
                    .list_rules(authed(ListRulesRequest::default(), &admin)),
            )
            .await,
            timed(
                "notification",
                NotificationServiceClient::new(channel(self.notification.port))
                    .list_endpoints(authed(ListEndpointsRequest::default(), &admin)),
            )
            .await,
        ]
    }

    /// A conversation client.
    pub async fn conv(&self) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::connect(format!("http://127.0.0.1:{}", self.conversation.port))
            .await
            .expect("connect")
    }

    /// A client of routing replica `i`.
    pub async fn routing(&self, i: usize) -> RoutingServiceClient<Channel> {
        RoutingServiceClient::connect(format!("http://127.0.0.1:{}", self.routers[i].port))
            .await
            .expect("connect")
    }

    /// A token in [`ACCOUNT`].
    pub fn token(&self, subject: &str, role: Role) -> String {
        self.env.token(ACCOUNT, subject, role)
    }

    /// An admin token.
    pub fn admin(&self) -> String {
        self.token("admin", Role::Admin)
    }

    /// A supervisor token.
    pub fn supervisor(&self) -> String {
        self.token("sup", Role::Supervisor)
    }

    /// Creates a team.
    pub async fn team(&self, name: &str) -> Team {
        self.routing(0)
            .await
            .create_team(authed(
                CreateTeamRequest {
                    team: Some(Team {
                        name: name.into(),
                        ..Default::default()
                    }),
                },
                &self.admin(),
            ))
            .await
            .expect("create team")
            .into_inner()
    }

    /// Creates an agent (offline).
    pub async fn agent(
        &self,
        id: &str,
        max_chats: i32,
        teams: &[&Team],
        skills: &[(&str, i32)],
    ) -> Agent {
        let agent = Agent {
            id: id.into(),
            name: format!("Agent {id}"),
            max_chats,
            team_ids: teams.iter().map(|t| t.id.clone()).collect(),
            skills: skills
                .iter()
                .map(|(n, l)| Skill {
                    name: (*n).into(),
                    level: *l,
                })
                .collect(),
            ..Default::default()
        };
        self.routing(0)
            .await
            .create_agent(authed(
                CreateAgentRequest { agent: Some(agent) },
                &self.admin(),
            ))
            .await
            .expect("create agent")
            .into_inner()
    }

    /// Sets an agent's presence (as the agent).
    pub async fn presence(&self, id: &str, presence: Presence) {
        self.routing(0)
            .await
            .set_presence(authed(
                SetPresenceRequest {
                    agent_id: String::new(),
                    presence: presence as i32,
                },
                &self.token(id, Role::Agent),
            ))
            .await
            .expect("set presence");
    }

    /// Creates a web-widget inbox.
    pub async fn inbox(&self) -> Inbox {
        let inbox = Inbox {
            name: "Web".into(),
            channel_kind: ChannelKind::WebWidget as i32,
            ..Default::default()
        };
        self.conv()
            .await
            .create_inbox(authed(
                CreateInboxRequest { inbox: Some(inbox) },
                &self.admin(),
            ))
            .await
            .expect("inbox")
            .into_inner()
    }

    /// A visitor starts a chat; returns (conversation id, visitor token). A visitor
    /// with contact attributes is a signed-in customer: its external id carries the
    /// identity hash the customer's backend computes with the inbox's secret.
    pub async fn chat(
        &self,
        inbox: &Inbox,
        first: &str,
        attributes: &[(&str, &str)],
    ) -> (String, String) {
        let contact = Contact {
            name: "Visitor".into(),
            custom_attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        self.chat_as(inbox, first, contact, !attributes.is_empty())
            .await
    }

    /// A visitor starts a chat as `contact`, `signed` in (then the contact's details
    /// count as proven); returns (conversation id, visitor token).
    pub async fn chat_as(
        &self,
        inbox: &Inbox,
        first: &str,
        mut contact: Contact,
        signed: bool,
    ) -> (String, String) {
        let mut identity_hash = String::new();
        if signed {
            use hmac::Mac;
            contact.external_id = format!("customer-{}", uuid::Uuid::now_v7());
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(inbox.identity_secret.as_bytes())
                    .expect("any key length");
            mac.update(contact.external_id.as_bytes());
            identity_hash = mac
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
        }
        let started = self
            .conv()
            .await
            .start_conversation(Request::new(StartConversationRequest {
                inbox_public_key: inbox.public_key.clone(),
                contact: Some(contact),
                initial_message: first.into(),
                identity_hash,
                ..Default::default()
            }))
            .await
            .expect("start chat")
            .into_inner();
        (
            started.conversation.map(|c| c.id).unwrap_or_default(),
            started.visitor_token,
        )
    }

    /// Sets a conversation's status as a supervisor.
    pub async fn set_status(&self, conversation: &str, status: ConversationStatus) {
        self.conv()
            .await
            .set_status(authed(
                SetStatusRequest {
                    conversation_id: conversation.into(),
                    status: status as i32,
                    ..Default::default()
                },
                &self.supervisor(),
            ))
            .await
            .expect("set status");
    }

    /// The routing agent currently assigned, from routing's own state.
    pub async fn assignee(&self, conversation: &str) -> Option<String> {
        sqlx::query_scalar("SELECT agent_id FROM assignments WHERE conversation_id = $1::uuid")
            .bind(conversation)
            .fetch_optional(&self.routers[0].pool)
            .await
            .expect("query")
    }

    /// Waits until routing has assigned the conversation; returns the agent.
    pub async fn wait_assigned(&self, conversation: &str, limit: Duration) -> Option<String> {
        eventually(limit, || self.assignee(conversation)).await
    }

    /// True when the conversation is in routing's queue.
    pub async fn is_queued(&self, conversation: &str) -> bool {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM queue WHERE conversation_id = $1::uuid")
                .bind(conversation)
                .fetch_one(&self.routers[0].pool)
                .await
                .expect("query");
        n == 1
    }

    /// Replaces the account's routing settings (as an admin).
    pub async fn settings(&self, settings: RoutingSettings) {
        self.routing(0)
            .await
            .update_settings(authed(
                UpdateSettingsRequest {
                    settings: Some(settings),
                },
                &self.admin(),
            ))
            .await
            .expect("settings");
    }

    /// Waits until exactly `n` chats wait in the queue; whether they did within `limit`.
    pub async fn wait_queue_length(&self, n: usize, limit: Duration) -> bool {
        eventually(limit, || async {
            let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM queue")
                .fetch_one(&self.routers[0].pool)
                .await
                .ok()?;
            (usize::try_from(waiting).ok()? == n).then_some(())
        })
        .await
        .is_some()
    }

    /// The conversation as the conversation service has it.
    pub async fn conversation(&self, id: &str) -> Conversation {
        self.conv()
            .await
            .get_conversation(authed(
                GetConversationRequest { id: id.into() },
                &self.supervisor(),
            ))
            .await
            .expect("get conversation")
            .into_inner()
    }

    /// All the conversation's messages as `token` (a visitor's, or staff) reads them,
    /// page after page; what was read before a call failed.
    pub async fn transcript(&self, conversation: &str, token: &str) -> Vec<Message> {
        let mut client = self.conv().await;
        let (mut all, mut page_token) = (Vec::new(), String::new());
        loop {
            let page = client
                .list_messages(authed(
                    ListMessagesRequest {
                        conversation_id: conversation.into(),
                        page_size: 100,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(|r| r.into_inner());
            let Ok(page) = page else { return all };
            all.extend(page.messages);
            if page.next_page_token.is_empty() {
                return all;
            }
            page_token = page.next_page_token;
        }
    }

    /// Waits for the "You are number N in the queue" line of a queued conversation and
    /// returns N.
    pub async fn told_position(
        &self,
        conversation: &str,
        token: &str,
        within: Duration,
    ) -> Option<i32> {
        eventually(within, || async {
            self.transcript(conversation, token)
                .await
                .iter()
                .find_map(|m| {
                    m.content
                        .strip_prefix("You are number ")?
                        .split(' ')
                        .next()?
                        .parse()
                        .ok()
                })
        })
        .await
    }
}
