//! The log: its filter (`--log-level`, else `RUST_LOG`, with the
//! libraries that say too much kept down) and the line of settings said
//! at start.

use tracing::info;

use crate::args::{self, Args};

/// The log filter: `--log-level` if given, else `RUST_LOG` if set, else
/// info. A `RUST_LOG` that is not levels (or `TARGET=LEVEL` pairs) is
/// refused rather than taken as a target name that would log nothing.
pub fn log_filter(
    flag: Option<&str>,
    env: Option<String>,
) -> Result<tracing_subscriber::EnvFilter, String> {
    let spec = log_spec(flag, env)?;
    tracing_subscriber::EnvFilter::try_new(&spec)
        .map_err(|e| format!("bad log level {spec:?}: {e}"))
}

/// The WebSocket library writes every message a client sends, whole, at
/// debug and trace (a `join`'s session token, a private message's text,
/// and raw newlines that would forge log lines): whatever the level, it
/// logs at info at most, unless `RUST_LOG` names it.
const WS_LIBRARY_AT_MOST_INFO: &str = "tungstenite=info,tokio_tungstenite=info";

/// The NATS client library's own lines, left out below debug (see
/// [`log_spec`]).
const NATS_CLIENT_OFF: &str = "async_nats=off";

/// [`log_filter`]'s directives.
fn log_spec(flag: Option<&str>, env: Option<String>) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let spec = match (flag, env) {
        // The NATS client's own notes (connected, reconnected) are info:
        // they would come before the `listening on` line; and its errors
        // come at every reconnect attempt (33 lines in 40 s when NATS's
        // address takes connections and closes them). The cluster code
        // says what matters itself, once a minute at most while it lasts;
        // `--log-level debug` shows the client's lines too.
        (Some(level @ ("info" | "warn" | "error" | "off")), _) => {
            format!("{level},{NATS_CLIENT_OFF}")
        }
        (Some(level), _) => format!("{level},{WS_LIBRARY_AT_MOST_INFO}"),
        (None, Some(env)) if !env.trim().is_empty() => {
            for directive in env.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
                if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
                    return Err(format!(
                        "RUST_LOG={env:?}: {directive:?} is not a level; use one of {} (or TARGET=LEVEL), or --log-level",
                        LEVELS.join(", ")
                    ));
                }
            }
            // A level for every target above info: not for the WebSocket
            // library, unless it is named.
            let verbose = env.split(',').map(str::trim).any(|d| {
                !d.contains('=') && matches!(d.to_ascii_lowercase().as_str(), "debug" | "trace")
            });
            if verbose && !env.contains("tungstenite") {
                format!("{env},{WS_LIBRARY_AT_MOST_INFO}")
            } else if !verbose && !env.contains("async_nats") {
                format!("{env},{NATS_CLIENT_OFF}")
            } else {
                env
            }
        }
        _ => format!("info,{NATS_CLIENT_OFF}"),
    };
    Ok(spec)
}

/// One line at start with the settings an operator checks first, each
/// named as its flag (`--max-clients` is `max_clients`); a 0 that means
/// no limit says `unlimited`. Settings that do not apply (a data
/// directory in memory or cluster mode, a burst with no rate limit) are
/// left out.
pub fn log_settings(args: &Args, addr: std::net::SocketAddr, tls: bool) {
    let cluster = !args.cluster.is_empty();
    let sqlite = !cluster && args.store == args::StoreKind::Sqlite;
    let store = match args.store {
        _ if cluster => "cluster",
        args::StoreKind::Sqlite => "sqlite",
        args::StoreKind::Memory => "memory",
    };
    let sync = match args.sync {
        args::SyncMode::Normal => "normal",
        args::SyncMode::Full => "full",
    };
    let data_dir = args.data_dir.to_string_lossy();
    let urls = args.cluster.join(",");
    // Kept on disk or in the cluster's streams; nowhere in memory mode.
    let kept = sqlite || cluster;
    let max_age = kept.then_some(tracing::field::display(Cap(args.history_max_age_days)));
    let max_mib = sqlite.then_some(tracing::field::display(Cap(args.store_max_mib)));
    let connect = args.connect_rate().beside(args.max_clients_per_ip as usize);
    info!(
        listen = %addr,
        tls = match (tls, args.tls_only) {
            (false, _) => "off",
            (true, false) => "on",
            (true, true) => "only",
        },
        store,
        data_dir = sqlite.then_some(data_dir.as_ref()),
        sync = sqlite.then_some(sync),
        cluster = cluster.then_some(urls.as_str()),
        node = args.node.as_deref().filter(|_| cluster),
        cluster_replicas = cluster.then_some(args.cluster_replicas),
        max_clients = args.max_clients,
        max_clients_per_ip = %Cap(args.max_clients_per_ip),
        connect_rate_per_ip = %Cap(u64::from(connect.per_minute)),
        connect_burst_per_ip = (connect.per_minute > 0).then_some(connect.burst),
        rate = %Cap(u64::from(args.rate)),
        burst = (args.rate > 0).then_some(args.burst),
        rate_bytes = %Cap(u64::from(args.rate_bytes())),
        burst_bytes = (args.rate_bytes() > 0).then(|| args.burst_bytes()),
        read_rate_bytes = %Cap(u64::from(args.read_rate_bytes())),
        read_burst_bytes = (args.read_rate_bytes() > 0).then(|| args.read_burst_bytes()),
        max_frame_bytes = args.max_frame_bytes,
        history_per_room = args.history_per_room,
        history_bytes_per_room = args.history_bytes_per_room,
        history_bytes_total = args.history_bytes_total,
        history_max_messages = kept.then_some(args.history_max_messages),
        history_max_age_days = max_age,
        history_prune_every_secs = kept.then_some(args.history_prune_every_secs),
        store_max_mib = max_mib,
        "settings"
    );
}

/// A limit whose 0 means none, as the log shows it.
struct Cap(u64);

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("unlimited"),
            n => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{log_filter, log_spec};

    /// At debug and trace, tungstenite writes each client message whole
    /// (session tokens, private text, raw newlines): it stays at info,
    /// unless `RUST_LOG` names it; at info and below it is not raised.
    #[test]
    fn the_websocket_library_logs_at_most_info_unless_named() {
        let spec = |flag: Option<&str>, env: Option<&str>| {
            log_spec(flag, env.map(str::to_owned)).expect("a valid spec")
        };
        for level in ["debug", "trace"] {
            assert!(spec(Some(level), None).ends_with(",tungstenite=info,tokio_tungstenite=info"));
            assert!(spec(None, Some(level)).ends_with(",tungstenite=info,tokio_tungstenite=info"));
        }
        assert!(!spec(Some("warn"), None).contains("tungstenite"));
        assert!(!spec(None, Some("warn")).contains("tungstenite"));
        assert!(!spec(None, Some("chatserver=trace")).contains("tungstenite"));
        assert_eq!(
            spec(None, Some("trace,tungstenite=trace")),
            "trace,tungstenite=trace"
        );
        assert!(log_filter(Some("trace"), None).is_ok());
    }

    /// The NATS client's lines, an error at every reconnect attempt, are
    /// left out below debug (the heartbeat's warnings say the cause once
    /// a minute at most); at debug they are shown.
    #[test]
    fn the_nats_clients_lines_are_left_out_below_debug() {
        let spec = |flag: Option<&str>| log_spec(flag, None).expect("a valid spec");
        for level in [None, Some("info"), Some("warn"), Some("error")] {
            assert!(spec(level).ends_with(",async_nats=off"), "{level:?}");
        }
        assert!(!spec(Some("debug")).contains("async_nats"));
        let env = |env: &str| log_spec(None, Some(env.to_owned())).expect("a valid spec");
        assert_eq!(env("info"), "info,async_nats=off");
        assert_eq!(
            env("warn,chatserver=info"),
            "warn,chatserver=info,async_nats=off"
        );
        assert!(!env("debug").contains("async_nats"));
        assert_eq!(env("info,async_nats=warn"), "info,async_nats=warn");
    }
}
