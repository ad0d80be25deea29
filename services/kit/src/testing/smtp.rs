//! A real SMTP server for email tests: it speaks enough ESMTP for a client to
//! deliver (EHLO, STARTTLS, AUTH PLAIN / LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
//! keeps every accepted message, and can answer DATA with a scripted failure. It can
//! require TLS (STARTTLS, or TLS from the first byte) with a certificate of its own
//! made for 127.0.0.1, and a login.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How the server wants TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text only.
    None,
    /// STARTTLS offered and required before MAIL (and before AUTH).
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

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
    /// Logins that were refused.
    refused_logins: Mutex<usize>,
}

/// How a session is set up.
#[derive(Clone)]
struct Setup {
    tls: SmtpTls,
    acceptor: Option<TlsAcceptor>,
    login: Option<(String, String)>,
}

/// An SMTP server on 127.0.0.1.
#[derive(Clone)]
pub struct SmtpServer {
    /// Its port.
    pub port: u16,
    /// The PEM of its certificate (self-signed, for 127.0.0.1) when it speaks TLS:
    /// the CA a client is to trust.
    pub ca_pem: String,
    inner: Arc<Inner>,
}

impl SmtpServer {
    /// Listens on an ephemeral port, plain text, no login.
    pub async fn start() -> Self {
        Self::start_with(SmtpTls::None, None).await
    }

    /// Listens on an ephemeral port with `tls`, asking for `login` (user, password)
    /// when given.
    pub async fn start_with(tls: SmtpTls, login: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (acceptor, ca_pem) = match tls {
            SmtpTls::None => (None, String::new()),
            _ => {
                let (acceptor, pem) = tls_acceptor();
                (Some(acceptor), pem)
            }
        };
        let setup = Setup {
            tls,
            acceptor,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
        };
        let inner = Arc::new(Inner::default());
        let serving = inner.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (inner, setup) = (serving.clone(), setup.clone());
                tokio::spawn(async move {
                    let _ = match (&setup.acceptor, setup.tls) {
                        (Some(acceptor), SmtpTls::Implicit) => {
                            match acceptor.accept(stream).await {
                                Ok(tls) => session(Box::new(tls), inner, setup, true).await,
                                Err(_) => Ok(()),
                            }
                        }
                        _ => session(Box::new(stream), inner, setup, false).await,
                    };
                });
            }
        });
        Self {
            port,
            ca_pem,
            inner,
        }
    }

    /// How many logins were refused.
    pub fn refused_logins(&self) -> usize {
        *self.inner.refused_logins.lock().expect("lock")
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

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A certificate for 127.0.0.1 and a TLS acceptor serving it; the certificate's PEM.
fn tls_acceptor() -> (TlsAcceptor, String) {
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("a certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("a server config");
    (TlsAcceptor::from(Arc::new(config)), cert.pem())
}

fn session(
    stream: Box<dyn Io>,
    inner: Arc<Inner>,
    setup: Setup,
    secure: bool,
) -> Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> {
    Box::pin(async move {
        let mut io = BufReader::new(stream);
        if !secure || setup.tls == SmtpTls::Implicit {
            io.write_all(b"220 localhost ESMTP test\r\n").await?;
        }
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut authenticated = setup.login.is_none();
        let mut line = String::new();
        loop {
            line.clear();
            if io.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_string();
            let verb = command
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_ascii_uppercase();
            let needs_tls = setup.tls != SmtpTls::None && !secure;
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut lines = vec!["250-localhost", "250-8BITMIME"];
                    if needs_tls {
                        lines.push("250-STARTTLS");
                    } else if setup.login.is_some() {
                        lines.push("250-AUTH PLAIN LOGIN");
                    }
                    lines.push("250 SMTPUTF8");
                    lines.join("\r\n")
                }
                "HELO" => "250 localhost".into(),
                "STARTTLS" if needs_tls => {
                    io.write_all(b"220 2.0.0 ready to start TLS\r\n").await?;
                    io.flush().await?;
                    let Some(acceptor) = setup.acceptor.clone() else {
                        return Ok(());
                    };
                    let plain = io.into_inner();
                    let tls = acceptor.accept(plain).await?;
                    return session(Box::new(tls), inner, setup, true).await;
                }
                "AUTH" if needs_tls => "530 5.7.0 must issue STARTTLS first".into(),
                "AUTH" => {
                    let mut words = command.split_whitespace().skip(1);
                    let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
                    let given = match mechanism.as_str() {
                        "PLAIN" => {
                            let encoded = match words.next() {
                                Some(e) => e.to_string(),
                                None => {
                                    io.write_all(b"334 \r\n").await?;
                                    read_line(&mut io).await?
                                }
                            };
                            let raw = STANDARD.decode(encoded.trim()).unwrap_or_default();
                            let parts: Vec<String> = raw
                                .split(|b| *b == 0)
                                .map(|p| String::from_utf8_lossy(p).to_string())
                                .collect();
                            (parts.len() == 3).then(|| (parts[1].clone(), parts[2].clone()))
                        }
                        "LOGIN" => {
                            io.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                            let user = decode(&read_line(&mut io).await?);
                            io.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                            let pass = decode(&read_line(&mut io).await?);
                            Some((user, pass))
                        }
                        _ => None,
                    };
                    if given.is_some() && given == setup.login {
                        authenticated = true;
                        "235 2.7.0 authentication successful".into()
                    } else {
                        *inner.refused_logins.lock().expect("lock") += 1;
                        "535 5.7.8 authentication credentials invalid".into()
                    }
                }
                "MAIL" if needs_tls => "530 5.7.0 must issue STARTTLS first".into(),
                "MAIL" if !authenticated => "530 5.7.0 authentication required".into(),
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
                    io.write_all(b"354 end with .\r\n").await?;
                    let mut data = Vec::new();
                    loop {
                        let mut l = String::new();
                        if io.read_line(&mut l).await? == 0 {
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
                    io.write_all(b"221 bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 command not implemented".into(),
            };
            io.write_all(reply.as_bytes()).await?;
            io.write_all(b"\r\n").await?;
            io.flush().await?;
        }
    })
}

async fn read_line(io: &mut BufReader<Box<dyn Io>>) -> std::io::Result<String> {
    let mut l = String::new();
    io.read_line(&mut l).await?;
    Ok(l.trim_end().to_string())
}

fn decode(b64: &str) -> String {
    String::from_utf8_lossy(&STANDARD.decode(b64.trim()).unwrap_or_default()).to_string()
}

/// The address between angle brackets of `MAIL FROM:<a>` / `RCPT TO:<a>`.
fn angle(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(a), Some(b)) if a < b => command[a + 1..b].to_string(),
        _ => String::new(),
    }
}
