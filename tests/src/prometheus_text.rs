//! Reads Prometheus text exposition with the Prometheus project's own parser
//! (Python's `prometheus_client`, from the tools deploy/local/tools installs), an
//! implementation this platform did not write.

use std::io::Write;
use std::process::{Command, Stdio};

/// One sample as the parser read it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Sample {
    /// The family's name (a counter's without `_total`).
    pub family: String,
    /// `counter`, `gauge`, `histogram`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The sample's own name (`…_bucket`, `…_total`).
    pub name: String,
    /// Its labels.
    pub labels: std::collections::HashMap<String, String>,
    /// Its value.
    pub value: serde_json::Value,
}

impl Sample {
    /// Its value as a number (0 when not one).
    pub fn number(&self) -> f64 {
        self.value.as_f64().unwrap_or_default()
    }
}

/// Parses `text`; panics with the parser's complaint when it is not valid.
pub fn parse(text: &str) -> Vec<Sample> {
    let python = std::env::var("HELPDESK_TOOLS_PYTHON").unwrap_or_else(|_| {
        panic!("HELPDESK_TOOLS_PYTHON is not set: run the tests through deploy/local/test")
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/check/prometheus_text.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Prometheus parser");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("parser output");
    assert!(
        out.status.success(),
        "Prometheus' parser refuses the text:\n{}\n---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the parser's JSON")
}

/// The first of `samples` named `name` whose labels include `labels`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

/// Reads this process's own metrics (the services it runs share them) every half
/// second until `check` returns something, for at most `limit`; queues and backlogs
/// are sampled every few seconds.
pub async fn until<T>(
    limit: std::time::Duration,
    check: impl Fn(&[Sample]) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = check(&parse(&helpdesk_kit::metrics::render())) {
            return Some(found);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
