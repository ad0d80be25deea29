//! The browser front ends (`web/dist`): the workbench at `/`, the visitor widget under
//! `/widget/`, and `/config.json`, which tells the pages where each service's grpc-web
//! endpoint is.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use helpdesk_kit::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Where a service's grpc-web endpoint is, as a page should reach it.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// On the host the page was loaded from, at this port (`helpdesk up`).
    Port(u16),
    /// At this base URL (behind an ingress or proxy).
    Url(String),
    /// At the page's own origin: a proxy in front routes each service's gRPC paths
    /// (`/helpdesk.<service>.v1.*`) to it.
    SameOrigin,
}

impl Endpoint {
    fn resolve(&self, headers: &HeaderMap) -> String {
        let scheme = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        match self {
            Endpoint::Url(url) => url.trim_end_matches('/').to_string(),
            Endpoint::Port(port) => format!("{scheme}://{}:{port}", request_host(headers)),
            Endpoint::SameOrigin => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .filter(|h| plain_host(h))
                    .unwrap_or("127.0.0.1");
                format!("{scheme}://{host}")
            }
        }
    }
}

/// The host name (without port) the request was sent to; `127.0.0.1` when it has none
/// or an unusable one.
fn request_host(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // "[::1]:8080", "example.com:8080", "example.com".
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map(|(ip6, _)| format!("[{ip6}]"))
    } else {
        host.split(':').next().map(str::to_string)
    };
    name.filter(|n| plain_host(n))
        .unwrap_or_else(|| "127.0.0.1".to_string())
}

/// A host (with an optional port) and nothing else.
fn plain_host(h: &str) -> bool {
    !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c))
}

/// The services' endpoints, by service name.
pub type Endpoints = BTreeMap<String, Endpoint>;

/// Parses `name=URL` (the `--service` option of `helpdesk web`).
pub fn parse_service(s: &str) -> Result<(String, Endpoint), String> {
    let (name, url) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=URL, got {s:?}"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "{name}: the URL must start with http:// or https://"
        ));
    }
    Ok((name.to_string(), Endpoint::Url(url.to_string())))
}

/// The folder of the built front ends: `--web-dir`, else `HELPDESK_WEB_DIR`, else
/// `web/dist` under the current folder, else next to the binary's install prefix.
pub fn find_dir(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = given {
        return Some(dir.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("web/dist")];
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        candidates.push(prefix.join("share/helpdesk/web"));
    }
    candidates
        .into_iter()
        .find(|d| d.join("index.html").is_file())
}

async fn config(State(endpoints): State<Endpoints>, headers: HeaderMap) -> Response {
    let services: serde_json::Map<String, serde_json::Value> = endpoints
        .iter()
        .map(|(name, e)| (name.clone(), e.resolve(&headers).into()))
        .collect();
    let body = serde_json::json!({ "services": services });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The router serving `dir` and `/config.json`.
pub fn router(dir: &Path, endpoints: Endpoints) -> Router {
    // Pages and the widget script are revalidated on each load (their names do not
    // change between builds); hashed assets may be kept.
    let revalidate = SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(true)
        .fallback(ServeFile::new(dir.join("index.html")));
    Router::new()
        .route("/config.json", get(config))
        .with_state(endpoints)
        .fallback_service(files)
        .layer(revalidate)
}

/// A bound web server, ready to run.
pub struct WebServer {
    listener: tokio::net::TcpListener,
    router: Router,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl WebServer {
    /// Binds `addr` to serve `dir`.
    pub async fn bind(addr: SocketAddr, dir: &Path, endpoints: Endpoints) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the web port {addr}"))?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            router: router(dir, endpoints),
            addr,
        })
    }

    /// Serves until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .context("serving the web front ends")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> String {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_str(h).expect("header value"),
        );
        request_host(&headers)
    }

    #[test]
    fn the_page_host_names_the_services_host() {
        assert_eq!(host("example.com:8080"), "example.com");
        assert_eq!(host("10.0.0.5"), "10.0.0.5");
        assert_eq!(host("[::1]:8080"), "[::1]");
        assert_eq!(host("evil.com/<script>"), "127.0.0.1");
        assert_eq!(request_host(&HeaderMap::new()), "127.0.0.1");
    }

    #[test]
    fn service_urls_are_checked() {
        assert!(parse_service("routing=https://hd.example/routing").is_ok());
        assert!(parse_service("routing").is_err());
        assert!(parse_service("routing=ftp://x").is_err());
    }
}
