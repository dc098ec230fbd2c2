//! The sans-IO client core driven by a script, over a plain blocking
//! socket: the core decides what to send and what happened; this loop
//! only moves bytes and reads the script.
//!
//! `cargo run -p chatproto --example script_client -- 127.0.0.1:7878 alice < script`
//!
//! Script lines: `enter ROOM`, `say ROOM TEXT`, `expect TEXT` (wait until
//! a message whose text contains TEXT arrives; exit 1 after 10 s),
//! `quit`. Every event is printed. A join refused (the nickname taken or
//! invalid, too long say) is said on stderr, and the script exits 2.
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chatproto::bytes::BytesMut;
use chatproto::{encode, Client, ClientEvent, ClientOutput, Decoded, FrameDecoder, ServerFrame};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7878".into());
    let nick = args.next().unwrap_or_else(|| "scripted".into());
    let mut sock = TcpStream::connect(&addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let mut client = Client::new(nick, [] as [&str; 0], "s");
    client.handle_connected(ms());
    let (mut buf, mut dec) = (BytesMut::new(), FrameDecoder::default());
    let mut seen: Vec<String> = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match cmd {
            "enter" => client.enter(rest),
            "say" => {
                let (room, text) = rest.split_once(' ').unwrap_or((rest, ""));
                client.send_msg(room, Vec::new(), text);
            }
            "quit" => break,
            _ => {}
        }
        // Run until the script's expectation is met, or until settled.
        let want = (cmd == "expect").then_some(rest);
        let deadline = Instant::now() + Duration::from_secs(if want.is_some() { 10 } else { 1 });
        loop {
            // The server's limit once it said (`send_msg` checks against it).
            let max = client.max_frame_bytes();
            while let Some(out) = client.poll() {
                match out {
                    ClientOutput::Send(f) => {
                        let bytes = encode(&f, max).map_err(std::io::Error::other)?;
                        sock.write_all(&bytes)?;
                    }
                    // No other nickname to try: the script ends here (a
                    // nickname too long is refused before it is sent).
                    ClientOutput::Event(ClientEvent::Refused { code, message, .. }) => {
                        eprintln!("the join was refused ({code}): {message}");
                        std::process::exit(2);
                    }
                    ClientOutput::Event(e) => {
                        println!("{e:?}");
                        if let ClientEvent::Message { text, .. } = e {
                            seen.push(text);
                        }
                    }
                    _ => {}
                }
            }
            if want.is_some_and(|w| seen.iter().any(|t| t.contains(w))) {
                break;
            }
            if Instant::now() >= deadline {
                if let Some(w) = want {
                    eprintln!("no message containing {w:?} within 10 s");
                    std::process::exit(1);
                }
                break;
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
            loop {
                match dec.decode::<ServerFrame>(&mut buf) {
                    Decoded::Frame(frame) => client.handle_frame(ms(), frame),
                    // A frame this version does not know (a newer server): skip it.
                    Decoded::Invalid(_) => {}
                    Decoded::Incomplete => break,
                    Decoded::Broken(why) => return Err(std::io::Error::other(why)),
                }
                // Its `welcome` may allow longer frames: a new decoder takes
                // the rest of the buffer between two frames.
                if dec.max_frame_bytes() < client.max_frame_bytes() {
                    dec = FrameDecoder::new(client.max_frame_bytes());
                }
            }
            client.handle_timeout(ms());
        }
    }
    Ok(())
}
