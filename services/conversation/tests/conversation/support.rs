//! `spawn_app()` and helpers shared by the tests.

use helpdesk_conversation::Conversation;
use helpdesk_kit::auth::Role;
use helpdesk_kit::config::ServiceConfig;
pub use helpdesk_kit::testing::stream_events;
use helpdesk_kit::testing::{Spawned, TestEnv, spawn};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::*;
use tonic::Request;
use tonic::transport::Channel;

/// The account most tests use.
pub const ACCOUNT: &str = "acme";

/// A running conversation service on its own database and subjects.
pub struct TestApp {
    pub env: TestEnv,
    pub port: u16,
    pub pool: sqlx::PgPool,
    service: Spawned,
}

/// Starts the service on a fresh test environment.
pub async fn spawn_app() -> TestApp {
    spawn_app_in(TestEnv::new().await).await
}

/// Starts the service on an existing environment (restarts, replicas).
pub async fn spawn_app_in(env: TestEnv) -> TestApp {
    spawn_app_with(env, |_| {}).await
}

/// Starts the service on `env` with its configuration adjusted by `tune`.
pub async fn spawn_app_with(env: TestEnv, tune: impl FnOnce(&mut ServiceConfig)) -> TestApp {
    let mut config = env.service_config();
    tune(&mut config);
    let service = spawn::<Conversation>(config).await;
    TestApp {
        env,
        port: service.port,
        pool: service.pool.clone(),
        service,
    }
}

impl TestApp {
    /// A gRPC client.
    pub async fn client(&self) -> ConversationServiceClient<Channel> {
        ConversationServiceClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("connect")
    }

    /// A token for `subject` with `role` in `account`.
    pub fn token(&self, account: &str, subject: &str, role: Role) -> String {
        self.env.token(account, subject, role)
    }

    /// An admin token of [`ACCOUNT`].
    pub fn admin(&self) -> String {
        self.token(ACCOUNT, "admin-1", Role::Admin)
    }

    /// An agent token of [`ACCOUNT`].
    pub fn agent(&self) -> String {
        self.token(ACCOUNT, "agent-1", Role::Agent)
    }

    /// Stops the service gracefully and waits for it.
    pub async fn stop(self) -> TestEnv {
        self.service.stop().await;
        self.env
    }

    /// Creates a web-widget inbox and returns it.
    pub async fn inbox(&self, greeting: &str, reopen: ReopenPolicy) -> Inbox {
        let inbox = Inbox {
            name: "Website".into(),
            channel_kind: ChannelKind::WebWidget as i32,
            greeting_message: greeting.into(),
            reopen_policy: reopen as i32,
            ..Default::default()
        };
        self.client()
            .await
            .create_inbox(authed(
                CreateInboxRequest { inbox: Some(inbox) },
                &self.admin(),
            ))
            .await
            .expect("create inbox")
            .into_inner()
    }

    /// A visitor starts a chat on `inbox` with a first message.
    pub async fn visitor_starts(&self, inbox: &Inbox, first: &str) -> StartConversationResponse {
        let req = StartConversationRequest {
            inbox_public_key: inbox.public_key.clone(),
            contact: Some(Contact {
                name: "Vera Visitor".into(),
                email: "vera@example.com".into(),
                ..Default::default()
            }),
            device: Some(DeviceInfo {
                os: "Android 15".into(),
                app_version: "3.2.1".into(),
                ..Default::default()
            }),
            initial_message: first.into(),
            ..Default::default()
        };
        self.client()
            .await
            .start_conversation(Request::new(req))
            .await
            .expect("start conversation")
            .into_inner()
    }

    /// Number of rows in a table of the service schema.
    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

/// Wraps `msg` in a request with a bearer token.
pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}
