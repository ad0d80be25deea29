//! A PostgreSQL server owned by one test.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::{self, Lifetime, ServerProcess};

/// A PostgreSQL server owned by one test, so the test can stop it and start it again.
pub struct PrivatePostgres {
    dir: PathBuf,
    process: Option<ServerProcess>,
    port: u16,
}

impl PrivatePostgres {
    /// Starts a server (fsync off) on a free port.
    pub async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("helpdesk-pg-{}", uuid::Uuid::new_v4().simple()));
        let process = process::start_postgres(&dir, 0, Lifetime::Owned, false)
            .await
            .expect("start private postgres");
        Self {
            port: process.port,
            dir,
            process: Some(process),
        }
    }

    /// URL of its `postgres` database (stable across restarts).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (its data stays).
    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
    }

    /// Starts it again on the same port with the same data.
    pub async fn start_again(&mut self) {
        self.stop().await;
        for attempt in 0..50 {
            match process::start_postgres(&self.dir, self.port, Lifetime::Owned, false).await {
                Ok(p) => {
                    self.process = Some(p);
                    return;
                }
                Err(e) if attempt == 49 => panic!("start postgres again: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

impl Drop for PrivatePostgres {
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
