//! The tests of `net.rs`.

use std::cell::RefCell;

use chatproto::{ClientFrame, Limits, PresenceStatus};

use super::*;
use crate::ledger::LineOutcome;
use crate::render::{render, Style};
use crate::session::Mode;
use crate::stop::Stop;

/// A user's side that records the lines shown, and types nothing.
struct Seen {
    lines: RefCell<Vec<String>>,
    input: mpsc::Receiver<InputEvent>,
    _typing: mpsc::Sender<InputEvent>,
    stop: Stop,
}

impl Ui for Seen {
    fn input(&mut self) -> (&mut mpsc::Receiver<InputEvent>, &mut Stop) {
        (&mut self.input, &mut self.stop)
    }
    async fn print(&self, line: &Line) {
        let text = render(line, Style::default(), None);
        self.lines.borrow_mut().push(text);
    }
    async fn frame(&self, _: &ServerFrame) {}
    async fn outcome(&self, _: &LineOutcome) {}
    async fn update(&self, _: &Session) {}
    fn line_handled(&self, _: &Session) {}
}

fn handle(s: &mut Session, frame: ServerFrame) -> Vec<ClientFrame> {
    s.handle_frame(0, frame);
    std::iter::from_fn(|| s.poll())
        .filter_map(|a| match a {
            Action::Send(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn msg(seq: u64, from: &str) -> ServerFrame {
    let text = format!("m{seq}");
    ServerFrame::msg(Some("lobby".into()), seq, from, vec![], text, 0, None)
}

fn replayed(seq: u64) -> ServerFrame {
    let mut m = msg(seq, "bob");
    if let ServerFrame::Msg { replay, .. } = &mut m {
        *replay = true;
    }
    m
}

fn presence(seq: u64, nick: &str, status: PresenceStatus) -> ServerFrame {
    ServerFrame::presence(Some("lobby".into()), seq, nick, status, 0)
}

/// The connection lost while the page of one after a full page into
/// a gap was on its way (and a leaving held back): what the session
/// says of the loss ("fetched 20 missing messages of #lobby; more may
/// be missing", "bob left") came after "connection lost", as if it
/// happened while away, the note even with nothing fetched after the
/// loss. It comes before it.
#[tokio::test]
async fn what_the_session_says_of_a_loss_comes_before_it() {
    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.set_mode(Mode {
        hold_departures: true,
        ..Mode::default()
    });
    s.handle_connected(0);
    let token = Some("token".to_owned());
    let welcome = |resumed, limits| {
        ServerFrame::welcome("alice", 0, vec![], token.clone(), Some(resumed), limits)
    };
    handle(&mut s, welcome(false, None));
    let on = PresenceStatus::Online;
    let entered = |seq| ServerFrame::entered("lobby", "e1", seq, 1, vec!["alice".into()], false);
    handle(&mut s, entered(0));
    handle(&mut s, presence(1, "alice", on));
    handle(&mut s, msg(3, "bob"));
    // Back with bob's 4 to 40 missed: pages of 20, a replay of 5.
    s.handle_disconnected();
    s.handle_connected(10);
    let limits = Limits::new(65_536, 64, 5, 20);
    handle(&mut s, welcome(true, Some(limits)));
    handle(&mut s, entered(40));
    for seq in 36..=40 {
        handle(&mut s, replayed(seq));
    }
    handle(&mut s, presence(41, "alice", on));
    s.handle_line("/history 20");
    std::iter::from_fn(|| s.poll()).for_each(drop);
    let page = (16..=35).map(replayed).collect();
    let asked = handle(&mut s, ServerFrame::history("lobby", page, true));
    assert!(
        matches!(&asked[..], [ClientFrame::History { limit: Some(1), .. }]),
        "the page of one: {asked:?}"
    );
    handle(&mut s, presence(42, "bob", PresenceStatus::Offline));

    let (typing, input) = mpsc::channel(1);
    let mut seen = Seen {
        lines: RefCell::new(Vec::new()),
        input,
        _typing: typing,
        stop: Stop::never(),
    };
    // Nobody listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string();
    let config = Config {
        addr,
        tls: None,
        timeout: Duration::from_secs(2),
        max_frame_bytes: 65_536,
        backoff: crate::reconnect::Backoff {
            min: Duration::from_millis(1),
            max: Duration::from_millis(1),
            attempts: 1,
        },
        first: None,
    };
    s.handle_disconnected();
    let why = "the server closed the connection".to_owned();
    let gave_up = reconnect(&config, &Clock::start(), &mut s, &mut seen, why, false).await;
    assert!(matches!(gave_up, Err(Outcome::Lost(_))));
    let lines = seen.lines.into_inner();
    let at = |start: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} in {lines:#?}"))
    };
    let lost = at("* connection lost");
    assert!(
        at("* fetched 20 missing messages of #lobby; more may be missing") < lost,
        "{lines:#?}"
    );
    assert!(at("* bob left") < lost, "{lines:#?}");
}

/// A loss right after the server's `notice` (what it says before it
/// stops) is a planned restart, which the reconnect retries steadily
/// for ([`Retries`]); one after anything else is not.
#[tokio::test]
async fn a_loss_after_the_servers_notice_is_a_planned_restart() {
    for (last, planned) in [
        (
            ServerFrame::notice("the server is shutting down; goodbye"),
            true,
        ),
        (msg(1, "bob"), false),
    ] {
        let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
        s.handle_connected(0);
        let welcome = ServerFrame::welcome("alice", 0, vec![], None, Some(false), None);
        handle(&mut s, welcome);
        let (ours, mut theirs) = tokio::io::duplex(1 << 16);
        let (reader, writer) = tokio::io::split(ours);
        let mut link = Link::start(
            Box::new(reader),
            writer,
            BytesMut::new(),
            FrameDecoder::new(65_536),
        );
        let frames = [
            ServerFrame::notice("an earlier notice"),
            msg(1, "bob"),
            last,
        ];
        for f in frames {
            theirs
                .write_all(&encode(&f, 65_536).unwrap())
                .await
                .unwrap();
        }
        drop(theirs);
        let (typing, input) = mpsc::channel(1);
        let mut seen = Seen {
            lines: RefCell::new(Vec::new()),
            input,
            _typing: typing,
            stop: Stop::never(),
        };
        let config = Config {
            addr: "127.0.0.1:1".into(),
            tls: None,
            timeout: Duration::from_secs(2),
            max_frame_bytes: 65_536,
            backoff: crate::reconnect::Backoff {
                min: Duration::from_millis(1),
                max: Duration::from_millis(1),
                attempts: 1,
            },
            first: None,
        };
        let lost = chat(&config, &Clock::start(), &mut s, &mut seen, &mut link).await;
        let Err(lost) = lost else {
            panic!("not lost: {lost:?}");
        };
        assert_eq!(lost.planned, planned, "{lost:?}");
        assert_eq!(lost.why, "the server closed the connection");
        link.close(false).await;
    }
}

/// An address that closes each connection before its `welcome`: the
/// first join there is told it may take only TLS; a reconnect to one
/// that let this client in before is not (it spoke chatproto a moment
/// ago: a reset while joining is no sign of TLS).
#[tokio::test]
async fn the_tls_hint_is_only_for_an_address_never_joined() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("its address").to_string();
    // Two connections, each closed at once: our side is shut first and
    // what the client sent is read to its end, so the client sees an
    // end of stream (dropping the socket with its join unread would
    // reset it instead, now and then before the client reads).
    let closer = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    });
    let config = Config {
        addr,
        tls: None,
        timeout: Duration::from_secs(20),
        max_frame_bytes: 65_536,
        backoff: crate::reconnect::Backoff {
            min: Duration::from_millis(1),
            max: Duration::from_millis(1),
            attempts: 1,
        },
        first: None,
    };
    let hint = "is chatserver listening on that port?";
    let mut never = Session::new("alice", &["lobby".into()], "t-", 65_536);
    let e = dial(&config, &Clock::start(), &mut never, &mut Vec::new())
        .await
        .err()
        .expect("closed while joining");
    assert!(e.to_string().contains(hint), "{e}");

    let mut s = Session::new("alice", &["lobby".into()], "t-", 65_536);
    s.handle_connected(0);
    let welcome = ServerFrame::welcome("alice", 0, vec![], None, Some(false), None);
    handle(&mut s, welcome);
    s.handle_disconnected();
    let e = dial(&config, &Clock::start(), &mut s, &mut Vec::new())
        .await
        .err()
        .expect("closed while joining");
    assert!(matches!(e, JoinError::Closed), "{e:?}");
    assert!(!e.to_string().contains(hint), "{e}");
    closer.join().expect("the listener thread");
}
