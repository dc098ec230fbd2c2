//! The command line.

use std::time::Duration;

use clap::Parser;

/// A terminal client for chatserver.
#[derive(Debug, Parser)]
#[command(
    name = "chatclient",
    version,
    about = "Chat with everyone on a chatserver, or with a few by name.",
    after_help = "\
Typing:
  hello                  to everyone
  @bob hi                to bob only (also @bob: hi)
  @bob @carol: hi        to bob and carol only
  /who  /help  /quit     who is online, this syntax, leave (Ctrl-D too)
  //text                 send a line that starts with /

Exit codes: 0 left normally; 1 the server ended the session; 2 bad command
line; 3 could not connect; 4 nickname taken or invalid; 5 server full;
6 connected but not let in (no welcome in time); 130 Ctrl-C.

Set NO_COLOR for output without colours."
)]
pub struct Args {
    /// The nickname to join as: 1 to 32 printable ASCII characters, no spaces, none of @ : , \" \\.
    #[arg(short, long, env = "CHATCLIENT_NICK")]
    pub nick: String,

    /// The server's address, HOST:PORT.
    #[arg(env = "CHATCLIENT_ADDR", default_value = "127.0.0.1:7878")]
    pub addr: String,

    /// Give up when connecting and joining take longer than this many seconds.
    #[arg(long, env = "CHATCLIENT_TIMEOUT", value_name = "SECS", default_value = "4", value_parser = parse_secs)]
    pub timeout: Duration,

    /// The largest frame payload to send or accept, in bytes; match the server's --max-frame-bytes.
    #[arg(long, env = "CHATCLIENT_MAX_FRAME_BYTES", value_name = "N", default_value_t = chatproto::DEFAULT_MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["chatclient", "--nick", "alice"]).unwrap();
        assert_eq!(a.addr, "127.0.0.1:7878");
        assert_eq!(a.timeout, Duration::from_secs(4));
        let a = Args::try_parse_from(["chatclient", "-n", "bob", "10.0.0.1:9", "--timeout", "0.5"])
            .unwrap();
        assert_eq!((a.nick.as_str(), a.addr.as_str()), ("bob", "10.0.0.1:9"));
        assert_eq!(a.timeout, Duration::from_millis(500));
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "0"]).is_err());
        assert!(Args::try_parse_from(["chatclient", "--nick", "x", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
