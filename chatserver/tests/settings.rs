//! Settings that cannot work are refused at start, naming the setting and
//! its range (exit 2); the log level from the flag wins over RUST_LOG; a
//! host name is resolved; the log can leave private text out; the log
//! says the settings in effect at start; README's flags table agrees
//! with the server.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, WAIT};
use serde_json::json;

/// Run chatserver with `args` and `env` until it exits (at most 10 s):
/// its exit code and stderr.
fn refused(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatserver"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHATSERVER_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    // Loopback on a port of the OS's choosing, unless the case is about
    // --listen itself.
    if !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.args(["--store", "memory"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chatserver");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let out = child.wait_with_output().expect("output");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(!stdout.contains("listening on"), "it listened: {stdout}");
            return (
                status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chatserver {args:?} did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_refused(args: &[&str], env: &[(&str, &str)], names: &[&str]) {
    let (code, stderr) = refused(args, env);
    assert_eq!(code, Some(2), "{args:?} {env:?}: {stderr}");
    for name in names {
        assert!(
            stderr.contains(name),
            "{args:?}: {name:?} not in {stderr:?}"
        );
    }
}

#[test]
fn settings_that_cannot_work_are_refused_with_their_range() {
    for (args, names) in [
        (
            vec!["--max-clients", "0"],
            vec!["--max-clients", "a whole number from 1 to 1000000"],
        ),
        (
            vec!["--outbound-queue-bytes", "0"],
            vec!["--outbound-queue-bytes"],
        ),
        (
            vec!["--threads", "100000"],
            vec!["--threads", "a whole number from 0 to 1024"],
        ),
        (vec!["--join-timeout-ms", "0"], vec!["--join-timeout-ms"]),
        (vec!["--burst", "0"], vec!["--burst"]),
        (
            vec!["--max-frame-bytes", "20000000"],
            vec!["--max-frame-bytes"],
        ),
        (
            vec!["--history-max-messages", "0"],
            vec!["--history-max-messages"],
        ),
        // Each in range, but not together.
        (
            vec!["--outbound-queue-bytes", "8192"],
            vec!["--outbound-queue-bytes", "--max-frame-bytes"],
        ),
        (
            vec!["--burst-bytes", "60000"],
            vec!["--burst-bytes", "--max-frame-bytes", "65536"],
        ),
        (
            vec!["--rate-bytes", "2000000000"],
            vec!["--rate-bytes", "a whole number from 0 to 1000000000"],
        ),
        (
            vec!["--replay-bytes", "2000000"],
            vec!["--replay-bytes", "--outbound-queue-bytes"],
        ),
        (
            vec!["--read-burst-bytes", "60000"],
            vec![
                "--read-burst-bytes",
                "--replay-bytes",
                "--max-frame-bytes",
                "524288",
            ],
        ),
        (
            vec!["--read-rate-bytes", "2000000000"],
            vec!["--read-rate-bytes", "a whole number from 0 to 1000000000"],
        ),
        (
            vec!["--outbound-queue-max-bytes", "65536"],
            vec!["--outbound-queue-max-bytes", "--outbound-queue-bytes"],
        ),
        (
            vec!["--slow-consumer-ms", "600001"],
            vec!["--slow-consumer-ms", "a whole number from 0 to 600000"],
        ),
        (
            vec!["--log-level", "loud"],
            vec!["--log-level", "error", "warn", "info", "debug", "trace"],
        ),
        (vec!["--listen", "nonsense"], vec!["--listen", "HOST:PORT"]),
        (
            vec!["--listen", "127.0.0.1:99999"],
            vec!["--listen", "0 to 65535"],
        ),
        (
            vec!["--allowed-origins", "chat.example.org"],
            vec!["--allowed-origins", "SCHEME://HOST"],
        ),
        (
            vec!["--allowed-origins", "https://a.example,https://b.example/x"],
            vec!["--allowed-origins", "SCHEME://HOST"],
        ),
        (
            vec!["--allowed-origins", "http://x.org:99999"],
            vec!["--allowed-origins", "99999", "not 1 to 65535"],
        ),
        (
            vec!["--metrics-allow", "10.0.0.0/8,ten"],
            vec!["--metrics-allow", "ADDRESS/PREFIX"],
        ),
    ] {
        assert_refused(&args, &[], &names);
    }
}

/// A port another process holds: exit 1 and one line on stderr that
/// names the address and what to do (nothing more, such as the hub's
/// own goodbye).
/// A cluster node whose port is taken stops before it touches NATS: its
/// start would heartbeat under its --node name, which a node running
/// under that name (the same command started twice) would see taken
/// over, and the other nodes would free that node's nicknames. Here NATS
/// is not even there: the port is what the node says.
#[test]
fn a_cluster_node_whose_port_is_taken_stops_before_nats() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local address").to_string();
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let nats = format!("nats://{nowhere}");
    let args = ["--listen", &addr, "--cluster", &nats, "--node", "x"];
    cannot_listen_on(&args, &addr);
}

/// A run with `args` that exits 1 with one line on stderr saying it
/// cannot listen on `addr`; that line.
fn cannot_listen_on(args: &[&str], addr: &str) -> String {
    let (code, stderr) = refused(args, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(
        lines[0].contains("cannot listen") && lines[0].contains(addr),
        "{stderr:?}"
    );
    lines[0].to_owned()
}

#[test]
fn a_port_in_use_is_one_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = taken.local_addr().expect("local address").to_string();
    for _ in 0..10 {
        let line = cannot_listen_on(&["--listen", &addr, "--log-level", "info"], &addr);
        assert!(
            line.contains("choose another port with --listen"),
            "{line:?}"
        );
    }
}

#[test]
fn a_bad_rust_log_is_refused_and_the_flag_wins_over_it() {
    assert_refused(&[], &[("RUST_LOG", "bogus")], &["RUST_LOG", "info"]);
    assert_refused(&[], &[("RUST_LOG", "chatserver=loud")], &["RUST_LOG"]);
    // The flag wins: the same environment starts a server that logs.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatserver"));
    cmd.env_remove("CHATSERVER_LOG_LEVEL")
        .env("RUST_LOG", "bogus")
        .args(["--log-level", "info"]);
    let first = first_line(cmd);
    assert!(first.starts_with("listening on "), "{first:?}");
}

/// The first line `cmd` (chatserver, given its other flags) prints on
/// stdout, started on a free loopback port without a store; it is then
/// stopped.
fn first_line(mut cmd: Command) -> String {
    cmd.args(["--listen", "127.0.0.1:0", "--store", "memory"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("start chatserver");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    first
}

/// A blank variable (an environment file's empty line) is as if not set,
/// whatever its setting: the server starts with its default. Before, a
/// blank `CHATSERVER_CLUSTER=` or `CHATSERVER_NODE=` switched cluster mode
/// on, and a blank log level or on/off setting stopped the server.
#[test]
fn blank_settings_in_the_environment_are_not_given() {
    for env in [
        ("CHATSERVER_CLUSTER", ""),
        ("CHATSERVER_NODE", " "),
        ("CHATSERVER_LOG_LEVEL", ""),
        ("CHATSERVER_ASCII_NICKS", ""),
        ("CHATSERVER_MAX_CLIENTS", " "),
        ("CHATSERVER_ALLOWED_ORIGINS", ""),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatserver"));
        cmd.env(env.0, env.1);
        let first = first_line(cmd);
        assert!(first.starts_with("listening on "), "{env:?}: {first:?}");
    }
}

/// A TLS key (or certificate) set in the environment without its partner:
/// clap names only the missing flag, to an operator who may have set no
/// flag at all; the error says which variable set the one given, and the
/// missing one's variable. Given on the command line, it is not told so.
#[test]
fn a_tls_file_from_the_environment_without_its_partner_names_the_variable() {
    for (var, missing, other) in [
        ("CHATSERVER_TLS_KEY", "--tls-cert", "CHATSERVER_TLS_CERT"),
        ("CHATSERVER_TLS_CERT", "--tls-key", "CHATSERVER_TLS_KEY"),
    ] {
        let (code, stderr) = refused(&[], &[(var, "/nonexistent/file.pem")]);
        assert_eq!(code, Some(2), "{var}: {stderr}");
        assert!(stderr.contains(missing), "{var}: {stderr}");
        let tip = format!("came from the environment variable {var}: give {missing} (or {other}) too, or unset it");
        assert!(stderr.contains(&tip), "{var}: {stderr}");
    }
    let (code, stderr) = refused(&["--tls-key", "/nonexistent/file.pem"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("environment variable"), "{stderr}");
}

/// A bad value from the environment names its variable as well as the flag
/// clap reports (an operator may not know `--max-clients` is
/// `CHATSERVER_MAX_CLIENTS`); one given on the command line names the flag.
#[test]
fn a_bad_value_from_the_environment_names_the_variable() {
    for (var, value, flag) in [
        ("CHATSERVER_MAX_CLIENTS", "abc", "--max-clients"),
        ("CHATSERVER_TLS_ONLY", "maybe", "--tls-only"),
    ] {
        let (code, stderr) = refused(&[], &[(var, value)]);
        assert_eq!(code, Some(2), "{var}: {stderr}");
        assert!(stderr.contains(flag), "{var}: {stderr}");
        let tip = format!("the value came from the environment variable {var}");
        assert!(stderr.contains(&tip), "{var}: {stderr}");
    }
    // An on/off flag's bad value is told which words it takes.
    let (_, stderr) = refused(&[], &[("CHATSERVER_ASCII_NICKS", "enabled")]);
    assert!(
        stderr.contains("use 1, true, yes or on, or 0, false, no or off"),
        "{stderr}"
    );
    let (code, stderr) = refused(
        &["--max-clients", "abc"],
        &[("CHATSERVER_MAX_CLIENTS", "5")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("environment variable"), "{stderr}");

    // A negative number is a bad value for its flag, not an unknown flag.
    let (code, stderr) = refused(&["--rate", "-1"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value '-1' for '--rate"),
        "{stderr}"
    );
    // So in `export` too (it was clap's "unexpected argument '-1'").
    let (code, stderr) = refused(&["export", "--since", "-1"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid value '-1' for '--since")
            && stderr.contains("a whole number, at least 0"),
        "{stderr}"
    );
    // In words that say what is wanted, whatever is wrong with it.
    for (flag, value, want) in [
        ("--rate", "-1", "a whole number from 0 to 1000000"),
        ("--max-clients", "abc", "a whole number from 1 to 1000000"),
        (
            "--max-clients",
            "99999999999999999999",
            "a whole number from 1 to 1000000",
        ),
        (
            "--history-bytes-total",
            "1.5",
            "a whole number, at least 1024",
        ),
    ] {
        let (code, stderr) = refused(&[flag, value], &[]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(want), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("invalid digit"), "{stderr}");
    }

    // Settings that cannot work together, or a file that cannot be read,
    // name the variables the flags came from too.
    let (code, stderr) = refused(
        &["--outbound-queue-bytes", "100000"],
        &[("CHATSERVER_REPLAY_BYTES", "200000")],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("(--replay-bytes is from CHATSERVER_REPLAY_BYTES)"),
        "{stderr}"
    );
    assert!(!stderr.contains("CHATSERVER_OUTBOUND"), "{stderr}");
    let (code, stderr) = refused(
        &[],
        &[
            ("CHATSERVER_TLS_CERT", "/nonexistent/cert.pem"),
            ("CHATSERVER_TLS_KEY", "/nonexistent/key.pem"),
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("(--tls-cert is from CHATSERVER_TLS_CERT)"),
        "{stderr}"
    );
}

#[test]
fn a_host_name_is_resolved() {
    let server = Server::start(&["--listen", "localhost:0"]);
    assert!(server.addr().ip().is_loopback(), "{}", server.addr());
    let mut alice = server.join("alice");
    alice.ping_pong();
}

#[test]
fn the_log_can_leave_private_text_out_and_says_who_left_at_shutdown() {
    let mut server = Server::start(&["--log-text", "public"]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    alice.expect_kind("presence");
    alice.send_frame(&json!({"type": "msg", "to": ["bob"], "text": "secret-words"}));
    bob.expect_kind("msg");
    alice.send_frame(&json!({"type": "msg", "text": "public-words"}));
    bob.expect_kind("msg");
    alice.expect_kind("msg");
    alice.expect_kind("msg");
    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    let log = server.log();
    assert!(log.contains("public-words"), "{log}");
    assert!(!log.contains("secret-words"), "{log}");
    assert!(log.contains("alice -> bob: (text not logged)"), "{log}");
    for nick in ["alice", "bob"] {
        assert!(
            log.contains(&format!("{nick} left (the server is shutting down)")),
            "{log}"
        );
    }
}

/// The settings line the server logs at start, once `listening on` and
/// the browser's line are out.
fn settings_line(server: &Server) -> String {
    assert!(
        server.second_line().starts_with("open http://"),
        "{}",
        server.log()
    );
    assert!(
        server.wait_for_line(" settings listen=", WAIT),
        "no settings line:\n{}",
        server.log()
    );
    let log = server.log();
    let line = log.lines().find(|l| l.contains(" settings listen="));
    line.expect("the line waited for").to_owned()
}

/// One line at start says the settings an operator checks first, named
/// as their flags, a 0 that means no limit as `unlimited`, and leaves out
/// what does not apply (a data directory in memory).
#[test]
fn the_settings_in_effect_are_logged_at_start() {
    let server = Server::start(&[
        "--max-clients",
        "7",
        "--max-clients-per-ip",
        "0",
        "--rate",
        "9",
        "--burst",
        "11",
        "--max-frame-bytes",
        "4096",
        "--history-per-room",
        "5",
    ]);
    let line = settings_line(&server);
    for said in [
        format!("listen={}", server.addr()),
        "tls=\"off\"".to_owned(),
        "store=\"memory\"".to_owned(),
        "max_clients=7 ".to_owned(),
        "max_clients_per_ip=unlimited ".to_owned(),
        // Not counted per address, so not throttled per address either.
        "connect_rate_per_ip=unlimited ".to_owned(),
        "rate=9 ".to_owned(),
        "burst=11 ".to_owned(),
        "max_frame_bytes=4096 ".to_owned(),
        "history_per_room=5 ".to_owned(),
        "history_bytes_per_room=1048576 ".to_owned(),
        "history_bytes_total=268435456".to_owned(),
    ] {
        assert!(line.contains(&said), "no {said:?} in {line}");
    }
    for absent in [
        "data_dir=",
        "sync=",
        "history_max_messages=",
        "history_prune_every_secs=",
        "cluster=",
        "connect_burst_per_ip=",
    ] {
        assert!(!line.contains(absent), "{absent:?} in {line}");
    }
}

/// With no rate limit (`--rate 0`), the line says `rate=unlimited` and
/// leaves out the allowances' bursts, which then shape nothing.
#[test]
fn the_settings_line_leaves_out_bursts_with_no_rate_limit() {
    let server = Server::start(&["--rate", "0", "--burst", "11"]);
    let line = settings_line(&server);
    for said in [
        "rate=unlimited ",
        "rate_bytes=unlimited ",
        "read_rate_bytes=unlimited ",
    ] {
        assert!(line.contains(said), "no {said:?} in {line}");
    }
    for absent in [" burst=", "burst_bytes=", "read_burst_bytes="] {
        assert!(!line.contains(absent), "{absent:?} in {line}");
    }
}

/// With the database: where it is, how it syncs, how long history is kept.
#[test]
fn the_settings_line_names_the_data_directory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let data = dir.path().join("data");
    let data = data.to_str().expect("a UTF-8 temporary path");
    let server = Server::start(&[
        "--data-dir",
        data,
        "--sync",
        "full",
        "--history-max-age-days",
        "0",
        "--history-max-messages",
        "500",
    ]);
    let line = settings_line(&server);
    for said in [
        "store=\"sqlite\"".to_owned(),
        format!("data_dir={data:?}"),
        "sync=\"full\"".to_owned(),
        "history_max_messages=500 ".to_owned(),
        "history_max_age_days=unlimited ".to_owned(),
        "history_prune_every_secs=60 ".to_owned(),
        "store_max_mib=unlimited".to_owned(),
    ] {
        assert!(line.contains(&said), "no {said:?} in {line}");
    }
}

/// README's server flags table: each row's flag, its default column and
/// its meaning column.
fn readme_server_flags() -> Vec<(String, String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).expect("read README.md");
    let table = readme
        .split("## The server's flags")
        .nth(1)
        .expect("README has the server's flags");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| flag |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').splitn(4, " | ").collect();
            let flag = cells[0].trim().trim_matches('`');
            let flag = flag.split_whitespace().next().expect("a flag").to_owned();
            (flag, cells[2].trim().to_owned(), cells[3].to_owned())
        })
        .collect()
}

/// The `[default: X]` of each flag in `chatserver --help`.
fn help_defaults() -> Vec<(String, Option<String>)> {
    let out = Command::new(env!("CARGO_BIN_EXE_chatserver"))
        .arg("--help")
        .output()
        .expect("run chatserver --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut flags = Vec::new();
    for line in help.lines() {
        if let Some(flag) = line.trim_start().strip_prefix("--") {
            let name = flag.split_whitespace().next().unwrap_or_default();
            flags.push((format!("--{name}"), None));
        } else if let Some(d) = line.trim().strip_prefix("[default: ") {
            if let Some(last) = flags.last_mut() {
                last.1 = Some(d.trim_end_matches(']').to_owned());
            }
        }
    }
    flags
}

/// The first `A to B` in `text`, both numbers.
fn range_in(text: &str) -> Option<(u64, u64)> {
    text.match_indices(" to ").find_map(|(at, _)| {
        let before = text[..at].rsplit(|c: char| !c.is_ascii_digit()).next()?;
        let after = text[at + 4..].split(|c: char| !c.is_ascii_digit()).next()?;
        Some((before.parse().ok()?, after.parse().ok()?))
    })
}

/// The number after the first `at least ` in `text`.
fn at_least_in(text: &str) -> Option<u64> {
    let (_, rest) = text.split_once("at least ")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// README's server flags table tells the truth: a row for every flag,
/// each with the server's default, and each numeric one with its range,
/// the range the server checks (a value just past it is refused, and
/// the refusal names the same range).
#[test]
fn readme_gives_each_server_flags_default_and_range() {
    let rows = readme_server_flags();
    let defaults = help_defaults();
    for (flag, default) in &defaults {
        if flag == "--help" || flag == "--version" {
            continue;
        }
        let row = rows.iter().find(|(f, _, _)| f == flag);
        let (_, readme_default, meaning) =
            row.unwrap_or_else(|| panic!("README has no row for {flag}"));
        if let Some(default) = default {
            assert_eq!(
                readme_default.trim_matches('`'),
                default,
                "{flag}'s default"
            );
        }
        if !readme_default.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        // (A to B) or (at least A); the server's own words for it.
        let (past, range) = match (range_in(meaning), at_least_in(meaning)) {
            (Some((low, high)), _) => (high + 1, format!("a whole number from {low} to {high}")),
            (None, Some(low)) if low > 0 => (low - 1, format!("a whole number, at least {low}")),
            _ => panic!("README gives no range for {flag}: {meaning}"),
        };
        assert_refused(&[flag, &past.to_string()], &[], &[flag, &range]);
    }
}
