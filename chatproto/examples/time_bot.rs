//! A bot on the client core: it sits in a room and answers `!time`, to
//! whoever asked, with its clock's seconds since the Unix epoch.
//!
//! `cargo run -p chatproto --example time_bot -- 127.0.0.1:7878 lobby [--once]`
//!
//! With `--once` it leaves after its first answer (for CI).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use chatproto::{encode, Client, ClientEvent, ClientOutput, Decoded, FrameDecoder, ServerFrame};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().map_or("127.0.0.1:7878", String::as_str);
    let room = args.get(1).map_or("lobby", String::as_str);
    let once = args.iter().any(|a| a == "--once");
    let mut sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let mut bot = Client::new("timebot", &[room], "t");
    bot.handle_connected(ms());
    let (mut buf, mut dec) = (BytesMut::new(), FrameDecoder::default());
    let mut answered = false;
    loop {
        while let Some(out) = bot.poll() {
            match out {
                ClientOutput::Send(f) => sock.write_all(&encode(&f, 65_536).expect("fits"))?,
                ClientOutput::Event(ClientEvent::Joined { nick, .. }) => {
                    println!("joined as {nick}")
                }
                ClientOutput::Event(ClientEvent::Refused { message, .. }) => {
                    eprintln!("refused: {message}");
                    std::process::exit(4);
                }
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
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
        loop {
            match dec.decode::<ServerFrame>(&mut buf) {
                Decoded::Frame(frame) => bot.handle_frame(ms(), frame),
                // A frame this version does not know (a newer server): skip it.
                Decoded::Invalid(_) => {}
                Decoded::Incomplete => break,
                Decoded::Broken(why) => return Err(std::io::Error::other(why)),
            }
        }
        bot.handle_timeout(ms());
    }
}
