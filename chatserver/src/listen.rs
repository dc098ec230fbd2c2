//! The port: bound for good and said (`listening on`, where to point a
//! browser, the LAN's addresses), a bind that failed explained, and the
//! accept loop, which hands each connection to the edge or refuses it
//! under the limits.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::args::Args;
use crate::limits::Limits;
use crate::{edge, refuse, stdout};

/// The error of a bind that failed, naming the address, and what to do
/// where there is something to say.
pub fn cannot_listen(args: &Args, e: std::io::Error) -> std::io::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrNotAvailable => {
            "; that is not an address of this machine: give one of its own, \
             0.0.0.0:PORT for all of them, or 127.0.0.1:PORT for this machine only"
        }
        std::io::ErrorKind::AddrInUse => {
            "; another program (a chatserver still running?) has that port: stop it, \
             or choose another port with --listen (port 0 lets the system choose)"
        }
        std::io::ErrorKind::PermissionDenied if privileged_port(&args.listen) => {
            "; ports below 1024 need privileges: choose one above 1023 with --listen"
        }
        _ => "",
    };
    std::io::Error::new(
        e.kind(),
        format!("cannot listen on {}: {e}{hint}", args.listen),
    )
}

/// Whether `HOST:PORT` names a port from 1 to 1023, which only a
/// privileged process may listen on.
fn privileged_port(listen: &str) -> bool {
    listen
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .is_some_and(|port| (1..1024).contains(&port))
}

/// Bind the port for good and say so: `listening on IP:PORT` first (with
/// the real port when asked for port 0), then where to point a browser,
/// and on all addresses, the LAN's.
pub async fn listen(args: &Args, tls: bool) -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind(args.listen.as_str())
        .await
        .map_err(|e| cannot_listen(args, e))?;
    let addr = listener.local_addr()?;
    // One write (the lines together), queued as the log's lines are,
    // before any of them (nothing is logged before it); never a failed
    // start, nor a wait, for a stdout nobody reads (see `stdout`).
    let mut out = vec![format!("listening on {addr}")];
    let scheme = if tls { "https" } else { "http" };
    if addr.ip().is_unspecified() {
        // 0.0.0.0 is no address to open: this machine's, then the LAN's.
        let here = if addr.is_ipv6() {
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
        } else {
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
        };
        let here = std::net::SocketAddr::new(here, addr.port());
        out.push(format!(
            "open {scheme}://{here}/ in a browser on this machine"
        ));
    } else {
        out.push(format!("open {scheme}://{addr}/ in a browser"));
    }
    if addr.ip().is_unspecified() {
        for ip in lan_addresses(addr.is_ipv6()) {
            let at = std::net::SocketAddr::new(ip, addr.port());
            out.push(format!("on your LAN: {scheme}://{at}/ (chatclient {at})"));
        }
    }
    let _ = stdout::Queued.write_all(format!("{}\n", out.join("\n")).as_bytes());
    Ok(listener)
}

/// The addresses other machines can reach this one at, for a server
/// listening on all of them: every up interface's, loopback aside.
fn lan_addresses(v6_too: bool) -> Vec<std::net::IpAddr> {
    let mut ips: Vec<std::net::IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            std::net::IpAddr::V4(_) => true,
            // Link-local IPv6 needs a zone to be used; leave it out.
            std::net::IpAddr::V6(v6) => v6_too && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

pub async fn accept_loop(
    listener: TcpListener,
    edge: Arc<edge::Edge>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let settings = &edge.settings;
    let refuser = refuse::Refuser::new(edge.tls.clone(), settings.max_frame_bytes);
    let mut refusals = refuse::RefusalLog::default();
    loop {
        let due = refusals.due();
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
            // A burst of refusals ended: how many the last line left out.
            () = async { if let Some(due) = due { tokio::time::sleep_until(due.into()).await } }, if due.is_some() => {
                if let Some(unlogged) = refusals.flush(std::time::Instant::now()) {
                    info!(more_since_last_line = unlogged, "refused more connections: server_full");
                }
                continue;
            }
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors, usually: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match limits.admit(addr.ip()) {
            Ok(admission) => {
                let edge = Arc::clone(&edge);
                tokio::spawn(edge::serve(stream, addr, edge, admission, done.clone()));
            }
            Err(why) => {
                // At most a line a second, which says how many more were
                // refused since the one before.
                if let Some(unlogged) = refusals.refused(std::time::Instant::now()) {
                    info!(
                        %addr,
                        why = limits.explain(why).as_str(),
                        more_since_last_line = (unlogged > 0).then_some(unlogged),
                        "refusing connection: server_full"
                    );
                }
                settings
                    .metrics
                    .closed_for(chatproto::ErrorCode::ServerFull);
                refuser.refuse(stream, why);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cannot_listen, privileged_port};

    /// An address not this machine's (`--listen 10.9.9.9:7878`) was
    /// refused with the system's words alone; it says what to give.
    #[test]
    fn an_address_not_this_machines_is_said_so() {
        use clap::Parser;
        let args = crate::args::Args::try_parse_from(["chatserver", "--listen", "192.0.2.1:7878"])
            .unwrap();
        let e = std::io::Error::from(std::io::ErrorKind::AddrNotAvailable);
        let said = cannot_listen(&args, e).to_string();
        assert!(
            said.starts_with("cannot listen on 192.0.2.1:7878: "),
            "{said}"
        );
        assert!(said.contains("not an address of this machine"), "{said}");
        assert!(said.contains("0.0.0.0:PORT"), "{said}");
    }

    #[test]
    fn only_ports_1_to_1023_are_privileged() {
        assert!(privileged_port("0.0.0.0:80"));
        assert!(privileged_port("[::]:1023"));
        assert!(!privileged_port("127.0.0.1:1024"));
        assert!(!privileged_port("127.0.0.1:0"));
        assert!(!privileged_port("localhost:7878"));
    }
}
