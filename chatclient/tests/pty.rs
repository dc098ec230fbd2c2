//! chatclient's line mode (`--plain`) in a real pseudo-terminal, as a
//! person uses it: what arrives on the terminal at once (a paste, fast
//! typing) is sent, every line. The full-screen client has its own tests
//! in `tui.rs`.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use common::{Client, Server, WAIT};
use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};

/// chatclient running on the slave side of a pty; we hold the master.
struct Terminal {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn portable_pty::MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    /// Everything the client wrote to the terminal, in chunks.
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
    /// The local modes the pty had before the client started.
    first_modes: String,
}

/// A pty's local modes (echo, canonical input, ...), as text.
fn modes(master: &dyn MasterPty) -> String {
    let termios = master.get_termios().expect("the pty's modes");
    format!("{:?}", termios.local_flags)
}

impl Terminal {
    fn start(nick: &str, addr: &str) -> Terminal {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: 24,
                cols: 80,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_chatclient"));
        cmd.args(["--nick", nick, addr, "--plain"]);
        cmd.env("TERM", "xterm-256color");
        cmd.env("NO_COLOR", "1");
        for key in [
            "CHATCLIENT_NICK",
            "CHATCLIENT_ADDR",
            "CHATCLIENT_TIMEOUT",
            "CHATCLIENT_MAX_FRAME_BYTES",
        ] {
            cmd.env_remove(key);
        }
        // Read before the client runs: read after, it may already have
        // changed them (seen under load).
        let first_modes = modes(&*pty.master);
        let child = pty.slave.spawn_command(cmd).expect("start chatclient");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Terminal {
            child,
            master: pty.master,
            writer,
            output,
            seen: Vec::new(),
            first_modes,
        }
    }

    /// Read the terminal until it has shown `text`.
    fn expect_shown(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !String::from_utf8_lossy(&self.seen).contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.extend_from_slice(&chunk),
                Err(e) => panic!(
                    "the terminal did not show {text:?} ({e}); it showed {:?}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// The terminal's local modes (echo, canonical input, ...), as text.
    fn local_modes(&self) -> String {
        modes(&*self.master)
    }

    /// Bytes as the terminal would deliver them, all in one write.
    fn type_bytes(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the pty");
        self.writer.flush().expect("flush the pty");
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A paste of 30 lines reaches the terminal as one burst of bytes with a
/// carriage return after each line (a terminal without bracketed paste
/// sends exactly that, as do two fast Enters). Every line must be sent.
#[test]
fn a_pasted_burst_of_30_lines_sends_all_30() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Terminal::start("alice", &server.addr);
    bob.expect("* alice is online");
    // The prompt: line editing has started and owns the terminal.
    alice.expect_shown("alice #lobby> ");

    let sent: Vec<String> = (1..=30).map(|i| format!("pasted line {i:02}")).collect();
    let burst: String = sent.iter().map(|l| format!("{l}\r")).collect();
    alice.type_bytes(burst.as_bytes());

    for line in &sent {
        bob.expect(&format!("alice: {line}"));
    }
    let got: Vec<&str> = bob
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("alice: "))
        .collect();
    assert_eq!(got, sent, "lines missing or out of order");
    // alice sees her own lines too, each when its echo arrives.
    alice.expect_shown("alice: pasted line 30");

    alice.type_bytes(b"/quit\r");
    bob.expect("* alice left");
}

/// SIGTERM leaves as `/quit` does and gives the terminal back in the
/// mode it had: line editing turned echo off, and a client killed while
/// reading left it off.
#[test]
fn sigterm_leaves_and_gives_the_terminal_back() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Terminal::start("alice", &server.addr);
    let before = alice.first_modes.clone();
    alice.expect_shown("alice #lobby> ");
    assert_ne!(
        alice.local_modes(),
        before,
        "line editing changed the modes"
    );
    let pid = alice.child.process_id().expect("the client's pid");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = alice.child.wait().expect("wait for the client");
    assert_eq!(status.exit_code(), 0, "{status:?}");
    assert_eq!(alice.local_modes(), before, "the terminal's modes");
    bob.expect("* alice left");
}

/// The prompt names the current room, and the prompt after a `/join` or
/// `/part` already shows where the next line goes.
#[test]
fn the_prompt_names_the_current_room() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Terminal::start("alice", &server.addr);
    alice.expect_shown("alice #lobby> ");
    alice.type_bytes(b"/join rust\r");
    alice.expect_shown("alice #rust> ");
    alice.type_bytes(b"/PART\r");
    alice.expect_shown("* #lobby is now the current room");
    let before = alice.seen.len();
    alice.type_bytes(b"back\r");
    bob.expect("alice: back");
    alice.expect_shown("alice: back");
    let after = String::from_utf8_lossy(&alice.seen[before..]).into_owned();
    assert!(!after.contains("#rust> "), "{after:?}");
    alice.type_bytes(b"/quit\r");
    bob.expect("* alice left");
}

/// `/query bob` changes the prompt at once (`-> bob`), and `/query` alone
/// takes it back: the prompt shown after the line is the one the next line
/// goes by, not the one before it.
#[test]
fn the_prompt_after_query_says_who_the_next_line_goes_to() {
    let server = Server::start(&[]);
    let mut bob = Client::start("bob", &server.addr);
    bob.expect("* bob is online");
    let mut alice = Terminal::start("alice", &server.addr);
    alice.expect_shown("alice #lobby> ");
    bob.expect("* alice is online");
    alice.type_bytes(b"/query bob\r");
    alice.expect_shown("alice #lobby -> bob> ");
    alice.type_bytes(b"/query\r");
    alice.expect_shown("lines go to everyone in the room again");
    let before = alice.seen.len();
    alice.type_bytes(b"to all\r");
    bob.expect("alice: to all");
    alice.expect_shown("alice: to all");
    let after = String::from_utf8_lossy(&alice.seen[before..]).into_owned();
    assert!(!after.contains("-> bob> "), "{after:?}");
    alice.type_bytes(b"/quit\r");
    bob.expect("* alice left");
}
