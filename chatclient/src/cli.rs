//! The command line.

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
  /join ROOM  /part [ROOM]  /rooms  /who  /history [N]  /help  /quit
  //text                 send a line that starts with /

A lost connection is resumed: the client reconnects, waiting 0.5 s, then
twice as long each time up to 30 s, and shows what was missed once.

Exit codes: 0 left normally; 1 the connection ended and could not be
resumed; 2 bad command line; 3 could not connect; 4 nickname taken or
invalid; 5 server full; 6 connected but not let in (no welcome in time);
130 Ctrl-C.

Set NO_COLOR for output without colours."
)]
pub struct Args {
    /// The nickname to join as: 1 to 32 characters, no spaces, none of @ : , \" \\.
    #[arg(short, long, env = "CHATCLIENT_NICK")]
    pub nick: String,

    /// The server's address, HOST:PORT.
    #[arg(env = "CHATCLIENT_ADDR", default_value = "127.0.0.1:7878")]
    pub addr: String,

    /// The rooms to enter at start (repeat the flag or separate with commas);
    /// the first is the current room.
    #[arg(long = "room", short = 'r', env = "CHATCLIENT_ROOMS", value_name = "ROOM",
          value_delimiter = ',', default_value = chatproto::LOBBY, value_parser = parse_room)]
    pub rooms: Vec<String>,

    /// Give up when connecting and joining take longer than this many seconds.
    #[arg(long, env = "CHATCLIENT_TIMEOUT", value_name = "SECS", default_value = "4", value_parser = parse_secs)]
    pub timeout: Duration,

    /// How many times to try to reconnect after the connection is lost
    /// (0: never; exit at once).
    #[arg(
        long,
        env = "CHATCLIENT_RECONNECT_ATTEMPTS",
        value_name = "N",
        default_value_t = 10
    )]
    pub reconnect_attempts: u32,

    /// The first wait before reconnecting, in milliseconds (for tests; it
    /// doubles on each attempt, up to 30 s).
    #[arg(long, env = "CHATCLIENT_RECONNECT_MIN_MS", value_name = "MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=30_000), hide = true)]
    pub reconnect_min_ms: u64,

    /// The largest frame payload to send or accept, in bytes; match the server's --max-frame-bytes.
    #[arg(long, env = "CHATCLIENT_MAX_FRAME_BYTES", value_name = "N", default_value_t = chatproto::DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
}

impl Args {
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

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s} is out of range; give 0 < SECS <= 3600"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `rust`, `#rust` and `Rust` all name the room `rust`.
fn parse_room(s: &str) -> Result<String, String> {
    let s = s.trim();
    chatproto::room_name(s.strip_prefix('#').unwrap_or(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["chatclient", "--nick", "alice"]).unwrap();
        assert_eq!(a.addr, "127.0.0.1:7878");
        assert_eq!(a.timeout, Duration::from_secs(4));
        assert_eq!(a.rooms(), vec!["lobby"]);
        assert_eq!(a.reconnect_attempts, 10);
        assert_eq!(a.reconnect_min_ms, 500);
        let a = Args::try_parse_from(["chatclient", "-n", "bob", "10.0.0.1:9", "--timeout", "0.5"])
            .unwrap();
        assert_eq!((a.nick.as_str(), a.addr.as_str()), ("bob", "10.0.0.1:9"));
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "0"]).is_err());
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "soon"]).is_err());
        let a =
            Args::try_parse_from(["chatclient", "-n", "x", "--reconnect-attempts", "0"]).unwrap();
        assert_eq!(a.reconnect_attempts, 0);
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
}
