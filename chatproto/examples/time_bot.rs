//! A bot on the client core: it sits in a room and answers `!time`, to
//! whoever asked, with its clock's seconds since the Unix epoch. When the
//! connection is lost it connects again, and the core resumes its session:
//! an answer not yet acknowledged is sent again, once.
//!
//! `cargo run -p chatproto --example time_bot -- 127.0.0.1:7878 lobby [--once]`
//!
//! With `--once` it leaves after its first answer (for CI).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatproto::bytes::BytesMut;
use chatproto::{
    encode, Client, ClientEvent, ClientOutput, Decoded, ErrorCode, FrameDecoder, ServerFrame,
};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:7878", String::as_str);
    let room = args.get(1).map_or("lobby", String::as_str);
    let once = args.iter().any(|a| a == "--once");
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    // One core for the bot's whole life; a socket for each connection.
    let mut bot = Client::new("timebot", [room], "t");
    let (mut answered, mut failures) = (false, 0u32);
    loop {
        let mut sock = match TcpStream::connect(addr) {
            Ok(sock) => sock,
            Err(e) if failures >= 10 => return Err(e),
            Err(_) => {
                failures += 1;
                std::thread::sleep(Duration::from_millis(250 << failures.min(5)));
                continue;
            }
        };
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        bot.handle_connected(ms());
        let (mut buf, mut dec) = (BytesMut::new(), FrameDecoder::new(limit(&bot)));
        let why = 'conn: loop {
            while let Some(out) = bot.poll() {
                match out {
                    // Encoded with the server's limit: `send_msg` lets
                    // through whatever fits it.
                    ClientOutput::Send(f) => match encode(&f, limit(&bot)) {
                        Ok(b) if sock.write_all(&b).is_ok() => {}
                        _ => break 'conn "write failed",
                    },
                    ClientOutput::Event(ClientEvent::Joined { nick, .. }) => {
                        failures = 0;
                        println!("joined as {nick}")
                    }
                    ClientOutput::Event(ClientEvent::Refused { message, .. }) => {
                        eprintln!("refused: {message}");
                        std::process::exit(4);
                    }
                    // Another connection took the session over: reconnecting
                    // would take it back, and so on forever.
                    ClientOutput::Event(ClientEvent::Error {
                        code: ErrorCode::ResumedElsewhere,
                        ..
                    }) => {
                        eprintln!("this session continues on another connection; leaving");
                        std::process::exit(5);
                    }
                    // Nothing heard after a ping: the core counts the
                    // connection ended.
                    ClientOutput::Event(ClientEvent::Dead) => break 'conn "no answer to a ping",
                    // Replayed messages are history (a first entering) or
                    // were sent while away: too late for the time.
                    ClientOutput::Event(ClientEvent::Message {
                        room,
                        from,
                        text,
                        mine: false,
                        replay: false,
                        ..
                    }) if text.trim() == "!time" => {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .unwrap_or_default();
                        let answer = format!("the time is {} (unix seconds)", now.as_secs());
                        bot.send_msg(&room, vec![from], answer);
                    }
                    // Its own answer came back: acknowledged.
                    ClientOutput::Event(ClientEvent::Message { mine: true, .. }) => answered = true,
                    _ => {}
                }
            }
            if once && answered && bot.unacknowledged() == 0 {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk) {
                Ok(0) => break "closed by the server",
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break "read failed",
            }
            loop {
                match dec.decode::<ServerFrame>(&mut buf) {
                    Decoded::Frame(frame) => bot.handle_frame(ms(), frame),
                    // A frame this version does not know (a newer server): skip it.
                    Decoded::Invalid(_) => {}
                    Decoded::Incomplete => break,
                    Decoded::Broken(_) => break 'conn "broken stream",
                }
                // The `welcome` may announce a larger limit: between two
                // frames a new decoder takes over the rest of the buffer.
                if dec.max_frame_bytes() < limit(&bot) {
                    dec = FrameDecoder::new(limit(&bot));
                }
            }
            bot.handle_timeout(ms());
        };
        // What was not acknowledged is kept, and sent again once joined.
        bot.handle_disconnected();
        eprintln!("connection lost ({why}); reconnecting");
        failures += 1;
        std::thread::sleep(Duration::from_millis(250 << failures.min(5)));
    }
}

/// The largest frame either side may send: the server's, once it said.
fn limit(bot: &Client) -> usize {
    bot.max_frame_bytes()
}
