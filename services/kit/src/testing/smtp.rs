//! A real SMTP server for email tests: it speaks enough ESMTP for a client to
//! deliver (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every accepted message,
//! and can answer DATA with a scripted failure.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as sent (headers and body, dot-unstuffed).
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Inner {
    mails: Mutex<Vec<Mail>>,
    /// Answers to the next DATA commands (e.g. `451 4.3.0 try again`), then 250.
    script: Mutex<VecDeque<String>>,
}

/// An SMTP server on 127.0.0.1.
#[derive(Clone)]
pub struct SmtpServer {
    /// Its port.
    pub port: u16,
    inner: Arc<Inner>,
}

impl SmtpServer {
    /// Listens on an ephemeral port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let inner = Arc::new(Inner::default());
        let serving = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inner = serving.clone();
                tokio::spawn(async move {
                    let _ = session(stream, inner).await;
                });
            }
        });
        Self { port, inner }
    }

    /// Answers the next DATA commands with these replies (each a full SMTP reply
    /// line such as `451 4.3.0 try again`), in order; then accepts.
    pub fn fail_next(&self, replies: impl IntoIterator<Item = &'static str>) {
        self.inner
            .script
            .lock()
            .expect("lock")
            .extend(replies.into_iter().map(String::from));
    }

    /// The messages accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.inner.mails.lock().expect("lock").clone()
    }

    /// Waits until `n` messages have been accepted (at most `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.mails();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn session(stream: TcpStream, inner: Arc<Inner>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 localhost ESMTP test\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8".to_string(),
            "HELO" => "250 localhost".into(),
            "MAIL" => {
                from = angle(&command);
                to.clear();
                "250 OK".into()
            }
            "RCPT" => {
                to.push(angle(&command));
                "250 OK".into()
            }
            "DATA" => {
                write.write_all(b"354 end with .\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut l = String::new();
                    if lines.read_line(&mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" || l == ".\n" {
                        break;
                    }
                    let l = l.strip_prefix('.').unwrap_or(&l);
                    data.extend_from_slice(l.as_bytes());
                }
                let scripted = inner.script.lock().expect("lock").pop_front();
                match scripted {
                    Some(reply) => reply,
                    None => {
                        inner.mails.lock().expect("lock").push(Mail {
                            from: from.clone(),
                            to: to.clone(),
                            data,
                        });
                        "250 OK queued".into()
                    }
                }
            }
            "RSET" => {
                from.clear();
                to.clear();
                "250 OK".into()
            }
            "NOOP" => "250 OK".into(),
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 command not implemented".into(),
        };
        write.write_all(reply.as_bytes()).await?;
        write.write_all(b"\r\n").await?;
    }
}

/// The address between angle brackets of `MAIL FROM:<a>` / `RCPT TO:<a>`.
fn angle(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(a), Some(b)) if a < b => command[a + 1..b].to_string(),
        _ => String::new(),
    }
}
