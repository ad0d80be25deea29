//! The test servers: `HELPDESK_TEST_NATS_URL` / `HELPDESK_TEST_DATABASE_URL` when
//! set; otherwise one private `nats-server` and PostgreSQL per machine user (under
//! the temp dir, guarded by a file lock) that every test process shares and reuses.

use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::process::{self, Lifetime, ServerError, ServerProcess};

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

/// Where the tests' NATS and PostgreSQL servers listen.
#[derive(Debug, Clone)]
pub struct Servers {
    /// NATS client URL.
    pub nats_url: String,
    /// PostgreSQL URL of the server's `postgres` database (user `postgres`).
    pub postgres_url: String,
}

static SERVERS: OnceCell<Servers> = OnceCell::const_new();

/// The test servers, found or started once per process. A variable that is set
/// replaces its half of the shared pair.
pub async fn shared_servers() -> Result<&'static Servers, ServerError> {
    SERVERS
        .get_or_try_init(|| async {
            let nats = std::env::var("HELPDESK_TEST_NATS_URL")
                .ok()
                .filter(|s| !s.is_empty());
            let pg = std::env::var("HELPDESK_TEST_DATABASE_URL")
                .ok()
                .filter(|s| !s.is_empty());
            if let (Some(nats_url), Some(postgres_url)) = (nats.clone(), pg.clone()) {
                return Ok(Servers {
                    nats_url,
                    postgres_url,
                });
            }
            let shared = start_shared().await?;
            Ok(Servers {
                nats_url: nats.unwrap_or(shared.nats_url),
                postgres_url: pg.unwrap_or(shared.postgres_url),
            })
        })
        .await
}

/// A NATS and a PostgreSQL server owned by this process, in a folder of their own:
/// stopped by [`OwnedServers::stop`], and by the system when the process dies (even of
/// SIGKILL). Tools run by hand (`loadgen`, `routebench`) use these rather than the
/// shared test servers, so that they leave nothing running.
#[derive(Debug)]
pub struct OwnedServers {
    nats: ServerProcess,
    postgres: ServerProcess,
    dir: PathBuf,
}

impl OwnedServers {
    /// Starts both (PostgreSQL with fsync off, like the test servers) and makes them
    /// the test servers of this process: call before any test environment is made.
    pub async fn start() -> Result<Self, ServerError> {
        let dir = std::env::temp_dir().join(format!("helpdesk-tool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut nats = process::start_nats(&dir.join("nats"), 0, Lifetime::Owned).await?;
        let pg_dir = process::postgres_data_dir(&dir).await;
        let postgres = match process::start_postgres(&pg_dir, 0, Lifetime::Owned, false).await {
            Ok(pg) => pg,
            Err(e) => {
                nats.stop().await;
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let servers = Servers {
            nats_url: nats.url.clone(),
            postgres_url: postgres.url.clone(),
        };
        SERVERS
            .set(servers)
            .map_err(|_| ServerError::Start("test servers were already chosen".into()))?;
        Ok(Self {
            nats,
            postgres,
            dir,
        })
    }

    /// The process ids of NATS and PostgreSQL.
    pub fn pids(&self) -> (u32, u32) {
        (self.nats.pid, self.postgres.pid)
    }

    /// Stops both and removes their folder.
    pub async fn stop(mut self) {
        self.nats.stop().await;
        self.postgres.stop().await;
        let pg_dir = process::postgres_data_dir(&self.dir).await;
        let _ = std::fs::remove_dir_all(&pg_dir);
        // A cluster kept out of the folder (root and `/root`) has a folder of its own.
        if let Some(own) = pg_dir.parent().filter(|p| *p != self.dir) {
            let _ = std::fs::remove_dir_all(own);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_shared() -> Result<Servers, ServerError> {
    let dir = shared_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| ServerError::Start(format!("{}: {e}", dir.display())))?;
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
    .map_err(|e| ServerError::Start(e.to_string()))?
    .map_err(|e| ServerError::Start(format!("locking test server dir: {e}")))?;

    let state_path = dir.join("ports");
    let saved = std::fs::read_to_string(&state_path).ok().and_then(|s| {
        let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
        Some((it.next()??, it.next()??))
    });
    let result = match saved {
        Some((nats, pg)) if process::port_open(nats).await && process::port_open(pg).await => {
            Ok(Servers {
                nats_url: format!("nats://127.0.0.1:{nats}"),
                postgres_url: format!("postgres://postgres@127.0.0.1:{pg}/postgres"),
            })
        }
        _ => {
            let _ = std::fs::remove_dir_all(dir.join("nats"));
            let _ = std::fs::remove_dir_all(dir.join("postgres"));
            let mut nats = process::start_nats(&dir.join("nats"), 0, Lifetime::Detached).await?;
            let started =
                process::start_postgres(&dir.join("postgres"), 0, Lifetime::Detached, false).await;
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
