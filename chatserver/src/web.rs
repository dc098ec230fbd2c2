//! HTTP on the shared port: the chat page (embedded at build time), the
//! WebSocket that carries chatproto, `/healthz` and `/metrics`. Any other
//! path is 404, any method but GET and HEAD 405, and plain HTTP to a
//! `--tls-only` server 400; nothing is read from disk.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::edge::Edge;
use crate::hub::ToHub;
use crate::limits::Admission;
use crate::stall::StallLimit;

/// The read buffer of an HTTP connection, which bounds a request's head:
/// hyper refuses the head (`431`) once the buffer is full and the head
/// is not whole, so one read more may pass (about 100 KiB in all). It
/// refuses a head of more than 100 header fields too (its default).
/// README.md, "Limits".
const MAX_HTTP_HEAD_BYTES: usize = 64 * 1024;

/// How long `/metrics` waits for the core's gauges (rooms, members);
/// past it, the page goes without them.
const METRICS_WITHIN: Duration = Duration::from_secs(2);

/// How long `/healthz` waits for the hub to say it takes its input;
/// past it, the answer is 503.
const HEALTH_WITHIN: Duration = Duration::from_secs(2);

/// The page's files: (name, content type, bytes), from `web/` (build.rs).
static FILES: &[(&str, &str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/web_files.rs"));

/// No script but our own files, no framing by other sites, nothing sniffed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// One HTTP connection's facts.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub addr: SocketAddr,
    /// Whether it came through TLS.
    pub tls: bool,
    /// When the connection's join timeout, counted from accept, ends: the
    /// first request's head must have come by then.
    pub deadline: tokio::time::Instant,
}

/// Serve HTTP/1.1 on `io` until the client closes it or it upgrades to a
/// WebSocket, which then holds `admission` (the connection's place under
/// the caps) and `done` (what shutdown waits for).
pub async fn serve<I>(
    io: I,
    info: ConnInfo,
    edge: Arc<Edge>,
    admission: Admission,
    done: mpsc::Sender<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let admission = Arc::new(Mutex::new(Some(admission)));
    // The first request's head must come within what is left of the join
    // timeout since accept (the first byte and a TLS handshake took the
    // rest), as a join must; each later one on a kept-alive connection
    // gets a whole join timeout (with what was left, a connection that
    // began late was closed under a browser about to use it again).
    let join_timeout = Duration::from_millis(edge.settings.join_timeout_ms);
    let asked = Arc::new(AtomicBool::new(false));
    // An answer the client does not take for a whole join timeout closes
    // the connection, as a head it does not send does: a client that asks
    // and never reads would otherwise keep its place for ever. A WebSocket
    // lifts it (its unread output is the hub's to judge).
    let armed = Arc::new(AtomicBool::new(true));
    let io = StallLimit::new(io, join_timeout, Arc::clone(&armed));
    // Shutdown waits for every connection, and a browser or a scraper
    // keeps its connection open between requests: told to stop, the
    // connection finishes the request under way, if any, and closes.
    let mut stop = edge.stop.clone();
    let stopping = async move {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stopping);
    // Requests are read under the same frame rate as a chat connection's
    // frames (`--rate`, `--burst`): hyper reads the next request on a
    // connection only once this one is answered, so a request over the
    // rate waits, and TCP slows the client, as for frames. (Unlimited,
    // eight kept-alive connections of one address asked 99,000 times a
    // second and slowed every chat client.)
    let bucket = Arc::new(Mutex::new(crate::ratelimit::TokenBucket::new(
        edge.settings.rate,
        edge.settings.burst,
        std::time::Instant::now(),
    )));
    let service = {
        let asked = Arc::clone(&asked);
        hyper::service::service_fn(move |req| {
            asked.store(true, Ordering::Relaxed);
            let (edge, admission, done) = (Arc::clone(&edge), Arc::clone(&admission), done.clone());
            let armed = Arc::clone(&armed);
            let bucket = Arc::clone(&bucket);
            async move {
                loop {
                    let wait = bucket
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take(std::time::Instant::now(), 0);
                    match wait {
                        Ok(()) => break,
                        Err(wait) => tokio::time::sleep(wait).await,
                    }
                }
                Ok::<_, Infallible>(route(req, info, edge, admission, done, armed).await)
            }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(join_timeout)
        .max_buf_size(MAX_HTTP_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        // The connection first: a head already in hand when the deadline
        // is reached is answered (as hyper's own timeout did).
        biased;
        _ = conn.as_mut() => return,
        () = &mut stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
            return;
        }
        () = tokio::time::sleep_until(info.deadline) => {}
    }
    // No whole head by the deadline: closed, as a join that did not come.
    if asked.load(Ordering::Relaxed) {
        tokio::select! {
            biased;
            _ = conn.as_mut() => return,
            () = &mut stopping => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

async fn route(
    req: Request<Incoming>,
    info: ConnInfo,
    edge: Arc<Edge>,
    admission: Arc<Mutex<Option<Admission>>>,
    done: mpsc::Sender<()>,
    armed: Arc<AtomicBool>,
) -> Response<Body> {
    // http:// to a server that takes TLS only: a browser shows why.
    if edge.settings.tls_only && !info.tls {
        crate::edge::log_plain_refused(info.addr, "http");
        return text(
            StatusCode::BAD_REQUEST,
            "this server takes HTTPS only: open the same address with https://\n",
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        // Every path here is read only.
        let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    // RFC 9112 3.2: more than one Host is a 400 (the origin check and
    // anything else reading the first would be guessing), and so is none
    // in HTTP/1.1 (HTTP/1.0 may leave it out).
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        return text(StatusCode::BAD_REQUEST, "more than one Host header\n");
    }
    if req.version() == axum::http::Version::HTTP_11 && !req.headers().contains_key(header::HOST) {
        return text(
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs a Host header\n",
        );
    }
    match req.uri().path() {
        "/ws" => upgrade(req, info, edge, admission, done, armed).await,
        "/healthz" => healthz(&edge).await,
        "/metrics" => {
            let held = admission
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map_or(0, Admission::held);
            metrics(info, &edge, held).await
        }
        "/" => file("index.html"),
        path => file(path.trim_start_matches('/')),
    }
}

/// One of the page's files, or 404.
fn file(name: &str) -> Response<Body> {
    let Some((_, kind, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut res = Response::new(Body::from(*bytes));
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut res = Response::new(body.into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// WebSockets refused for their origin, logged at most once a second.
static ORIGIN_REFUSALS: Mutex<crate::refuse::RefusalLog> =
    Mutex::new(crate::refuse::RefusalLog::new());

/// `GET /ws`: check the origin and the opening handshake (RFC 6455
/// 4.2.1), answer 101, and hand the upgraded connection to a connection
/// task once hyper lets go of it.
async fn upgrade(
    mut req: Request<Incoming>,
    info: ConnInfo,
    edge: Arc<Edge>,
    admission: Arc<Mutex<Option<Admission>>>,
    done: mpsc::Sender<()>,
    armed: Arc<AtomicBool>,
) -> Response<Body> {
    if let Err(why) = origin_allowed(req.headers(), &edge.settings.allowed_origins) {
        // A browser's script cannot read why: the operator learns it here
        // (at most a line a second: any site's page can make these).
        let say_left_out = |n| {
            warn!(
                more_since_last_line = n,
                "refused more WebSockets for their origin (see --allowed-origins)"
            )
        };
        if let Some(unlogged) = crate::refuse::refused_shared(&ORIGIN_REFUSALS, say_left_out) {
            // Refused, so it was there; quoted and escaped (any site's).
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .map_or_else(Default::default, |o| String::from_utf8_lossy(o.as_bytes()));
            warn!(
                addr = %info.addr,
                origin = ?origin,
                more_since_last_line = (unlogged > 0).then_some(unlogged),
                "refusing a WebSocket: {}",
                why.trim_end()
            );
        }
        return text(StatusCode::FORBIDDEN, why);
    }
    let accept = match opening(&req) {
        Ok(key) => tungstenite::handshake::derive_accept_key(key),
        Err(Refusal::Version) => {
            // RFC 6455 4.2.2: say which version we speak.
            let mut res = text(
                StatusCode::UPGRADE_REQUIRED,
                "only WebSocket version 13 is spoken (`Sec-WebSocket-Version: 13`)\n",
            );
            res.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return res;
        }
        Err(Refusal::Bad(why)) => return text(StatusCode::BAD_REQUEST, why),
    };
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
    };
    // hyper offers the connection only for a request that can upgrade it
    // (HTTP/1.1); without the offer, no 101.
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return text(
            StatusCode::UPGRADE_REQUIRED,
            "a WebSocket opens over HTTP/1.1\n",
        );
    };
    let admission = admission.lock().unwrap_or_else(|e| e.into_inner()).take();
    let (to_hub, settings) = (edge.to_hub.clone(), Arc::clone(&edge.settings));
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => {
                // The 101 is written: from now on a WebSocket.
                armed.store(false, Ordering::Relaxed);
                let io = TokioIo::new(io);
                crate::wsconn::serve(io, info.addr, info.tls, to_hub, settings, admission, done)
                    .await;
            }
            Err(e) => debug!(addr = %info.addr, error = %e, "websocket upgrade failed"),
        }
    });
    let mut res = Response::new(Body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    res
}

/// Why a request is not a WebSocket opening we accept.
enum Refusal {
    /// Not an opening handshake: what is wrong with it.
    Bad(&'static str),
    /// An opening for a WebSocket version other than 13.
    Version,
}

/// The `Sec-WebSocket-Key` of a WebSocket opening handshake (RFC 6455
/// 4.2.1), or why the request is not one.
fn opening(req: &Request<Incoming>) -> Result<&[u8], Refusal> {
    let h = req.headers();
    let lists = |name: header::HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    if req.method() != Method::GET {
        return Err(Refusal::Bad("a WebSocket opens with GET\n"));
    }
    if req.version() < axum::http::Version::HTTP_11 {
        return Err(Refusal::Bad("a WebSocket opens over HTTP/1.1\n"));
    }
    if !lists(header::CONNECTION, "upgrade") || !lists(header::UPGRADE, "websocket") {
        return Err(Refusal::Bad(
            "this is the WebSocket endpoint: it needs `Connection: upgrade` and `Upgrade: websocket`\n",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err(Refusal::Version);
    }
    let mut keys = h.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match keys.next() {
        // RFC 6455 11.3.1: the field appears once.
        Some(_) if keys.next().is_some() => Err(Refusal::Bad(
            "a WebSocket opening has one `Sec-WebSocket-Key`, not several\n",
        )),
        Some(key) if is_key(key.as_bytes()) => Ok(key.as_bytes()),
        Some(_) => Err(Refusal::Bad(
            "a `Sec-WebSocket-Key` is 16 bytes in base64 (24 characters ending in `==`)\n",
        )),
        None => Err(Refusal::Bad(
            "a WebSocket opening needs a `Sec-WebSocket-Key`\n",
        )),
    }
}

/// Whether `key` is 16 bytes in base64, as RFC 6455 4.1 has a client
/// send: 22 characters of the alphabet (the last one carrying 2 bits),
/// then `==`.
fn is_key(key: &[u8]) -> bool {
    let base64 = |c: &u8| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/';
    key.len() == 24
        && key[..22].iter().all(base64)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
}

/// Names under these are never given out by public DNS (reserved, or not
/// in its root), so a page from another site cannot take one of them by
/// pointing its own name at this server (DNS rebinding).
const LOCAL_SUFFIXES: [&str; 5] = [".localhost", ".local", ".lan", ".internal", ".home.arpa"];

/// Whether `host` (an origin's host, an IPv6 address in brackets) names
/// this server in a way no other site's page can have: an IP address,
/// a name of one label (`localhost`, a LAN's `chatbox`), or a name under
/// one of [`LOCAL_SUFFIXES`] (`myhost.local`, `chat.lan`).
fn local_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .is_ok();
    }
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || (!host.is_empty() && !host.contains('.'))
        || LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s))
}

/// The host of `origin` (`scheme://host[:port]`), brackets and all for
/// IPv6; `None` if it has no `://`.
fn origin_host(origin: &str) -> Option<&str> {
    let (_, authority) = origin.split_once("://")?;
    Some(split_port(authority).0)
}

/// `host[:port]` split into its host (brackets and all for IPv6) and its
/// port, if it has one.
pub(crate) fn split_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => (&authority[..=end], authority[end + 1..].strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    }
}

/// Whether the page at `origin` (`http(s)://host[:port]`) is on the host
/// and port the browser asked for in `Host`, whichever scheme it used: a
/// page served over https by a proxy that ends TLS comes to this server
/// over plain TCP, and is still its own. A port left out is the scheme's
/// default, in the Origin as in `Host`.
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let (origin_host, origin_port) = split_port(authority);
    let (host, host_port) = split_port(host);
    origin_host.eq_ignore_ascii_case(host)
        && origin_port.unwrap_or(default) == host_port.unwrap_or(default)
}

/// A browser's `Origin` must be one of `allowed`, or the page's own (on
/// the host and port of the `Host` it asked for, over http or https:
/// [`same_host`]) when that names this server by an address or a local
/// name ([`local_host`]): a public name equal to `Host` may be another
/// site's, pointed at this server (DNS rebinding), and is let in only
/// when listed. A client that sends no `Origin` (not a browser) is let in.
fn origin_allowed(headers: &axum::http::HeaderMap, allowed: &[String]) -> Result<(), &'static str> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| "forbidden: a malformed Origin\n")?
        .trim_end_matches('/');
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let same = host.is_some_and(|host| same_host(origin, host));
    let local = origin_host(origin).is_some_and(local_host);
    if (same && local) || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        Ok(())
    } else if same {
        Err("forbidden: a page from a public name this server does not know (list it in --allowed-origins)\n")
    } else {
        Err("forbidden: a WebSocket from another site's page (see --allowed-origins)\n")
    }
}

/// `GET /healthz`: 200 `ok` while serving; 503 with why while
/// stopping, while new messages cannot be taken (the store failing, the
/// cluster's heartbeat not reaching NATS), and while the hub does not
/// answer within [`HEALTH_WITHIN`] (stuck, or far behind: then nothing
/// it is sent is answered either).
async fn healthz(edge: &Edge) -> Response<Body> {
    let metrics = &edge.settings.metrics;
    if metrics.stopping.load(Ordering::Relaxed) {
        return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if let Some(why) = metrics.trouble() {
        return text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"));
    }
    // Asked as a client's frame would be, through the hub's queue: a
    // full queue is a hub not keeping up too.
    match ask_hub(edge, ToHub::Alive, HEALTH_WITHIN).await {
        Some(()) => text(StatusCode::OK, "ok\n"),
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server's core did not answer within {} s: stuck, or far behind\n",
                HEALTH_WITHIN.as_secs()
            ),
        ),
    }
}

/// Ask the hub a question (`question` wraps where it answers) and wait
/// for the answer, both within `within`: a hub too busy to take it (its
/// queue full, its store behind) must not hold the page, which is when
/// an operator wants it. `None`: no answer in time.
async fn ask_hub<T>(
    edge: &Edge,
    question: impl FnOnce(oneshot::Sender<T>) -> ToHub,
    within: Duration,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let ask = async {
        edge.to_hub.send(question(tx)).await.ok()?;
        rx.await.ok()
    };
    tokio::time::timeout(within, ask).await.ok().flatten()
}

/// `GET /metrics`, to loopback and the networks `--metrics-allow` names.
/// `/metrics`; `held`: the connections under `--max-clients` now.
async fn metrics(info: ConnInfo, edge: &Edge, held: usize) -> Response<Body> {
    let ip = crate::limits::canonical(info.addr.ip());
    let allowed = ip.is_loopback() || edge.settings.metrics_allow.iter().any(|n| n.contains(&ip));
    if !allowed {
        return text(StatusCode::FORBIDDEN, "forbidden: see --metrics-allow\n");
    }
    let core = ask_hub(edge, ToHub::Snapshot, METRICS_WITHIN).await;
    let page = edge
        .settings
        .metrics
        .render(core, edge.settings.budget.used(), held);
    let mut res = Response::new(Body::from(page));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An edge whose hub is `hub`'s sending side, and `/healthz`'s
    /// status and body on it.
    async fn health(to_hub: mpsc::Sender<ToHub>) -> (StatusCode, String) {
        let edge = Edge {
            to_hub,
            settings: crate::Settings::for_tests(),
            tls: None,
            stop: tokio::sync::watch::channel(false).1,
        };
        let res = healthz(&edge).await;
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 10)
            .await
            .expect("the body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A hub that takes nothing (stuck on something that never ends)
    /// makes `/healthz` 503 within its bound, saying why; one that reads
    /// its input makes it 200. It answered 200 from the flags alone,
    /// whatever the hub was doing.
    #[tokio::test(start_paused = true)]
    async fn healthz_is_503_while_the_hub_does_not_answer() {
        let (to_hub, stuck) = mpsc::channel(16);
        let (status, body) = health(to_hub).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body.contains("did not answer"), "{body}");
        drop(stuck);

        let (to_hub, mut hub) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(input) = hub.recv().await {
                if let ToHub::Alive(reply) = input {
                    let _ = reply.send(());
                }
            }
        });
        assert_eq!(health(to_hub).await, (StatusCode::OK, "ok\n".to_owned()));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_the_pages_own_origin_and_the_allowed_ones_may_open_a_websocket() {
        let allowed = vec!["https://chat.example".to_owned()];
        let own = headers(&[
            ("host", "10.0.0.5:7878"),
            ("origin", "http://10.0.0.5:7878"),
        ]);
        assert!(origin_allowed(&own, &allowed).is_ok());
        let other = headers(&[("host", "10.0.0.5:7878"), ("origin", "http://evil.example")]);
        assert!(origin_allowed(&other, &allowed).is_err());
        let listed = headers(&[
            ("host", "10.0.0.5:7878"),
            ("origin", "https://chat.example"),
        ]);
        assert!(origin_allowed(&listed, &allowed).is_ok());
        // Not a browser: no Origin at all.
        assert!(origin_allowed(&headers(&[("host", "x")]), &allowed).is_ok());
    }

    #[test]
    fn the_pages_own_host_is_its_own_over_http_or_https_and_only_that_host() {
        // Behind a proxy that ends TLS, or served over TLS here: the
        // scheme does not matter, the host and port do (a port left out
        // being the scheme's default).
        for (host, origin, same) in [
            ("chat.lan", "https://chat.lan", true),
            ("chat.lan", "http://chat.lan", true),
            ("chat.lan:443", "https://chat.lan", true),
            ("chat.lan", "https://chat.lan:443", true),
            ("chat.lan:8443", "https://chat.lan:8443", true),
            ("[fe80::1]", "https://[fe80::1]", true),
            ("[fe80::1]:7878", "https://[fe80::1]:7878", true),
            ("Chat.LAN", "https://chat.lan", true),
            ("chat.lan", "https://chat.lan:8443", false),
            ("chat.lan:8443", "https://chat.lan", false),
            ("chat.lan:80", "https://chat.lan", false),
            ("chat.lan", "https://other.lan", false),
            ("[fe80::1]:7878", "https://[fe80::2]:7878", false),
            ("chat.lan", "ws://chat.lan", false),
            ("chat.lan", "chat.lan", false),
        ] {
            assert_eq!(same_host(origin, host), same, "{host} {origin}");
        }
    }

    #[test]
    fn the_pages_own_origin_counts_only_for_addresses_and_local_names() {
        let own = |host: &'static str, origin: &'static str| {
            origin_allowed(&headers(&[("host", host), ("origin", origin)]), &[])
        };
        for (host, origin) in [
            ("192.168.1.5:7878", "http://192.168.1.5:7878"),
            ("[fe80::1]:7878", "http://[fe80::1]:7878"),
            ("localhost:7878", "http://localhost:7878"),
            ("chatbox:7878", "http://chatbox:7878"),
            ("myhost.local:7878", "http://myhost.local:7878"),
            ("chat.lan", "http://chat.lan"),
            ("Dev.Localhost:1", "http://dev.localhost:1"),
        ] {
            assert!(own(host, origin).is_ok(), "{origin}");
        }
        // DNS rebinding: another site's name, pointed at this server.
        for (host, origin) in [
            ("attacker.example:7878", "http://attacker.example:7878"),
            (
                "localhost.attacker.example",
                "http://localhost.attacker.example",
            ),
            ("192.168.1.5.nip.io:7878", "http://192.168.1.5.nip.io:7878"),
        ] {
            assert!(own(host, origin).is_err(), "{origin}");
        }
        // Unless it is listed.
        let listed = vec!["http://chat.example.org:7878".to_owned()];
        let h = headers(&[
            ("host", "chat.example.org:7878"),
            ("origin", "http://chat.example.org:7878"),
        ]);
        assert!(origin_allowed(&h, &listed).is_ok());
    }

    #[test]
    fn every_page_file_is_served_with_a_policy_that_forbids_inline_script() {
        for (name, _, _) in FILES {
            let res = file(name);
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            let csp = res.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap();
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        }
        assert_eq!(file("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(file("").status(), StatusCode::NOT_FOUND);
    }
}
