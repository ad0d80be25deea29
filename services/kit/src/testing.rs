//! Test support: real NATS and PostgreSQL for every test.
//!
//! Uses `HELPDESK_TEST_NATS_URL` / `HELPDESK_TEST_DATABASE_URL` when set; otherwise
//! starts one private `nats-server` and PostgreSQL per machine user (under the temp
//! dir, guarded by a file lock) that every test process shares and reuses. Each
//! [`TestEnv`] gets its own database and its own subject root and stream, so tests
//! run in parallel without seeing each other.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::auth::{Claims, JwtKeys, Role};
use crate::config::ServiceConfig;
use crate::infra::{self, Lifetime, ServerProcess};

/// Where the shared private servers live: `HELPDESK_TEST_SERVERS_DIR` (each
/// `deploy/local/test` run uses its own), else one folder per machine user.
pub fn shared_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    if let Some(dir) = std::env::var_os("HELPDESK_TEST_SERVERS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("helpdesk-test-servers-{uid}"))
}

#[derive(Debug, Clone)]
struct Servers {
    nats_url: String,
    postgres_url: String,
}

static SERVERS: OnceCell<Servers> = OnceCell::const_new();

async fn servers() -> &'static Servers {
    SERVERS
        .get_or_init(|| async {
            let nats = std::env::var("HELPDESK_TEST_NATS_URL")
                .ok()
                .filter(|s| !s.is_empty());
            let pg = std::env::var("HELPDESK_TEST_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty());
            if let (Some(nats_url), Some(postgres_url)) = (nats.clone(), pg.clone()) {
                return Servers {
                    nats_url,
                    postgres_url,
                };
            }
            let shared = start_shared()
                .await
                .unwrap_or_else(|e| panic!("test servers: {e}"));
            Servers {
                nats_url: nats.unwrap_or(shared.nats_url),
                postgres_url: pg.unwrap_or(shared.postgres_url),
            }
        })
        .await
}

async fn start_shared() -> Result<Servers, infra::InfraError> {
    let dir = shared_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| infra::InfraError::Start(format!("{}: {e}", dir.display())))?;
    let lock_path = dir.join("lock");
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| infra::InfraError::Start(e.to_string()))?
    .map_err(|e| infra::InfraError::Start(format!("locking test server dir: {e}")))?;

    let state_path = dir.join("ports");
    let saved = std::fs::read_to_string(&state_path).ok().and_then(|s| {
        let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
        Some((it.next()??, it.next()??))
    });
    let result = match saved {
        Some((nats, pg)) if infra::port_open(nats).await && infra::port_open(pg).await => {
            Ok(Servers {
                nats_url: format!("nats://127.0.0.1:{nats}"),
                postgres_url: format!("postgres://postgres@127.0.0.1:{pg}/postgres"),
            })
        }
        _ => {
            let _ = std::fs::remove_dir_all(dir.join("nats"));
            let _ = std::fs::remove_dir_all(dir.join("postgres"));
            let mut nats = infra::start_nats(&dir.join("nats"), 0, Lifetime::Detached).await?;
            let started =
                infra::start_postgres(&dir.join("postgres"), 0, Lifetime::Detached, false).await;
            let pg = match started {
                Ok(pg) => pg,
                Err(e) => {
                    // Leave nothing behind: the next test process starts afresh.
                    nats.stop().await;
                    return Err(e);
                }
            };
            let pids = format!("{} {}\n", nats.pid, pg.pid);
            let _ = std::fs::write(dir.join("pids"), pids);
            let _ = std::fs::write(&state_path, format!("{} {}\n", nats.port, pg.port));
            Ok(Servers {
                nats_url: nats.url,
                postgres_url: pg.url,
            })
        }
    };
    drop(lock);
    result
}

/// One test's private slice of the shared servers.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// NATS URL.
    pub nats_url: String,
    /// URL of this test's own database.
    pub database_url: String,
    /// This test's subject root (`t<random>`).
    pub subject_root: String,
    /// This test's stream name.
    pub stream_name: String,
    /// JWT secret shared by the services under test.
    pub jwt_secret: String,
}

impl TestEnv {
    /// A fresh database, subject root and stream name on the shared servers.
    pub async fn new() -> Self {
        let servers = servers().await;
        Self::with_nats(&servers.nats_url).await
    }

    /// Like [`TestEnv::new`] but against the given NATS (a test's own server).
    pub async fn with_nats(nats_url: &str) -> Self {
        let servers = servers().await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let db = format!("hd_{id}");
        let admin = sqlx::PgPool::connect(&servers.postgres_url)
            .await
            .expect("connect to test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let database_url = match servers.postgres_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{db}"),
            None => panic!("test database URL has no database part"),
        };
        Self {
            nats_url: nats_url.to_string(),
            database_url,
            subject_root: format!("t{}", &id[..12]),
            stream_name: format!("T{}_EVENTS", &id[..12]),
            jwt_secret: format!("test-secret-{id}"),
        }
    }

    /// A service configuration for this environment (ephemeral gRPC port, fast polling).
    pub fn service_config(&self) -> ServiceConfig {
        let mut config = ServiceConfig {
            database_url: self.database_url.clone(),
            database_max_connections: 10,
            nats_url: self.nats_url.clone(),
            subject_root: self.subject_root.clone(),
            stream_name: self.stream_name.clone(),
            grpc_addr: "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
            jwt_secret: self.jwt_secret.clone(),
            ..ServiceConfig::default()
        };
        config.outbox.poll_interval_ms = 200;
        config.timers.poll_interval_ms = 100;
        config
    }

    /// Keys for this environment's secret.
    pub fn keys(&self) -> JwtKeys {
        JwtKeys::new(self.jwt_secret.as_bytes())
    }

    /// A signed token valid for an hour.
    pub fn token(&self, account: &str, subject: &str, role: Role) -> String {
        self.keys().mint(&Claims::new(
            account,
            subject,
            role,
            chrono::Duration::hours(1),
        ))
    }

    /// A NATS client for this environment.
    pub async fn nats(&self) -> async_nats::Client {
        async_nats::connect(self.nats_url.as_str())
            .await
            .expect("connect to test NATS")
    }
}

/// A NATS server owned by one test, so the test can stop and restart it.
pub struct PrivateNats {
    dir: PathBuf,
    process: Option<ServerProcess>,
    port: u16,
}

impl PrivateNats {
    /// Starts a server with JetStream on a free port.
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("helpdesk-nats-{}", uuid::Uuid::new_v4().simple()));
        let process = infra::start_nats(&dir, 0, Lifetime::Owned)
            .await
            .expect("start private nats-server");
        Self {
            port: process.port,
            dir,
            process: Some(process),
        }
    }

    /// Client URL (stable across restarts).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (its JetStream data stays).
    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
    }

    /// Starts it again on the same port with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        for attempt in 0..50 {
            match infra::start_nats(&self.dir, self.port, Lifetime::Owned).await {
                Ok(p) => {
                    self.process = Some(p);
                    return;
                }
                Err(e) if attempt == 49 => panic!("restart nats-server: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        if let Some(p) = self.process.as_ref() {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(p.pid.to_string())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` every 50 ms until it returns `Some` or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
