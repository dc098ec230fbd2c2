//! The full-screen client in a real pseudo-terminal, read as a person
//! sees it: every byte it writes goes through a terminal emulator (vt100)
//! and the tests look at the screen that results, rows and colours.
//!
//! Nothing sleeps to synchronise: each wait polls the screen as bytes
//! arrive, against a deadline, and fails showing the screen it saw.
//! Whether something is shown only once is checked after a later event
//! has arrived, so the screen had every chance to show it twice.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::fake::{FakeServer, Reply};
use common::proxy::Proxy;
use common::{Client, Server, CLIENT_ENV, WAIT};
use portable_pty::{native_pty_system, CommandBuilder, MasterPty, PtySize};

/// chatclient on the slave side of a pty; we hold the master and a
/// terminal emulator fed with everything it writes.
struct Screen {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Box<dyn MasterPty + Send>,
    writer: Box<dyn Write + Send>,
    output: Receiver<Vec<u8>>,
    term: vt100::Parser,
}

fn size(cols: u16, rows: u16) -> PtySize {
    PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    }
}

impl Screen {
    fn start(nick: &str, addr: &str, cols: u16, rows: u16, args: &[&str]) -> Screen {
        Self::start_env(nick, addr, cols, rows, args, &[])
    }

    fn start_env(
        nick: &str,
        addr: &str,
        cols: u16,
        rows: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Screen {
        let pty = native_pty_system()
            .openpty(size(cols, rows))
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_chatclient"));
        cmd.args(["--nick", nick, addr]);
        cmd.args(args);
        for key in CLIENT_ENV {
            cmd.env_remove(key);
        }
        cmd.env_remove("NO_COLOR");
        cmd.env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pty.slave.spawn_command(cmd).expect("start chatclient");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let writer = pty.master.take_writer().expect("pty writer");
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
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
        let term = vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        );
        Screen {
            child,
            master: pty.master,
            writer,
            output,
            term,
        }
    }

    /// The screen's rows, trailing blanks cut.
    fn rows(&self) -> Vec<String> {
        let (_, cols) = self.term.screen().size();
        self.term
            .screen()
            .rows(0, cols.get())
            .map(|r| r.trim_end().to_owned())
            .collect()
    }

    fn shown(&self) -> String {
        self.rows().join("\n")
    }

    /// The last row: the input line.
    fn input_row(&self) -> String {
        self.rows().last().cloned().unwrap_or_default()
    }

    /// The row above it: the status bar.
    fn status_row(&self) -> String {
        let rows = self.rows();
        rows[rows.len() - 2].clone()
    }

    /// Read what the client writes until `done` holds for the screen.
    fn wait_until(&mut self, what: &str, done: impl Fn(&Screen) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.term.process(&chunk),
                Err(e) => panic!(
                    "the screen never showed {what} ({e}); it shows:\n{}",
                    self.shown()
                ),
            }
        }
    }

    /// Wait until the screen shows `text` somewhere.
    fn expect(&mut self, text: &str) {
        self.wait_until(&format!("{text:?}"), |s| s.shown().contains(text));
    }

    /// Bytes as a terminal sends them for keys, all in one write.
    fn keys(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the pty");
        self.writer.flush().expect("flush the pty");
    }

    /// A paste, as a terminal sends it in bracketed-paste mode.
    fn paste(&mut self, text: &str) {
        assert!(
            self.term.screen().bracketed_paste(),
            "the client did not turn bracketed paste on"
        );
        let mut bytes = b"\x1b[200~".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\x1b[201~");
        self.keys(&bytes);
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        self.master
            .resize(size(cols, rows))
            .expect("resize the pty");
        let nz = |n| std::num::NonZeroU16::new(n).expect("a size");
        self.term.screen_mut().set_size(nz(rows), nz(cols));
    }

    /// Wait for the client to exit; its exit code.
    fn wait_exit(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            // Keep reading so the client never blocks on a full pty.
            while let Ok(chunk) = self.output.try_recv() {
                self.term.process(&chunk);
            }
            if let Some(status) = self.child.try_wait().expect("child status") {
                // Everything it wrote before exiting, up to the end of the
                // pty (closed when the last process holding it exits).
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.output.recv_timeout(left) {
                        Ok(chunk) => self.term.process(&chunk),
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        Err(e) => panic!("the pty did not close: {e}"),
                    }
                }
                return status.exit_code();
            }
            assert!(
                Instant::now() < deadline,
                "the client did not exit; the screen shows:\n{}",
                self.shown()
            );
            // Polling the exit status: a bounded wait, not synchronisation.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// bob, a line-mode client in `rooms`, seen online.
fn bob_in(server: &Server, rooms: &str) -> Client {
    let mut bob = Client::start_opts("bob", &server.addr, &["--room", rooms], &[]);
    bob.expect("* bob is online");
    bob
}

/// alice full-screen at 80x24 in the lobby (and the rooms `args` name),
/// seen online by bob, her screen showing she is in the lobby.
fn alice_with(server: &Server, bob: &mut Client, args: &[&str]) -> Screen {
    let mut alice = Screen::start("alice", &server.addr, 80, 24, args);
    bob.expect_line("alice online", |l| l.ends_with("* alice is online"));
    alice.wait_until("the input line", |s| {
        s.input_row().starts_with("alice #lobby>")
    });
    alice.expect("--> alice is online");
    alice
}

const ENTER: &[u8] = b"\r";
const CTRL_C: &[u8] = b"\x03";
const TAB: &[u8] = b"\t";
const PAGE_UP: &[u8] = b"\x1b[5~";
const PAGE_DOWN: &[u8] = b"\x1b[6~";
const F2: &[u8] = b"\x1bOQ";

/// A paste of three lines is three messages; a paste of eight asks once,
/// and `y` sends all eight. A burst of typed lines without bracketed paste
/// (what fast typing or an old terminal sends) is every line too.
#[test]
fn pasted_lines_are_separate_messages_and_a_long_paste_asks_once() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);

    alice.paste("one\ntwo\nthree\n");
    for l in ["one", "two", "three"] {
        bob.expect(&format!("alice: {l}"));
    }
    let eight: Vec<String> = (1..=8).map(|i| format!("pasted {i}")).collect();
    alice.paste(&eight.join("\n"));
    alice.wait_until("the question", |s| {
        s.input_row()
            .contains("send the 7 pasted lines as 7 messages? y or Enter: send, n or Esc: drop")
    });
    alice.keys(b"y");
    for l in &eight[..7] {
        bob.expect(&format!("alice: {l}"));
    }
    // The last line had no line break: it waits in the input line.
    alice.wait_until("the rest in the input line", |s| {
        s.input_row() == "alice #lobby> pasted 8"
    });
    alice.keys(ENTER);
    bob.expect("alice: pasted 8");

    let burst: Vec<String> = (1..=30).map(|i| format!("typed line {i:02}")).collect();
    let bytes: String = burst.iter().map(|l| format!("{l}\r")).collect();
    alice.keys(bytes.as_bytes());
    for l in &burst {
        bob.expect(&format!("alice: {l}"));
    }
    alice.expect("alice: typed line 30");
}

/// A paste without bracketed paste, longer than the client reads from
/// the terminal at a time (1 KiB): every line is sent, once, in order, and
/// the tail after the last line break waits in the input line. The client
/// used to read one chunk and then wait for the terminal to say there was
/// more, which it had said already: the rest of the paste sat unread
/// until the next key.
#[test]
fn a_paste_without_brackets_longer_than_one_read_is_read_to_its_end() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);

    let lines: Vec<String> = (1..=40)
        .map(|i| format!("unbracketed line {i:02} {}", "z".repeat(40)))
        .collect();
    let mut bytes: String = lines.iter().map(|l| format!("{l}\r")).collect();
    assert!(bytes.len() > 2048, "more than two reads of the terminal");
    bytes.push_str("the tail");
    alice.keys(bytes.as_bytes());

    for l in &lines {
        bob.expect(&format!("alice: {l}"));
    }
    alice.wait_until("the tail in the input line", |s| {
        s.input_row() == "alice #lobby> the tail"
    });
    alice.keys(ENTER);
    bob.expect("alice: the tail");
    let got: Vec<&str> = bob
        .seen
        .iter()
        .filter_map(|l| l.strip_prefix("alice: "))
        .collect();
    let mut want: Vec<&str> = lines.iter().map(String::as_str).collect();
    want.push("the tail");
    assert_eq!(got, want, "lines missing, repeated or out of order");
}

/// PgUp shows older lines and the status bar says there is more below;
/// new lines do not move the view; PgDn (and the wheel) come back.
#[test]
fn scrollback_with_page_keys_and_the_mouse_wheel() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    let lines: Vec<String> = (0..60).map(|i| format!("line {i:02}")).collect();
    bob.say_all(&lines);
    alice.expect("bob: line 59");
    assert!(!alice.shown().contains("bob: line 30"));

    alice.keys(PAGE_UP);
    alice.wait_until("older lines", |s| s.shown().contains("bob: line 37"));
    alice.wait_until("the scroll mark", |s| s.status_row().contains("more below"));
    let top = alice.rows()[0].clone();
    // A new line arrives: the view stays, the bar counts it.
    bob.say("news");
    alice.wait_until("a count of new lines", |s| {
        s.status_row().contains("1 new below")
    });
    assert_eq!(alice.rows()[0], top, "the view moved");
    assert!(!alice.shown().contains("bob: news"));

    // The wheel, as xterm reports it in SGR mode: three rows per notch.
    alice.keys(b"\x1b[<64;10;5M");
    alice.wait_until("three rows further back", |s| s.rows()[3] == top);
    alice.keys(b"\x1b[<65;10;5M");
    alice.wait_until("three rows back down", |s| s.rows()[0] == top);

    alice.keys(PAGE_DOWN);
    alice.keys(PAGE_DOWN);
    alice.wait_until("the newest line", |s| {
        s.shown().contains("bob: news") && !s.status_row().contains("below")
    });
}

/// At 40 columns a long message wraps at word boundaries with the rows
/// after the first under its text; emoji and CJK take two columns each,
/// and a zero-width joiner inside an emoji is shown as text, not escaped.
#[test]
fn wraps_at_40_columns_with_a_hanging_indent() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = Screen::start("alice", &server.addr, 40, 12, &[]);
    bob.expect("* alice is online");
    bob.say("this message is long enough to need three rows at forty columns");
    alice.expect("columns");
    let rows = alice.rows();
    let at = rows
        .iter()
        .position(|r| r.contains("bob: this message"))
        .expect("the first row");
    assert!(
        rows[at].ends_with("bob: this message is long enough"),
        "{rows:#?}"
    );
    assert_eq!(rows[at + 1], "           to need three rows at forty");
    assert_eq!(rows[at + 2], "           columns");

    let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
    bob.say(&format!("漢字漢字漢字漢字漢字漢字 {family} ok"));
    alice.expect("ok");
    let rows = alice.rows();
    let at = rows
        .iter()
        .position(|r| r.contains("bob: 漢字"))
        .expect("the CJK row");
    // 11 columns of prefix, then 14 characters of two columns each: 38.
    assert!(
        rows[at].ends_with("bob: 漢字漢字漢字漢字漢字漢字"),
        "{rows:#?}"
    );
    assert!(rows[at + 1].starts_with("           "), "{rows:#?}");
    assert!(!alice.shown().contains("\\u{200d}"), "{}", alice.shown());

    // Resized, the screen is drawn again at the new width.
    alice.resize(60, 12);
    alice.wait_until("the status bar at 60 columns", |s| {
        s.rows()
            .iter()
            .any(|r| r.contains("bob: this message is long enough to need three rows"))
    });
}

/// alice's own line appears once: first marked as being sent, then, when
/// the echo arrives, once in its place. The mark is checked while the
/// server's answer is held back by a proxy.
#[test]
fn own_line_once_with_a_mark_until_acknowledged() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = bob_in(&server, "lobby");
    proxy.allow();
    let mut alice = Screen::start("alice", &proxy.addr, 80, 24, &[]);
    bob.expect("* alice is online");
    alice.wait_until("the input line", |s| {
        s.input_row().starts_with("alice #lobby>")
    });

    let valve = proxy.freeze();
    alice.keys(b"is it there?\r");
    alice.expect("--:-- alice: is it there?");
    bob.expect("alice: is it there?");
    drop(valve);
    alice.wait_until("the echo", |s| {
        s.shown().contains(" alice: is it there?") && !s.shown().contains("--:--")
    });
    // Something later, then count.
    bob.say("after");
    alice.expect("bob: after");
    let shown = alice.shown();
    assert_eq!(shown.matches("alice: is it there?").count(), 1, "{shown}");
}

/// Ctrl-C clears the input line (and only that); twice on the empty line
/// it leaves at once (exit 130) and gives the terminal back.
#[test]
fn ctrl_c_clears_the_line_and_twice_leaves() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    alice.keys(b"half a thought");
    alice.wait_until("the typing", |s| s.input_row().ends_with("half a thought"));
    alice.keys(CTRL_C);
    alice.wait_until("an empty line, no hint", |s| {
        s.input_row().trim_end() == "alice #lobby>"
    });
    alice.keys(CTRL_C);
    alice.wait_until("a hint", |s| {
        s.input_row() == "alice #lobby> Ctrl-C again to leave"
    });
    assert!(alice.term.screen().alternate_screen());
    alice.keys(CTRL_C);
    assert_eq!(alice.wait_exit(), 130);
    assert!(
        !alice.term.screen().alternate_screen(),
        "the terminal was not given back"
    );
    bob.expect("* alice left");
}

/// Ctrl-D on an empty line leaves normally (exit 0), as /quit does.
#[test]
fn ctrl_d_leaves_normally() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    alice.keys(b"\x04");
    assert_eq!(alice.wait_exit(), 0);
    bob.expect("* alice left");
}

/// A message the server refuses comes back into the input line, to be
/// mended; leaving, the client counts the typed lines not delivered, not
/// its room switches (Ctrl-N sends them to the session as lines too).
#[test]
fn a_refused_message_comes_back_into_the_input_line() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    alice.keys(b"/join rust\r");
    alice.wait_until("#rust current", |s| {
        s.input_row().starts_with("alice #rust>")
    });
    alice.keys(b"\x0e");
    alice.wait_until("#lobby current", |s| {
        s.input_row().starts_with("alice #lobby>")
    });
    alice.keys(b"@zed hello there\r");
    alice.expect("unknown_nick");
    alice.wait_until("the message back in the input line", |s| {
        s.input_row() == "alice #lobby> @zed hello there"
    });
    // Mended and sent again: bob gets it.
    alice.keys(b"\x15@bob hello there\r");
    bob.expect("alice -> bob: hello there");
    alice.keys(b"/quit\r");
    assert_eq!(alice.wait_exit(), 8);
    assert!(
        alice
            .shown()
            .contains("chatclient: 1 typed line was not delivered"),
        "{}",
        alice.shown()
    );
}

/// SIGTERM leaves as /quit does: the terminal is given back, exit 0.
#[test]
fn sigterm_gives_the_terminal_back() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    let pid = alice.child.process_id().expect("the client's pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert_eq!(alice.wait_exit(), 0);
    assert!(
        !alice.term.screen().alternate_screen(),
        "the terminal was not given back"
    );
    bob.expect("* alice left");
}

/// chatclient `--nick alice` on a pty, started with SIGHUP ignored (as
/// `nohup` or a shell's `trap '' HUP` do), whose output is read until
/// [`Nohup::hang_up`] closes the terminal.
#[cfg(target_os = "linux")]
struct Nohup {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    master: Option<Box<dyn MasterPty + Send>>,
    writer: Option<Box<dyn Write + Send>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    reading: Option<std::thread::JoinHandle<()>>,
}

#[cfg(target_os = "linux")]
impl Nohup {
    fn start(addr: &str) -> Nohup {
        use std::os::fd::BorrowedFd;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

        let pty = native_pty_system()
            .openpty(size(80, 24))
            .expect("open a pty");
        let mut cmd = CommandBuilder::new("sh");
        cmd.args([
            "-c",
            "trap '' HUP; exec \"$0\" --nick alice \"$1\"",
            env!("CARGO_BIN_EXE_chatclient"),
            addr,
        ]);
        for key in CLIENT_ENV {
            cmd.env_remove(key);
        }
        cmd.env("TERM", "xterm-256color");
        let child = pty.slave.spawn_command(cmd).expect("start chatclient");
        drop(pty.slave);
        // What it draws is read (so that it never blocks on a full pty)
        // until the hangup: then the reader lets go of the terminal too.
        let master = pty.master;
        let fd = master.as_raw_fd().expect("the pty's fd");
        let mut reader = master.try_clone_reader().expect("pty reader");
        let writer = master.take_writer().expect("pty writer");
        let stop = Arc::new(AtomicBool::new(false));
        let reading = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // SAFETY: `master` keeps the fd open until this thread is
                // joined.
                let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                let mut buf = [0u8; 8192];
                while !stop.load(Ordering::Relaxed) {
                    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
                    if poll(&mut fds, PollTimeout::from(50u16)).unwrap_or(0) > 0
                        && matches!(reader.read(&mut buf), Ok(0) | Err(_))
                    {
                        return;
                    }
                }
            })
        };
        Nohup {
            child,
            master: Some(master),
            writer: Some(writer),
            stop,
            reading: Some(reading),
        }
    }

    fn keys(&mut self, bytes: &[u8]) {
        let w = self.writer.as_mut().expect("not hung up");
        w.write_all(bytes).expect("write to the pty");
        w.flush().expect("flush the pty");
    }

    /// Close the last of the terminal's master side: a hangup.
    fn hang_up(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = self.reading.take() {
            r.join().expect("the pty reader");
        }
        self.writer = None;
        self.master = None;
    }

    /// Its exit code, polled until `within` has passed.
    fn wait_exit(&mut self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return status.exit_code();
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            // Polling the exit status: a bounded wait, not synchronisation.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Stopped if the test fails (it would spin on for ever).
#[cfg(target_os = "linux")]
impl Drop for Nohup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A terminal that hangs up (its window closed) while the client ignores
/// SIGHUP (`nohup`, a shell's `trap '' HUP`): the client leaves, instead
/// of staying online behind a terminal nobody can type into, its key
/// reader spinning on the end of input.
#[cfg(target_os = "linux")]
#[test]
fn a_terminal_that_hangs_up_with_sighup_ignored_is_left() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = Nohup::start(&server.addr);
    bob.expect_line("alice online", |l| l.ends_with("* alice is online"));
    alice.hang_up();
    bob.expect("* alice left");
    assert_eq!(alice.wait_exit(WAIT), 0);
}

/// A terminal gone while a message typed there waits for a server that
/// does not answer: the client leaves anyway after a bounded wait (10 s),
/// as a second Ctrl-C does, rather than wait through its reconnects with
/// nobody to see it.
#[cfg(target_os = "linux")]
#[test]
fn a_hung_up_client_whose_server_does_not_answer_leaves_after_a_while() {
    let (came, seen) = mpsc::channel();
    let server = FakeServer::letting_in(move || {
        let _ = came.send(());
        Reply::Send(Vec::new())
    });
    let mut alice = Nohup::start(&server.addr);
    alice.keys(b"never answered\r");
    seen.recv_timeout(WAIT)
        .expect("the message reached the server");
    alice.hang_up();
    assert_eq!(alice.wait_exit(WAIT), 130);
}

/// Tab completes commands, rooms and nicknames; Tab again cycles.
#[test]
fn tab_completes_commands_rooms_and_nicks() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &["--room", "lobby,rust"]);
    // Said in #rust's own view; the status bar lists it once entered.
    alice.wait_until("#rust entered", |s| s.status_row().contains("#rust"));
    alice.keys(b"hi b");
    alice.keys(TAB);
    alice.wait_until("bob completed", |s| s.input_row() == "alice #lobby> hi bob");
    alice.keys(b"how are you\r");
    bob.expect("alice: hi bob how are you");
    alice.keys(b"/jo");
    alice.keys(TAB);
    alice.keys(b"ru");
    alice.keys(TAB);
    alice.wait_until("the command completed", |s| {
        s.input_row() == "alice #lobby> /join rust"
    });
    alice.keys(ENTER);
    alice.wait_until("#rust current", |s| {
        s.input_row().starts_with("alice #rust>")
    });
    assert!(
        alice.status_row().starts_with(" #rust  #lobby"),
        "{}",
        alice.status_row()
    );
    // #rust's view has what was said of it at the start.
    alice.expect("* entered #rust");
}

/// A mention in another room flags it in the status bar, in bold (and
/// colour); a private message counts as one; the bar is in reverse video.
#[test]
fn a_mention_in_another_room_is_highlighted() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "rust");
    let mut alice = Screen::start("alice", &server.addr, 80, 24, &["--room", "lobby,rust"]);
    bob.expect("* alice is online");
    alice.wait_until("the input line", |s| {
        s.input_row().starts_with("alice #lobby>")
    });
    bob.say("nothing for anyone");
    alice.wait_until("one unread", |s| s.status_row().contains("#rust 1"));
    assert!(!alice.status_row().contains("#rust 1!"));
    bob.say("alice: are you there?");
    alice.wait_until("the mention", |s| s.status_row().contains("#rust 2!"));
    let row = alice.rows().len() as u16 - 2;
    let col = alice.status_row().find("#rust 2!").unwrap() as u16;
    let cell = alice.term.screen().cell(row, col).unwrap().clone();
    assert!(cell.bold() && cell.inverse(), "{cell:?}");
    assert_ne!(cell.fgcolor(), vt100::Color::Default, "colour allowed here");

    // Reading the room clears it; a private message in the current room
    // marks the line itself.
    alice.keys(b"\x0e"); // Ctrl-N
    alice.wait_until("#rust read", |s| s.status_row().starts_with(" #rust "));
    assert!(!alice.status_row().contains('!'));
    bob.say("@alice psst");
    alice.expect("bob -> alice: psst");
    let rows = alice.rows();
    let row = rows
        .iter()
        .position(|r| r.contains("bob -> alice: psst"))
        .unwrap() as u16;
    let mark = alice.term.screen().cell(row, 0).unwrap().clone();
    assert!(
        mark.inverse(),
        "the time of a line for us is marked: {mark:?}"
    );
}

/// NO_COLOR: no colour anywhere, the highlight still there (bold).
#[test]
fn no_color_means_no_colour() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "rust,lobby");
    let mut alice = Screen::start_env(
        "alice",
        &server.addr,
        80,
        24,
        &["--room", "lobby,rust"],
        &[("NO_COLOR", "1")],
    );
    bob.expect("* alice is online");
    bob.say("hey alice");
    alice.wait_until("the mention", |s| s.status_row().contains("#rust 1!"));
    alice.keys(b"/msg bob hi\r");
    bob.expect("[#lobby] alice -> bob: hi");
    alice.expect("alice -> bob: hi");
    let screen = alice.term.screen();
    let (rows, cols) = screen.size();
    for r in 0..rows.get() {
        for c in 0..cols.get() {
            let cell = screen.cell(r, c).unwrap();
            assert_eq!(cell.fgcolor(), vt100::Color::Default, "colour at {r},{c}");
            assert_eq!(cell.bgcolor(), vt100::Color::Default, "colour at {r},{c}");
        }
    }
    let row = rows.get() - 2;
    let col = alice.status_row().find("#rust 1!").unwrap() as u16;
    assert!(screen.cell(row, col).unwrap().bold());
}

/// The connection is cut with half a line typed: the line stays while the
/// client reconnects (more can be typed meanwhile), and Enter sends it
/// once back. carol, who came meanwhile, is said under the summary and
/// listed in the side list.
#[test]
fn a_reconnect_keeps_the_input_line() {
    let server = Server::start(&[]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = bob_in(&server, "lobby");
    proxy.allow();
    let mut alice = Screen::start_env(
        "alice",
        &proxy.addr,
        80,
        24,
        &["--timeout", "20"],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "50")],
    );
    bob.expect("* alice is online");
    // In the room on alice's screen too: a connection cut before the
    // client saw its `entered` leaves it nobody to compare with.
    alice.expect("--> alice is online");
    alice.wait_until("the input line", |s| {
        s.input_row().starts_with("alice #lobby>")
    });
    alice.keys(b"half typed");
    alice.wait_until("the typing", |s| s.input_row().ends_with("half typed"));

    proxy.cut();
    alice.wait_until("reconnecting", |s| s.status_row().contains("reconnecting"));
    bob.expect("* alice left");
    alice.keys(b", and more");
    alice.wait_until("more typing", |s| {
        s.input_row() == "alice #lobby> half typed, and more"
    });
    let mut carol = Client::start("carol", &server.addr);
    carol.expect("* carol is online");
    proxy.allow();
    alice.expect("* reconnected");
    alice.expect("* while you were away: carol joined");
    alice.wait_until("connected again", |s| {
        !s.status_row().contains("reconnecting")
    });
    let rows = alice.rows();
    let summary = rows
        .iter()
        .position(|r| r.contains("* reconnected; nothing missed"));
    let away = rows
        .iter()
        .position(|r| r.contains("* while you were away: carol joined"));
    assert!(
        summary.is_some() && away == summary.map(|s| s + 1),
        "the summary, then who came:\n{}",
        alice.shown()
    );
    // F2: the side list, on the right.
    alice.keys(F2);
    alice.wait_until("carol in the side list", |s| {
        s.rows().iter().any(|r| r.ends_with(" carol"))
    });
    alice.keys(F2);
    assert_eq!(alice.input_row(), "alice #lobby> half typed, and more");
    alice.keys(ENTER);
    bob.expect("alice: half typed, and more");
    alice.expect("alice: half typed, and more");
}

/// The session is resumed on another connection: the client gives the
/// terminal back and says why there, exits 9, and does not reconnect.
#[test]
fn resumed_elsewhere_gives_the_terminal_back_and_says_why() {
    let server = FakeServer::taken_over_at_the_first_message();
    let mut alice = Screen::start_env(
        "alice",
        &server.addr,
        80,
        24,
        &[],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "50")],
    );
    alice.wait_until("the input line", |s| {
        s.input_row().starts_with("alice #lobby>")
    });
    alice.expect("--> alice is online");
    alice.keys(b"hello\r");
    assert_eq!(alice.wait_exit(), 9, "the screen shows:\n{}", alice.shown());
    assert!(
        !alice.term.screen().alternate_screen(),
        "the terminal was not given back"
    );
    let shown = alice.shown();
    assert!(
        shown.contains("chatclient: resumed_elsewhere: the session was resumed on another"),
        "{shown}"
    );
    server.first_connection();
    assert!(!server.another_connection(), "alice connected again");
}

/// Ctrl-C twice leaves at once, before the server confirmed what was
/// typed: once the shell's screen is back, the client says so and lists
/// the messages, to be sent again.
#[test]
fn leaving_at_once_lists_what_was_not_confirmed() {
    // The server tells when the message reached it: leaving before, it
    // had not left the client (listed apart, as never sent).
    let (got, arrived) = mpsc::channel();
    let server = FakeServer::letting_in(move || {
        let _ = got.send(());
        Reply::Send(Vec::new())
    });
    let mut alice = Screen::start("alice", &server.addr, 80, 24, &[]);
    alice.expect("--> alice is online");
    alice.keys(b"never answered\r");
    alice.expect("--:-- alice: never answered");
    arrived
        .recv_timeout(WAIT)
        .expect("the message reached the server");
    alice.keys(CTRL_C);
    alice.keys(CTRL_C);
    assert_eq!(
        alice.wait_exit(),
        130,
        "the screen shows:\n{}",
        alice.shown()
    );
    let shown = alice.shown();
    assert!(
        shown.contains("chatclient: 1 message typed was not confirmed by the server"),
        "{shown}"
    );
    assert!(shown.contains("  #lobby: never answered"), "{shown}");
}

/// Giving up on a lost connection lists what was not confirmed, too.
#[test]
fn giving_up_lists_what_was_not_confirmed() {
    let server = FakeServer::letting_in(|| Reply::Close(Vec::new()));
    let mut alice = Screen::start(
        "alice",
        &server.addr,
        80,
        24,
        &["--reconnect-attempts", "0"],
    );
    alice.expect("--> alice is online");
    alice.keys(b"@bob lost with the connection\r");
    assert_eq!(alice.wait_exit(), 1, "the screen shows:\n{}", alice.shown());
    let shown = alice.shown();
    assert!(
        shown.contains("chatclient: 1 message typed was not confirmed by the server"),
        "{shown}"
    );
    assert!(
        shown.contains("  #lobby: @bob: lost with the connection"),
        "{shown}"
    );
}

/// /me is an action on both screens: the full-screen one and the line
/// mode's.
#[test]
fn me_is_an_action_everywhere() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    alice.keys(b"/ME waves\r");
    bob.expect("* alice waves");
    alice.expect("* alice waves");
    bob.say("/me waves back");
    alice.expect("* bob waves back");
}

/// Each `/history` says what its page brought, at the bottom where the
/// eye is (the page itself goes above what is shown); the next one's
/// word takes the place of the last one's rather than piling up under it.
#[test]
fn history_notices_do_not_pile_up() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    // More than a room's replay (50): older ones are left for /history.
    let lines: Vec<String> = (0..70).map(|i| format!("line {i:02}")).collect();
    bob.say_all(&lines);
    bob.expect("bob: line 69");
    let mut alice = alice_with(&server, &mut bob, &[]);
    // Each counts the pages before it too: (2), (5 fetched so far), (9 ...).
    for (n, all) in [
        (2, ""),
        (3, " (5 fetched so far)"),
        (4, " (9 fetched so far)"),
    ] {
        alice.keys(format!("/history {n}\r").as_bytes());
        alice.expect(&format!(
            "* {n} older messages of #lobby{all}; /history shows more"
        ));
    }
    let notices: Vec<String> = alice
        .rows()
        .into_iter()
        .filter(|r| r.contains("older messages of #lobby"))
        .collect();
    assert_eq!(notices.len(), 1, "{}", alice.shown());
    let rows = alice.rows();
    assert!(
        rows[rows.len() - 3]
            .ends_with("* 4 older messages of #lobby (9 fetched so far); /history shows more"),
        "{}",
        alice.shown()
    );
}

/// One long word (64,000 characters without a space, over 900 rows at
/// 80 columns) takes at most 60 rows, its last saying how many
/// characters it leaves out: a few pages back is what came before it.
#[test]
fn one_huge_word_takes_a_few_pages_not_hundreds() {
    let server = Server::start(&[]);
    let mut bob = bob_in(&server, "lobby");
    let mut alice = alice_with(&server, &mut bob, &[]);
    bob.say("before");
    bob.say(&"x".repeat(64_000));
    bob.say("after");
    alice.expect("bob: after");
    // `HH:MM bob: ` is 11 columns, and so is the indent under it: 69 x
    // a row, in the 59 rows before the last.
    let shown = 59 * (80 - 11);
    let left = 64_000 - shown;
    let marker = format!("… ({},{:03} more characters)", left / 1000, left % 1000);
    let rows = alice.rows();
    let after = rows.iter().position(|r| r.ends_with("bob: after")).unwrap();
    assert_eq!(rows[after - 1], format!("{}{marker}", " ".repeat(11)));
    assert_eq!(
        rows[after - 2],
        format!("{}{}", " ".repeat(11), "x".repeat(69))
    );
    // 60 rows up, not 900: a few pages.
    alice.keys(&PAGE_UP.repeat(4));
    alice.wait_until("the line before the long one", |s| {
        s.shown().contains("bob: before")
    });
    let rows = alice.rows();
    let before = rows
        .iter()
        .position(|r| r.ends_with("bob: before"))
        .unwrap();
    assert!(
        rows[before + 1].ends_with(&format!("bob: {}", "x".repeat(69))),
        "{}",
        alice.shown()
    );
}

/// What the screen shows of bob's messages, in order from the top, with
/// the mark of the start of the room's history as `(start)` and the line
/// saying some are missing as `(gap)`.
fn bobs_lines(screen: &Screen) -> Vec<String> {
    screen
        .rows()
        .iter()
        .filter_map(|r| {
            if r.contains("sent while you were away are missing here") {
                return Some("(gap)".to_owned());
            }
            if r.contains("the start of #lobby's history") {
                return Some("(start)".to_owned());
            }
            r.split_once(" bob: ").map(|(_, text)| text.to_owned())
        })
        .collect()
}

/// The server restarted without its history while alice was away, and
/// bob said 80 lines in the new one: the replay brings the newest 50, and
/// `/history` the 30 before them, which go above those 50 and below what
/// was said before the restart (they went to the top, above it), the
/// start of the room's history marked above them.
#[test]
fn a_page_of_a_history_begun_anew_goes_below_the_earlier_one() {
    let mut server = Server::start(&[]);
    let addr = server.addr.clone();
    let proxy = Proxy::start(&addr);
    let fast = [("CHATCLIENT_RECONNECT_MIN_MS", "50")];
    let mut bob = Client::start_opts("bob", &addr, &[], &fast);
    bob.expect("* bob is online");
    bob.say("before");
    bob.expect("bob: before");
    proxy.allow();
    let mut alice = Screen::start_env("alice", &proxy.addr, 80, 120, &["--timeout", "20"], &fast);
    bob.expect("* alice is online");
    alice.expect("bob: before");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    alice.wait_until("reconnecting", |s| s.status_row().contains("reconnecting"));
    let _back = Server::start_on(&addr, &[]);
    bob.expect_line("bob back", |l| l.starts_with("* reconnected"));
    let lines: Vec<String> = (0..80).map(|i| format!("n{i:03}")).collect();
    bob.say_all(&lines);
    bob.expect("bob: n079");
    proxy.allow();
    alice.expect("earlier messages are gone");
    alice.keys(b"/history 200\r");
    alice.expect("30 older messages of #lobby; that is all");
    let mut want = vec!["before".to_owned(), "(start)".to_owned()];
    want.extend(lines);
    assert_eq!(bobs_lines(&alice), want, "{}", alice.shown());
}

/// alice full-screen through a proxy, on a screen `rows` high, in the
/// lobby with bob, who said `before` first; the connection is cut and bob
/// says `away` lines (`w000`...) before alice is let back in: more than
/// the replay brings (20 here), a gap. (The server and the proxy are kept
/// for as long as the test runs.)
fn a_gap_of(away: usize, rows: u16) -> (Server, Proxy, Client, Screen) {
    let server = Server::start(&["--replay-limit", "20"]);
    let proxy = Proxy::start(&server.addr);
    let mut bob = bob_in(&server, "lobby");
    bob.say("before");
    bob.expect("bob: before");
    proxy.allow();
    let mut alice = Screen::start_env(
        "alice",
        &proxy.addr,
        80,
        rows,
        &["--timeout", "20"],
        &[("CHATCLIENT_RECONNECT_MIN_MS", "50")],
    );
    bob.expect("* alice is online");
    alice.expect("bob: before");
    proxy.cut();
    alice.wait_until("reconnecting", |s| s.status_row().contains("reconnecting"));
    bob.expect("* alice left");
    let lines: Vec<String> = (0..away).map(|i| format!("w{i:03}")).collect();
    bob.say_all(&lines);
    bob.expect(&format!("bob: w{:03}", away - 1));
    proxy.allow();
    alice.expect("* reconnected; history has a gap");
    (server, proxy, bob, alice)
}

/// 200 messages missing after a reconnect, and `/history 200`, as many
/// as the server's page holds: all 200 are shown in their place, and the
/// gap is said to be filled. The client asks for one more than asked, to
/// see whether the page reaches below the gap; the server's page had no
/// room for it, and the client said more were missing (a further
/// `/history` found none).
#[test]
fn history_200_fills_a_gap_of_200() {
    let (_server, _proxy, _bob, mut alice) = a_gap_of(220, 240);
    let mut want = vec!["before".to_owned(), "(gap)".to_owned()];
    want.extend((200..220).map(|i| format!("w{i:03}")));
    assert_eq!(bobs_lines(&alice), want, "{}", alice.shown());
    alice.keys(b"/history 200\r");
    alice.expect("* fetched 200 missing messages of #lobby; none is missing any more");
    let mut want = vec!["before".to_owned()];
    want.extend((0..220).map(|i| format!("w{i:03}")));
    assert_eq!(bobs_lines(&alice), want, "{}", alice.shown());
}

/// Each `/history` into a gap says what it brought at the bottom, and the
/// next one's word takes its place: a stale "more are missing" stayed
/// above "none is missing any more".
#[test]
fn notes_of_pages_into_a_gap_do_not_pile_up() {
    let (_server, _proxy, _bob, mut alice) = a_gap_of(60, 100);
    alice.keys(b"/history 20\r");
    alice.expect("* fetched 20 missing messages of #lobby; more are missing");
    alice.keys(b"/history 20\r");
    alice.expect("* fetched 20 missing messages of #lobby; none is missing any more");
    let notes: Vec<String> = alice
        .rows()
        .into_iter()
        .filter(|r| r.contains("missing messages of #lobby"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", alice.shown());
    let mut want = vec!["before".to_owned()];
    want.extend((0..60).map(|i| format!("w{i:03}")));
    assert_eq!(bobs_lines(&alice), want, "{}", alice.shown());
}
