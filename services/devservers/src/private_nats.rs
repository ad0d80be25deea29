//! A NATS server owned by one test.

use std::path::PathBuf;
use std::time::Duration;

use crate::process::{self, Lifetime, ServerProcess};

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
        let process = process::start_nats(&dir, 0, Lifetime::Owned)
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
            match process::start_nats(&self.dir, self.port, Lifetime::Owned).await {
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
