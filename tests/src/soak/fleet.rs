//! The service processes: started, killed, started again, stopped.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use super::{REPLICAS, SERVICES};

/// A service binary built next to the running program (`target/<profile>/`).
fn binary(service: &str) -> anyhow::Result<PathBuf> {
    let name = format!("helpdesk-{service}");
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(2) {
        let candidate = dir.join(&name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "{name} is not built next to {} (cargo build --bins builds it)",
        exe.display()
    )
}

/// One service process.
pub(super) struct Process {
    service: &'static str,
    port: u16,
    /// Its admin port (`/metrics`).
    admin: u16,
    child: Option<Child>,
}

/// Every service process, with what they share.
pub(super) struct Fleet {
    pub(super) processes: Vec<Process>,
    env: Vec<(String, String)>,
    logs: PathBuf,
}

impl Fleet {
    fn start_one(&self, p: &mut Process, replica: usize) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{}-{replica}.log", p.service)))?;
        let child = Command::new(binary(p.service)?)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HELPDESK_GRPC_ADDR", format!("127.0.0.1:{}", p.port))
            .env("HELPDESK_ADMIN_ADDR", format!("127.0.0.1:{}", p.admin))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", p.service))?;
        p.child = Some(child);
        Ok(())
    }

    pub(super) async fn start(env: Vec<(String, String)>) -> anyhow::Result<Self> {
        let logs = std::env::temp_dir().join(format!("helpdesk-soak-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&logs)?;
        let mut fleet = Self {
            processes: Vec::new(),
            env,
            logs,
        };
        let mut taken = HashSet::new();
        for service in SERVICES {
            for replica in 0..REPLICAS {
                let mut free = || loop {
                    let port = helpdesk_devservers::process::free_port()?;
                    if taken.insert(port) {
                        return anyhow::Ok(port);
                    }
                };
                let mut p = Process {
                    service,
                    port: free()?,
                    admin: free()?,
                    child: None,
                };
                fleet.start_one(&mut p, replica)?;
                fleet.processes.push(p);
                // Replicas of a service race on their schema's migrations: let them.
            }
        }
        for p in &fleet.processes {
            wait_serving(p.port, Duration::from_secs(120))
                .await
                .with_context(|| {
                    format!(
                        "{} on {} never served (logs in {})",
                        p.service,
                        p.port,
                        fleet.logs.display()
                    )
                })?;
        }
        Ok(fleet)
    }

    /// Every process's metrics, as Prometheus' own parser reads them, summed over the
    /// processes: `(sample name, sorted labels) → value`.
    pub(super) async fn metrics(&self) -> anyhow::Result<HashMap<(String, String), f64>> {
        let mut sums = HashMap::new();
        for p in &self.processes {
            let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", p.admin))
                .await?
                .text()
                .await?;
            for s in crate::prometheus_text::parse(&text) {
                let mut labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                labels.sort();
                *sums.entry((s.name.clone(), labels.join(","))).or_default() += s.number();
            }
        }
        Ok(sums)
    }

    /// The ports of `service`'s processes.
    pub(super) fn ports(&self, service: &str) -> Vec<u16> {
        self.processes
            .iter()
            .filter(|p| p.service == service)
            .map(|p| p.port)
            .collect()
    }

    /// Kills `service`'s `replica` with SIGKILL, then starts it again after `pause`.
    pub(super) async fn kill_and_restart(
        &mut self,
        service: &str,
        replica: usize,
        pause: Duration,
    ) -> anyhow::Result<()> {
        let index = self
            .processes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.service == service)
            .nth(replica)
            .map(|(i, _)| i)
            .context("no such process")?;
        if let Some(mut child) = self.processes[index].child.take() {
            child.start_kill()?;
            let _ = child.wait().await;
        }
        tokio::time::sleep(pause).await;
        let mut p = Process {
            service: self.processes[index].service,
            port: self.processes[index].port,
            admin: self.processes[index].admin,
            child: None,
        };
        self.start_one(&mut p, replica)?;
        let port = p.port;
        self.processes[index] = p;
        wait_serving(port, Duration::from_secs(60)).await
    }

    pub(super) async fn stop(mut self) {
        for p in &mut self.processes {
            if let Some(child) = p.child.as_mut()
                && let Some(pid) = child.id()
            {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for p in &mut self.processes {
            if let Some(mut child) = p.child.take() {
                let _ = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}

pub(super) async fn wait_serving(port: u16, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let channel = channel(port);
        let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(2),
            client.check(tonic_health::pb::HealthCheckRequest::default()),
        )
        .await
            && r.into_inner().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "not serving on {port}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(super) fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("a URL")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}
