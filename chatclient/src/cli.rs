//! The command line.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// A terminal client for chatserver.
#[derive(Debug, Parser)]
#[command(
    name = "chatclient",
    version,
    about = "Chat in rooms on a chatserver, with everyone there or with a few by name.",
    after_help = "\
Typing:
  hello                  to everyone in the current room
  @bob hi                to bob only (also @bob: hi)
  @bob @carol: hi        to bob and carol only
  /me waves              an action, shown as * alice waves
  /msg bob hi            to bob only; /query bob: every line to bob
  /join ROOM  /part [ROOM]  /rooms  /who  /history [N]  /clear  /help  /quit
  //text                 send a line that starts with /

TLS: --tls, or an address written tls://HOST:PORT, encrypts the connection
(chatserver --tls-cert); the server's certificate must be for HOST and
signed by a CA in --ca-cert (a LAN's own CA, or the server's self-signed
certificate), or without it by one the operating system trusts.

In a terminal the client is full-screen (PgUp/PgDn scroll, Tab completes,
F2 shows who is online, Ctrl-N/Ctrl-P change rooms, Ctrl-C clears the
line, Ctrl-C twice or Ctrl-D leaves); --plain (and --json, --verbatim,
--stay) give one line per event instead.

A lost connection is resumed: the client reconnects, waiting 0.5 s, then
twice as long each time up to 30 s, and shows what was missed once.

For scripts and bots: --json prints every frame from the server and one
outcome per input line (sent, refused, done, skipped, unconfirmed), in
input order, as JSON lines; --verbatim sends every line as text; --stay
keeps listening after the input ends, until SIGINT or SIGTERM. A refused
line is also told on stderr (line N refused: CODE: MESSAGE).

Exit codes: 0 left normally; 1 the connection ended and could not be
resumed; 2 bad command line; 3 could not connect; 4 nickname taken or
invalid; 5 server full; 6 connected but not let in (no welcome in time,
or the TLS handshake failed); 7 the server's certificate was not trusted;
8 left normally but at least one input line was not delivered, or (one
line per event) a room asked for was refused; 9 the session was resumed
on another connection (not reconnected); 130 Ctrl-C.

Set NO_COLOR for output without colours."
)]
pub struct Args {
    /// The nickname to join as: 1 to 32 characters, no spaces, none of
    /// @ : , " \ (beyond ASCII: letters and digits of one script;
    /// PROTOCOL.md section 3 has the whole rule).
    #[arg(short, long, env = "CHATCLIENT_NICK")]
    pub nick: String,

    /// The server's address, HOST:PORT, or tls://HOST:PORT to connect with TLS
    /// (the port, left out, is 7878).
    /// Several, comma-separated (the nodes of one cluster): each connection
    /// tries them in turn from a random one, so a reconnect after a node
    /// stops goes to another (with TLS, each node's certificate must be for
    /// the host of its own address).
    #[arg(env = "CHATCLIENT_ADDR", default_value = "127.0.0.1:7878", value_parser = parse_addr)]
    pub addr: Address,

    /// Connect with TLS (as a tls:// address does).
    #[arg(long, env = "CHATCLIENT_TLS", value_parser = on_off)]
    pub tls: bool,

    /// Trust the certificates in this PEM file (a LAN's own CA, or the
    /// server's self-signed certificate; several may follow each other)
    /// instead of the system's; implies --tls.
    #[arg(long, env = "CHATCLIENT_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// The rooms to enter at start (repeat the flag or separate with commas);
    /// the first is the current room.
    #[arg(long = "room", short = 'r', env = "CHATCLIENT_ROOMS", value_name = "ROOM",
          value_delimiter = ',', default_value = chatproto::LOBBY, value_parser = parse_room)]
    pub rooms: Vec<String>,

    /// Give up when connecting and joining take longer than this many seconds.
    #[arg(long, env = "CHATCLIENT_TIMEOUT", value_name = "SECS", default_value = "4", value_parser = parse_secs)]
    pub timeout: Duration,

    /// Ping a server silent this many seconds, to find a connection that
    /// died without a word (a link lost, packets vanishing).
    #[arg(long, env = "CHATCLIENT_PING_AFTER", value_name = "SECS", default_value = "15", value_parser = parse_secs)]
    pub ping_after: Duration,

    /// Call the connection lost (and reconnect) when nothing answered that
    /// ping for this many seconds more.
    #[arg(long, env = "CHATCLIENT_DEAD_AFTER", value_name = "SECS", default_value = "15", value_parser = parse_secs)]
    pub dead_after: Duration,

    /// How many times to try to reconnect after the connection is lost
    /// (0: never; exit at once).
    #[arg(
        long,
        env = "CHATCLIENT_RECONNECT_ATTEMPTS",
        value_name = "N",
        default_value_t = 10,
        value_parser = parse_attempts
    )]
    pub reconnect_attempts: u32,

    /// The first wait before reconnecting, in milliseconds (for tests; it
    /// doubles on each attempt, up to 30 s, and each wait is shortened at
    /// random by up to half).
    #[arg(long, env = "CHATCLIENT_RECONNECT_MIN_MS", value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=30_000), hide = true)]
    pub reconnect_min_ms: u64,

    /// Begin every pass over the addresses at this one (0: the first as
    /// given) instead of at a random one (for tests: a pass that meets a
    /// node refusing first, every time).
    #[arg(long, env = "CHATCLIENT_FIRST_ADDR", value_name = "I", hide = true)]
    pub first_addr: Option<usize>,

    /// The largest frame payload to send or accept, in bytes (at least
    /// 1024); a line is refused past the lower of this and the limit the
    /// server announces when it lets the client in.
    #[arg(long, env = "CHATCLIENT_MAX_FRAME_BYTES", value_name = "N",
          default_value_t = chatproto::DEFAULT_MAX_FRAME_BYTES, value_parser = parse_frame_bytes)]
    pub max_frame_bytes: usize,

    /// Print one JSON object per line: every frame from the server (with
    /// "local_time") and each input line's outcome, in input order.
    #[arg(long, env = "CHATCLIENT_JSON", value_parser = on_off)]
    pub json: bool,

    /// Send every input line as text to the current room: no @names, no
    /// /commands.
    #[arg(long, env = "CHATCLIENT_VERBATIM", value_parser = on_off)]
    pub verbatim: bool,

    /// Stay connected after the input ends, printing what arrives, until
    /// SIGINT or SIGTERM (or /quit, or the connection is lost for good).
    #[arg(long, env = "CHATCLIENT_STAY", value_parser = on_off)]
    pub stay: bool,

    /// One line per event with a prompt, even in a terminal, instead of the
    /// full-screen client (as when stdin or stdout is not a terminal).
    #[arg(long, env = "CHATCLIENT_PLAIN", value_parser = on_off)]
    pub plain: bool,

    /// Ring the terminal's bell when someone mentions you or writes to you
    /// only (full-screen client).
    #[arg(long, env = "CHATCLIENT_BELL", value_parser = on_off)]
    pub bell: bool,
}

/// Where the server is, and whether the address asked for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// HOST:PORT, without the scheme.
    pub host_port: String,
    /// Written `tls://HOST:PORT`.
    pub tls: bool,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            f.write_str("tls://")?;
        }
        f.write_str(&self.host_port)
    }
}

/// `HOST:PORT` or `tls://HOST:PORT` (the scheme in any case).
fn parse_addr(s: &str) -> Result<Address, String> {
    let s = s.trim();
    let (tls, rest) = match s.split_once("://") {
        None => (false, s),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("tls") => (true, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// is not a scheme chatclient knows; give HOST:PORT, or tls://HOST:PORT for TLS"
            ))
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("{s:?} is not HOST:PORT"));
    }
    let host_port = rest
        .split(',')
        .map(|one| with_port(one.trim()))
        .collect::<Result<Vec<_>, _>>()?
        .join(",");
    Ok(Address { host_port, tls })
}

/// The server's port when none is given.
const DEFAULT_PORT: u16 = 7878;

/// `HOST:PORT` as given, or `HOST` (a name, an IPv4 address, or an IPv6
/// one in brackets) with the server's default port. A port that is not
/// one, a host with a colon outside brackets, or a host that is a number
/// alone is a mistake in the command line (said so at once, not as a
/// name that does not resolve).
fn with_port(one: &str) -> Result<String, String> {
    let has_port = match one.strip_prefix('[') {
        Some(v6) => !v6.ends_with(']'),
        None => one.contains(':'),
    };
    // `7878` alone is a port given without its host, but the system's
    // resolver reads a number as an IPv4 address (7878 is 0.0.30.198),
    // off this machine: a host is never digits alone.
    let host = if has_port {
        one.rsplit_once(':').map_or(one, |(h, _)| h)
    } else {
        one
    };
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
        // (`one` is named apart only when the host is part of it: clap
        // quotes what was given already.)
        let given = if one == host {
            String::new()
        } else {
            format!("{one:?}: ")
        };
        return Err(format!(
            "{given}{host:?} is a number, not a host; give HOST:PORT, such as 127.0.0.1:{}",
            if has_port {
                DEFAULT_PORT.to_string()
            } else {
                host.to_owned()
            }
        ));
    }
    if !has_port || one.is_empty() {
        return Ok(match one.is_empty() {
            true => String::new(),
            false => format!("{one}:{DEFAULT_PORT}"),
        });
    }
    let (host, port) = one.rsplit_once(':').unwrap_or((one, ""));
    let bracketed = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (!bracketed && host.contains(':')) {
        return Err(format!(
            "{one:?} is not HOST:PORT (an IPv6 address goes in brackets, as in [::1]:7878)"
        ));
    }
    match port.parse::<u16>() {
        Err(_) => Err(format!(
            "{one:?}: {port:?} is not a port (a number from 1 to 65535)"
        )),
        // A server listens on the port the OS chose for its port 0: that
        // one is what to connect to (the server's first line says it).
        Ok(0) => Err(format!(
            "{one:?}: port 0 cannot be connected to; give the port the server says it listens on"
        )),
        Ok(_) => Ok(one.to_owned()),
    }
}

impl Args {
    /// [`Parser::parse`], with every `CHATCLIENT_*` variable set to nothing
    /// (a blank line of an environment file) counted as not set, as
    /// chatserver counts its own: it is unset first; and a bad value that
    /// came from a variable is told with the variable's name. Call it
    /// before any other thread starts.
    pub fn parse_env_tidy() -> Args {
        let blank: Vec<std::ffi::OsString> = std::env::vars_os()
            .filter(|(k, v)| {
                k.to_str().is_some_and(|k| k.starts_with("CHATCLIENT_"))
                    && v.to_str().is_some_and(|v| v.trim().is_empty())
            })
            .map(|(k, _)| k)
            .collect();
        for k in blank {
            std::env::remove_var(k);
        }
        let argv: Vec<OsString> = std::env::args_os().collect();
        parsing()
            .try_get_matches_from(&argv)
            .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m))
            .map_err(|e| name_the_variable(e, &argv))
            .unwrap_or_else(|e| e.exit())
    }

    /// Whether to connect with TLS: `--tls`, a `tls://` address or `--ca-cert`.
    pub fn use_tls(&self) -> bool {
        self.tls || self.addr.tls || self.ca_cert.is_some()
    }

    /// The rooms to enter, each once, in the order given.
    pub fn rooms(&self) -> Vec<String> {
        let mut rooms: Vec<String> = Vec::new();
        for r in &self.rooms {
            if !rooms.contains(r) {
                rooms.push(r.clone());
            }
        }
        rooms
    }
}

/// The command line as parsed: `--timeout -1` is a bad value for
/// `--timeout`, not an unknown flag `-1`.
fn parsing() -> clap::Command {
    use clap::CommandFactory;
    Args::command().mut_args(|a| {
        let takes = a.get_action().takes_values();
        a.allow_negative_numbers(takes)
    })
}

/// clap names the flag a bad value was for even when the value came from
/// the flag's variable, which whoever set it (in an environment file,
/// say) may not know stands for that flag (`--reconnect-min-ms` is not
/// in `--help` at all): then the variable is named after the flag,
/// `invalid value 'abc' for '--timeout <SECS>' (from CHATCLIENT_TIMEOUT)`.
/// Still clap's usage error, exit code 2; a bad value on the command line
/// keeps clap's words.
fn name_the_variable(err: clap::Error, argv: &[OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};

    if err.kind() == ErrorKind::InvalidUtf8 {
        let cmd = parsing();
        return match not_utf8(&cmd, argv, std::env::vars_os()) {
            Some(text) => clap::Error::raw(ErrorKind::InvalidUtf8, text).with_cmd(&cmd),
            None => err,
        };
    }
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return err;
    }
    let Some(ContextValue::String(shown)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let mut cmd = parsing();
    cmd.build();
    let Some((id, var)) = cmd
        .get_arguments()
        .find(|a| a.to_string() == *shown)
        .and_then(|a| Some((a.get_id().clone(), a.get_env()?.to_owned())))
    else {
        return err;
    };
    // clap reads a variable only for a flag the command line leaves out:
    // without the variable, a bad value from the command line is refused
    // again, the same way, and one from the variable is gone.
    let again = parsing()
        .mut_arg(id, |a| a.env(None))
        .try_get_matches_from(argv)
        .err();
    if again.is_some_and(|again| {
        again.kind() == err.kind()
            && again.get(ContextKind::InvalidArg) == err.get(ContextKind::InvalidArg)
    }) {
        return err;
    }
    let text = err.render().to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    let flag = format!(" for '{shown}'");
    let at = match text.find(&flag) {
        Some(i) => i + flag.len(),
        None => text.find('\n').unwrap_or(text.len()),
    };
    let text = format!(
        "{} (from {}){}",
        &text[..at],
        var.to_string_lossy(),
        &text[at..]
    );
    clap::Error::raw(err.kind(), text).with_cmd(&cmd)
}

/// clap says only "invalid UTF-8 was detected in one or more arguments",
/// also when the bytes came from a flag's environment variable: then
/// the words naming it (each, when several are), if no argument on the
/// command line is at fault. `None` when one is, or no such variable is
/// set.
fn not_utf8(
    cmd: &clap::Command,
    argv: &[OsString],
    vars: impl Iterator<Item = (OsString, OsString)>,
) -> Option<String> {
    use clap::parser::ValueSource;
    if argv.iter().any(|a| a.to_str().is_none()) {
        return None;
    }
    let vars: Vec<(OsString, OsString)> = vars.filter(|(_, v)| v.to_str().is_none()).collect();
    // The flags whose variable holds such bytes, but for a path (any
    // bytes make one).
    let any_bytes = |a: &clap::Arg| {
        let of = a.get_value_parser().type_id();
        of == std::any::TypeId::of::<std::path::PathBuf>()
            || of == std::any::TypeId::of::<std::ffi::OsString>()
    };
    let mut bad: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter(|a| !any_bytes(a))
        .filter_map(|a| {
            let var = a.get_env()?;
            vars.iter()
                .any(|(k, _)| k == var)
                .then(|| (a.get_id().clone(), var.to_string_lossy().into_owned()))
        })
        .collect();
    // Not those given on the command line: clap did not read their variable.
    let mut without = cmd.clone();
    for (id, _) in &bad {
        without = without.mut_arg(id.clone(), |a| a.env(None));
    }
    if let Ok(matches) = without.try_get_matches_from(argv) {
        bad.retain(|(id, _)| matches.value_source(id.as_str()) != Some(ValueSource::CommandLine));
    }
    let mut bad: Vec<String> = bad.into_iter().map(|(_, var)| var).collect();
    if bad.is_empty() {
        return None;
    }
    bad.sort();
    let (what, is) = match bad.len() {
        1 => ("variable", "is"),
        _ => ("variables", "are"),
    };
    Some(format!(
        "the environment {what} {} {is} not valid UTF-8\n",
        bad.join(", ")
    ))
}

/// An on/off flag's value from the environment: `1`, `true`, `yes`,
/// `on`, `0`, `false`, `no`, `off` (and `y`, `t`, `n`, `f`), in any case;
/// a bad one is refused naming them (clap's own parser said only "value
/// was not a boolean"), as chatserver's are.
fn on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        _ => Err("use 1, true, yes or on, or 0, false, no or off".to_owned()),
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s} is out of range; give 0 < SECS <= 3600"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--reconnect-attempts`: a whole number, refused in those words (a
/// sign or a letter read "invalid digit found in string").
fn parse_attempts(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of attempts; give 0 (never) or more"))
}

/// A frame limit: below chatproto's least, the codec would use its least
/// anyway, so such a value is refused rather than changed without a word.
fn parse_frame_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of bytes"))?;
    if n < chatproto::MIN_MAX_FRAME_BYTES {
        return Err(format!(
            "{n} is too small; give at least {} bytes",
            chatproto::MIN_MAX_FRAME_BYTES
        ));
    }
    Ok(n)
}

/// As `/join` takes it (`#rust` too), and worded so: the library's own
/// text is for frames, which carry no `#`. `rust`, `#rust` and `Rust`
/// all name the room `rust`.
fn parse_room(s: &str) -> Result<String, String> {
    crate::input::room_arg(s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port given alone (or any host of digits only, which the resolver
    /// would read as an IPv4 address elsewhere) is a usage error.
    #[test]
    fn a_number_alone_is_not_a_host() {
        let e = parse_addr("7878").unwrap_err();
        assert_eq!(
            e,
            "\"7878\" is a number, not a host; give HOST:PORT, such as 127.0.0.1:7878"
        );
        // Named apart when it is part of what was given.
        assert_eq!(
            parse_addr("1234:7879").unwrap_err(),
            "\"1234:7879\": \"1234\" is a number, not a host; give HOST:PORT, such as 127.0.0.1:7878"
        );
        assert!(parse_addr("tls://127.0.0.1:7878,9000").is_err());
        assert!(parse_addr("1234:7878")
            .unwrap_err()
            .contains("is a number, not a host"));
        // Names and addresses with digits in them are hosts.
        assert_eq!(parse_addr("127.0.0.1").unwrap().host_port, "127.0.0.1:7878");
        assert_eq!(parse_addr("node1:7879").unwrap().host_port, "node1:7879");
        assert_eq!(parse_addr("[::1]").unwrap().host_port, "[::1]:7878");
    }

    /// A negative number is a bad value for its flag, not an unknown flag.
    #[test]
    fn a_negative_number_names_its_flag() {
        let err = parsing()
            .try_get_matches_from(["chatclient", "--nick", "a", "--timeout", "-1"])
            .expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("--timeout"), "{err}");
    }

    #[test]
    #[cfg(unix)]
    fn a_variable_not_utf8_is_named() {
        use clap::CommandFactory;
        use std::os::unix::ffi::OsStringExt;
        let cmd = Args::command();
        let os = |s: &str| OsString::from(s);
        let bad = || OsString::from_vec(vec![b'a', 0xff]);
        let vars = || {
            vec![
                (os("CHATCLIENT_TIMEOUT"), bad()),
                (os("CHATCLIENT_NICK"), bad()),
                (os("CHATCLIENT_OTHER"), bad()),
                (os("CHATCLIENT_ADDR"), os("127.0.0.1:1")),
                // A path may be any bytes.
                (os("CHATCLIENT_CA_CERT"), bad()),
            ]
            .into_iter()
        };
        assert_eq!(
            not_utf8(&cmd, &[os("chatclient")], vars()).as_deref(),
            Some("the environment variables CHATCLIENT_NICK, CHATCLIENT_TIMEOUT are not valid UTF-8\n")
        );
        // Given on the command line, the variable was not read.
        let given = [os("chatclient"), os("--nick"), os("ann")];
        assert_eq!(
            not_utf8(&cmd, &given, vars()).as_deref(),
            Some("the environment variable CHATCLIENT_TIMEOUT is not valid UTF-8\n")
        );
        assert_eq!(not_utf8(&cmd, &[os("chatclient"), bad()], vars()), None);
    }

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["chatclient", "--nick", "alice"]).unwrap();
        assert_eq!(a.addr.to_string(), "127.0.0.1:7878");
        assert!(!a.use_tls());
        assert_eq!(a.timeout, Duration::from_secs(4));
        assert_eq!(a.rooms(), vec!["lobby"]);
        assert_eq!(a.reconnect_attempts, 10);
        assert_eq!(a.reconnect_min_ms, 500);
        assert_eq!(a.first_addr, None);
        assert_eq!(
            (a.ping_after, a.dead_after),
            (Duration::from_secs(15), Duration::from_secs(15))
        );
        assert_eq!(
            Duration::from_millis(chatproto::CLIENT_PING_AFTER_MS),
            a.ping_after,
            "the core's default"
        );
        let a = Args::try_parse_from(["chatclient", "-n", "bob", "10.0.0.1:9", "--timeout", "0.5"])
            .unwrap();
        assert_eq!(
            (a.nick.as_str(), a.addr.host_port.as_str()),
            ("bob", "10.0.0.1:9")
        );
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "0"]).is_err());
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "soon"]).is_err());
        let a =
            Args::try_parse_from(["chatclient", "-n", "x", "--reconnect-attempts", "0"]).unwrap();
        assert_eq!(a.reconnect_attempts, 0);
        assert!(!a.json && !a.verbatim && !a.stay);
        assert!(!a.plain && !a.bell);
        let a = Args::try_parse_from(["chatclient", "-n", "x", "--plain", "--bell"]).unwrap();
        assert!(a.plain && a.bell);
    }

    #[test]
    fn a_frame_limit_below_the_least_is_refused_not_raised() {
        let parse =
            |n: &str| Args::try_parse_from(["chatclient", "-n", "x", "--max-frame-bytes", n]);
        assert_eq!(parse("1024").unwrap().max_frame_bytes, 1024);
        assert_eq!(parse("100000").unwrap().max_frame_bytes, 100_000);
        let err = parse("10").unwrap_err().to_string();
        assert!(err.contains("10 is too small; give at least 1024"), "{err}");
        assert!(parse("0").is_err());
        assert!(parse("lots").is_err());
    }

    #[test]
    fn a_bad_number_of_attempts_says_what_it_wants() {
        let parse = |n: &str| {
            parsing()
                .try_get_matches_from(["chatclient", "-n", "x", "--reconnect-attempts", n])
                .and_then(|m| <Args as clap::FromArgMatches>::from_arg_matches(&m))
        };
        assert_eq!(parse("3").unwrap().reconnect_attempts, 3);
        for bad in ["-1", "abc", "99999999999"] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("give 0 (never) or more"), "{err}");
        }
    }

    #[test]
    fn a_bad_room_is_told_as_join_tells_it() {
        let parse = |r: &str| Args::try_parse_from(["chatclient", "-n", "x", "--room", r]);
        assert_eq!(parse("#Rust,lobby").unwrap().rooms(), ["rust", "lobby"]);
        let err = parse("bad room").unwrap_err().to_string();
        // `#rust` is taken here: the message must not say "no #".
        assert!(
            err.contains("not a room name: bad room") && err.contains("as in #rust"),
            "{err}"
        );
        assert!(!err.contains("no #"), "{err}");
    }

    #[test]
    fn line_mode_flags() {
        let a = Args::try_parse_from(["chatclient", "-n", "x", "--json", "--verbatim", "--stay"])
            .unwrap();
        assert!(a.json && a.verbatim && a.stay);
        assert!(Args::try_parse_from(["chatclient", "-n", "x", "--json=yes"]).is_err());
    }

    #[test]
    fn tls_from_the_flag_the_scheme_or_a_ca_cert() {
        let parse = |args: &[&str]| {
            let mut all = vec!["chatclient", "-n", "x"];
            all.extend_from_slice(args);
            Args::try_parse_from(all)
        };
        let a = parse(&["tls://chat.lan:7878"]).unwrap();
        assert_eq!(a.addr.host_port, "chat.lan:7878");
        assert!(a.addr.tls && a.use_tls());
        assert_eq!(a.addr.to_string(), "tls://chat.lan:7878");
        let a = parse(&["TLS://[::1]:7878/"]).unwrap();
        assert_eq!(a.addr.host_port, "[::1]:7878");
        assert!(a.use_tls());
        let a = parse(&["--tls", "chat.lan:7878"]).unwrap();
        assert!(a.tls && !a.addr.tls && a.use_tls());
        let a = parse(&["--ca-cert", "ca.pem", "chat.lan:7878"]).unwrap();
        assert_eq!(a.ca_cert.as_deref(), Some(std::path::Path::new("ca.pem")));
        assert!(a.use_tls());
        // No port: the server's default.
        for (given, meant) in [
            ("chat.lan", "chat.lan:7878"),
            ("tls://192.168.1.10", "192.168.1.10:7878"),
            ("[::1]", "[::1]:7878"),
            ("a:1, b", "a:1,b:7878"),
        ] {
            assert_eq!(parse(&[given]).unwrap().addr.host_port, meant, "{given}");
        }
        // A mistake in the address is one in the command line (exit 2),
        // not a name that does not resolve (exit 3).
        for bad in [
            "127.0.0.1:38829:99",
            "::1",
            "chat.lan:",
            "chat.lan:port",
            "chat.lan:70000",
            "chat.lan:0",
            "[::1]:0",
            "[::1:7878",
            "a:1,b:x",
        ] {
            let e = parse(&[bad]).expect_err(bad);
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        for bad in ["http://chat.lan:7878", "tls://", "tls://a/b"] {
            assert!(parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn rooms_repeat_or_split_on_commas() {
        let a = Args::try_parse_from([
            "chatclient",
            "-n",
            "x",
            "--room",
            "#Rust,lobby",
            "--room",
            "ops",
            "-r",
            "rust",
        ])
        .unwrap();
        assert_eq!(a.rooms(), vec!["rust", "lobby", "ops"]);
        for bad in ["a b", "-x", "", "café"] {
            assert!(
                Args::try_parse_from(["chatclient", "-n", "x", "--room", bad]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    /// README's table of the client's flags tells the truth: a row for
    /// every flag that `--help` shows (and `ADDR`), none for another,
    /// each with the flag's variable, its short form and its default.
    #[test]
    fn readme_gives_each_flags_variable_and_default() {
        use clap::CommandFactory;
        let readme = include_str!("../../README.md");
        let client = &readme[readme
            .find("\n## The client")
            .expect("README's client section")..];
        let table = &client[client
            .find("| flag | env | default | meaning |")
            .expect("the client's flags table")..];
        let mut rows = std::collections::BTreeMap::new();
        for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let names: Vec<&str> = cells[1]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.split(' ').next().unwrap())
                .collect();
            let (env, default) = (cells[2].trim_matches('`'), cells[3].trim_matches('`'));
            rows.insert(
                names[0].to_owned(),
                (names, env.to_owned(), default.to_owned()),
            );
        }
        let mut cmd = Args::command();
        cmd.build();
        let mut shown = 0;
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            let name = match arg.get_long() {
                Some(long) => format!("--{long}"),
                None => id.to_uppercase(),
            };
            let (names, env, default) = rows
                .get(&name)
                .unwrap_or_else(|| panic!("README has no row for {name}"));
            let short = arg.get_short().map(|c| format!("-{c}"));
            assert_eq!(
                names.get(1).copied(),
                short.as_deref(),
                "{name}: short form"
            );
            let var = arg.get_env().map(|v| v.to_string_lossy().into_owned());
            assert_eq!(Some(env.as_str()), var.as_deref(), "{name}: variable");
            let given: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            match given.as_slice() {
                [] => assert!(
                    ["(required)", "the system's roots"].contains(&default.as_str()),
                    "{name}: README's default {default:?}, none in clap"
                ),
                [off] if off == "false" => assert_eq!(default, "off", "{name}"),
                [one] => assert_eq!(default, one, "{name}: default"),
                more => panic!("{name}: defaults {more:?}"),
            }
            shown += 1;
        }
        assert_eq!(shown, rows.len(), "README's rows and the flags");
    }
}
