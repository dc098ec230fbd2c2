//! The chat page in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), against the real server, beside raw clients
//! and the real terminal client.
//!
//! Each test starts its own chromedriver on a free loopback port, with a
//! temporary directory for the browsers' profiles, and stops it by its PID
//! (after asking it to close its browsers). Without chromium or
//! chromedriver the tests say loudly that they skip, and pass, unless
//! `CHAT_REQUIRE_BROWSER=1` (as .ci/run sets), where they fail.
//!
//! The tests take turns (one browser test at a time: two cores run one
//! Chromium comfortably, not five). Nothing sleeps to synchronise: every
//! wait polls the page for the condition it needs, against a deadline.
//! The hooks used are those index.html lists.

mod common;
mod webdriver;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::{run_to_exit, Client, Next, RealClient, Server, WAIT};
use fantoccini::key::Key;
use serde_json::{json, Value};
use webdriver::{free_port, wait_for, Harness, Line, Page};

/// Text the page shows for everything in `lines`, for failure messages.
fn shown(lines: &[Line]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match (&l.seq, &l.from) {
            (Some(s), Some(f)) => format!(
                "{s} {f}{}: {}",
                l.to.as_ref()
                    .map(|t| format!(" -> {t}"))
                    .unwrap_or_default(),
                l.text
            ),
            (Some(s), None) => format!("{s} {}", l.text),
            _ => format!("- {}", l.text),
        })
        .collect()
}

/// A raw client's `msg` in `room`, and its echo.
fn say_in(c: &mut Client, room: &str, to: &[&str], text: &str) -> Value {
    c.send_frame(&json!({"type": "msg", "room": room, "to": to, "text": text}));
    let (_, echo) = c.recv_until(1000, |f| f["type"] == "msg" && f["text"] == text);
    echo
}

// ---------------------------------------------------------------------
// a. Two browsers and a terminal.
// ---------------------------------------------------------------------

/// A message of the conversation: who types it, to whom, what.
struct Said {
    from: &'static str,
    to: &'static [&'static str],
    text: &'static str,
}

impl Said {
    fn visible_to(&self, nick: &str) -> bool {
        self.to.is_empty() || self.from == nick || self.to.contains(&nick)
    }

    /// What the sender types.
    fn typed(&self) -> String {
        match self.to {
            [] => self.text.to_owned(),
            [one] => format!("@{one} {}", self.text),
            many => {
                let names: Vec<String> = many.iter().map(|n| format!("@{n}")).collect();
                format!("{}: {}", names.join(" "), self.text)
            }
        }
    }

    /// The terminal client's line for it (chatclient/src/render.rs).
    fn terminal_line(&self) -> String {
        if self.to.is_empty() {
            format!("{}: {}", self.from, self.text)
        } else {
            format!("{} -> {}: {}", self.from, self.to.join(", "), self.text)
        }
    }
}

/// Said at about the same time by all three, so that the server's order
/// is its own choice, not the order of the test's steps.
const BURST: &[Said] = &[
    Said {
        from: "carol",
        to: &[],
        text: "carol here, from a terminal",
    },
    Said {
        from: "carol",
        to: &[],
        text: "the pipe types fast",
    },
    Said {
        from: "carol",
        to: &[],
        text: "third line from carol",
    },
    Said {
        from: "alice",
        to: &[],
        text: "hello everyone",
    },
    Said {
        from: "alice",
        to: &[],
        text: "alice again",
    },
    Said {
        from: "alice",
        to: &[],
        text: "and once more from alice",
    },
    Said {
        from: "bob",
        to: &[],
        text: "hi all, bob in a browser",
    },
    Said {
        from: "bob",
        to: &[],
        text: "bob says two",
    },
    Said {
        from: "bob",
        to: &[],
        text: "bob says three",
    },
];

/// Private and group messages, again at about the same time.
const PRIVATE: &[Said] = &[
    Said {
        from: "carol",
        to: &["bob", "alice"],
        text: "lunch at noon?",
    },
    Said {
        from: "carol",
        to: &["bob"],
        text: "just between us, bob",
    },
    Said {
        from: "bob",
        to: &["alice"],
        text: "psst, only for alice",
    },
    Said {
        from: "alice",
        to: &["carol"],
        text: "for the terminal only",
    },
    Said {
        from: "alice",
        to: &["bob", "carol"],
        text: "a group from the page",
    },
];

#[test]
fn two_browsers_and_a_terminal_see_one_conversation_in_one_order() {
    let Some(h) = Harness::start("two_browsers_and_a_terminal") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(two_browsers_and_a_terminal(&h, &server));
}

async fn two_browsers_and_a_terminal(h: &Harness, server: &Server) {
    let addr = server.addr();
    let alice = Page::join(h, addr, "alice", (1200, 800)).await;
    let bob = Page::join(h, addr, "bob", (1200, 800)).await;
    let mut carol = RealClient::start("carol", &addr.to_string(), &[]);
    carol.expect_line("its own presence", |l| l == "* carol is online");
    for page in [&alice, &bob] {
        page.wait_lines("carol online", "lobby", |ls| {
            ls.iter().any(|l| {
                l.nick.as_deref() == Some("carol") && l.status.as_deref() == Some("online")
            })
        })
        .await;
    }

    for phase in [BURST, PRIVATE] {
        // The terminal's lines go at once; the browsers type meanwhile.
        let carols: Vec<String> = phase
            .iter()
            .filter(|s| s.from == "carol")
            .map(Said::typed)
            .collect();
        carol.type_lines(&carols);
        for s in phase.iter().filter(|s| s.from != "carol") {
            let page = if s.from == "alice" { &alice } else { &bob };
            page.type_line(&s.typed()).await;
        }
        for (page, nick) in [(&alice, "alice"), (&bob, "bob")] {
            let want: Vec<&str> = phase
                .iter()
                .filter(|s| s.visible_to(nick))
                .map(|s| s.text)
                .collect();
            page.wait_texts("lobby", &want).await;
        }
        let want: Vec<String> = phase
            .iter()
            .filter(|s| s.visible_to("carol"))
            .map(Said::terminal_line)
            .collect();
        carol.expect_all(&want);
    }

    let all: Vec<&Said> = BURST.iter().chain(PRIVATE).collect();
    let by_text: HashMap<&str, &Said> = all.iter().map(|s| (s.text, *s)).collect();

    // Each browser: exactly what it may see, each once, in seq order,
    // private ones marked with their recipients.
    let mut seq_of: HashMap<&str, u64> = HashMap::new();
    for page in [&alice, &bob] {
        let msgs = page.msgs("lobby").await;
        let lines = shown(&msgs);
        let seqs: Vec<u64> = msgs
            .iter()
            .map(|m| m.seq.expect("a message has a seq"))
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{}: messages not in seq order, or a seq twice: {lines:#?}",
            page.nick
        );
        let mut texts = HashSet::new();
        for m in &msgs {
            let said = by_text
                .get(m.text.as_str())
                .unwrap_or_else(|| panic!("{}: a message nobody sent: {m:?}", page.nick));
            assert!(
                texts.insert(m.text.as_str()),
                "{}: shown twice: {lines:#?}",
                page.nick
            );
            assert!(
                said.visible_to(&page.nick),
                "{}: sees a message not meant for it: {m:?}",
                page.nick
            );
            assert_eq!(m.from.as_deref(), Some(said.from), "{}: {m:?}", page.nick);
            if said.to.is_empty() {
                assert!(
                    m.to.is_none() && !m.has_class("private") && m.tag.is_none(),
                    "{m:?}"
                );
            } else {
                assert_eq!(m.to.as_deref(), Some(said.to.join(",").as_str()), "{m:?}");
                assert!(
                    m.has_class("private"),
                    "a private message not marked: {m:?}"
                );
                let tag = if said.to.len() == 1 {
                    "private"
                } else {
                    "group"
                };
                assert_eq!(m.tag.as_deref(), Some(tag), "{m:?}");
            }
            let seq = m.seq.expect("seq");
            let first = *seq_of.entry(said.text).or_insert(seq);
            assert_eq!(first, seq, "{:?} has two seqs in two browsers", said.text);
        }
        let visible = all.iter().filter(|s| s.visible_to(&page.nick)).count();
        assert_eq!(texts.len(), visible, "{}: {lines:#?}", page.nick);
        assert_eq!(
            page.pending().await,
            0,
            "{}: messages left unsent",
            page.nick
        );
    }

    // Every message was seen by a browser, so the server's order is known.
    let mut order: Vec<&Said> = all.clone();
    order.sort_by_key(|s| seq_of[s.text]);
    assert_eq!(seq_of.len(), all.len(), "a message no browser showed");
    for page in [&alice, &bob] {
        let shown: Vec<String> = page
            .msgs("lobby")
            .await
            .into_iter()
            .map(|m| m.text)
            .collect();
        let want: Vec<&str> = order
            .iter()
            .filter(|s| s.visible_to(&page.nick))
            .map(|s| s.text)
            .collect();
        assert_eq!(shown, want, "{}: not the server's order", page.nick);
    }

    // The terminal: the same order, and nothing meant for others.
    let (status, stderr, out) = carol.finish();
    assert!(status.success(), "chatclient: {status}, stderr {stderr:?}");
    let terminal_lines: HashSet<String> = all.iter().map(|s| s.terminal_line()).collect();
    let shown: Vec<&str> = out
        .iter()
        .map(String::as_str)
        .filter(|l| terminal_lines.contains(*l))
        .collect();
    let want: Vec<String> = order
        .iter()
        .filter(|s| s.visible_to("carol"))
        .map(|s| s.terminal_line())
        .collect();
    assert_eq!(
        shown, want,
        "chatclient: not the server's order; all it printed: {out:#?}"
    );
    for s in all.iter().filter(|s| !s.visible_to("carol")) {
        assert!(
            !out.iter().any(|l| l.contains(s.text)),
            "chatclient shows {:?}, not meant for carol: {out:#?}",
            s.text
        );
    }

    alice.close().await;
    bob.close().await;
}

// ---------------------------------------------------------------------
// b. Markup and bidi controls are text.
// ---------------------------------------------------------------------

const IMG: &str = "<img src=x onerror=alert(1)>";
const TYPED_MARKUP: &str = "<b>bold?</b><img src=y onerror=alert(2)><script>alert(3)</script>";
/// "evil" spelled backwards by a right-to-left override, then "txt".
const BIDI: &str = "file\u{202e}live.txt";

#[test]
fn markup_and_bidi_overrides_arrive_as_visible_text() {
    let Some(h) = Harness::start("markup_and_bidi_overrides") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(markup_and_bidi(&h, &server));
}

async fn markup_and_bidi(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1200, 800)).await;
    let mut mallory = server.join("mallory");
    say_in(&mut mallory, "lobby", &[], IMG);
    say_in(&mut mallory, "lobby", &["alice"], BIDI);
    page.type_line(TYPED_MARKUP).await;
    let lines = page.wait_texts("lobby", &[IMG, TYPED_MARKUP]).await;

    let img = lines
        .iter()
        .find(|l| l.text == IMG)
        .expect("the img message");
    assert_eq!(img.from.as_deref(), Some("mallory"));
    assert!(img.text.contains("<img"), "{img:?}");
    let typed = lines
        .iter()
        .find(|l| l.text == TYPED_MARKUP)
        .expect("the typed one");
    assert_eq!(typed.from.as_deref(), Some("alice"));

    // The override is shown as a visible escape, not applied.
    let escaped = "file\\u{202e}live.txt";
    let bidi = page
        .wait_lines("the bidi message", "lobby", |ls| {
            ls.iter().any(|l| l.text == escaped)
        })
        .await;
    let bidi = bidi.iter().find(|l| l.text == escaped).expect("bidi line");
    assert!(
        !bidi.text.contains('\u{202e}'),
        "the raw override is in the page: {bidi:?}"
    );
    assert_eq!(bidi.to.as_deref(), Some("alice"), "{bidi:?}");

    // No element was made from the text, and no script ran.
    let found = page
        .js(
            "const m = document.getElementById('messages');
             return {
               img: m.querySelectorAll('img').length,
               script: m.querySelectorAll('script').length,
               b: m.querySelectorAll('b').length,
               ctl: Array.from(m.querySelectorAll('.msg .text .ctl'), (e) => e.textContent),
               images: document.images.length,
             };",
            vec![],
        )
        .await;
    assert_eq!(
        found,
        json!({"img": 0, "script": 0, "b": 0, "ctl": ["\\u{202e}"], "images": 0}),
        "elements made from message text"
    );
    match page.c.get_alert_text().await {
        Err(e) if e.is_no_such_alert() => {}
        Ok(text) => panic!("a script ran: an alert says {text:?}"),
        Err(e) => panic!("asking for an alert: {e}"),
    }
    page.close().await;
}

/// A family emoji and "I want" in Persian: a joiner (U+200D) and a
/// non-joiner (U+200C) inside words, where they are text.
const FAMILY: &str = "family \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}";
const PERSIAN: &str = "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}";
/// Between ASCII letters a joiner only hides a difference: escaped.
const ASCII_JOINER: &str = "b\u{200d}ob is not bob";
const TAB: &str = "name\tvalue";
/// Typed with Shift+Enter: the page shows a line break.
const TWO_LINES: &str = "first line\nsecond line";

#[test]
fn joiners_inside_words_are_text_and_tabs_escaped_as_in_the_terminal() {
    let Some(h) = Harness::start("joiners_inside_words_are_text") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(joiners_and_tabs(&h, &server));
}

async fn joiners_and_tabs(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let mut bob = server.join("bob");
    let own = format!("mine too: {FAMILY} {PERSIAN}\tend");
    for text in [FAMILY, PERSIAN, ASCII_JOINER, TAB] {
        say_in(&mut bob, "lobby", &[], text);
    }
    page.paste_line(&own).await;
    page.paste_line(TWO_LINES).await;

    // Each text as the terminal client shows it (chatproto's
    // escape_control), but for the newline the page shows as a break.
    let shown = |raw: &str| chatproto::escape_control(raw).replace("\\n", "\n");
    let want: Vec<String> = [FAMILY, PERSIAN, ASCII_JOINER, TAB, own.as_str(), TWO_LINES]
        .into_iter()
        .map(shown)
        .collect();
    let lines = page
        .wait_lines("six messages", "lobby", |ls| {
            ls.iter().filter(|l| l.is_msg()).count() == want.len()
        })
        .await;
    page.shot("joiners-and-tabs").await;
    let texts: Vec<&str> = lines
        .iter()
        .filter(|l| l.is_msg())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, want, "not shown as the terminal shows them");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.is_msg())
            .nth(4)
            .and_then(|l| l.from.as_deref()),
        Some("alice")
    );
    assert!(
        want[0].contains('\u{200d}') && want[1].contains('\u{200c}'),
        "{want:?}"
    );
    assert_eq!(want[2], "b\\u{200d}ob is not bob");
    assert_eq!(want[3], "name\\tvalue");
    assert_eq!(want[5], TWO_LINES);

    // The escapes stand out (`.ctl`), one per escaped character, in order.
    let ctl = page
        .js(
            "return Array.from(document.querySelectorAll(
               '#messages .room-log[data-room=\"lobby\"] .msg .text .ctl'), (e) => e.textContent);",
            vec![],
        )
        .await;
    assert_eq!(ctl, json!(["\\u{200d}", "\\t", "\\t"]));
    page.close().await;
}

// ---------------------------------------------------------------------
// b2. The keyboard on a phone-sized page.
// ---------------------------------------------------------------------

#[test]
fn on_a_narrow_page_the_keyboard_skips_closed_drawers_and_the_log_is_one_stop() {
    let Some(h) = Harness::start("keyboard_on_a_narrow_page") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(keyboard_narrow(&h, &server));
}

async fn keyboard_narrow(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (400, 700)).await;
    let mut bob = server.join("bob");
    for text in ["one from bob", "two from bob", "three from bob"] {
        say_in(&mut bob, "lobby", &[], text);
    }
    say_in(&mut bob, "lobby", &["alice"], "a private one");
    page.wait_texts("lobby", &["a private one"]).await;
    // Tab from the message box: Send, then out of the page; never into
    // a closed drawer (its "leave #lobby" is off-screen).
    page.c
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("#input")
        .click()
        .await
        .expect("click #input");
    assert_eq!(page.focused().await, "#input");
    page.press(&[Key::Tab]).await;
    assert_eq!(page.focused().await, "#send");
    page.press(&[Key::Tab]).await;
    let after_send = page.focused().await;
    assert!(
        !after_send.starts_with("sidebar") && !after_send.starts_with("people"),
        "Tab from Send lands in a closed drawer: {after_send}"
    );
    // Back from the message box: the log once (not each nickname in it),
    // then the top bar; the closed Rooms drawer is skipped.
    page.c
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("#input")
        .click()
        .await
        .expect("click #input");
    let mut back = Vec::new();
    for _ in 0..4 {
        page.press(&[Key::Shift, Key::Tab]).await;
        back.push(page.focused().await);
    }
    assert_eq!(
        back,
        ["#messages", "#leave", "#people-toggle", "#rooms-toggle"],
        "Shift+Tab from the message box"
    );
    let stops = page
        .js(
            "return Array.from(document.querySelectorAll('#messages button.nick'),
               (b) => b.tabIndex).filter((t) => t >= 0).length;",
            vec![],
        )
        .await;
    assert_eq!(stops, json!(0), "nicknames in the log are Tab stops");

    // Enter on the Rooms button: the drawer opens and has the focus.
    assert_eq!(page.focused().await, "#rooms-toggle");
    page.press(&[Key::Enter]).await;
    let drawer = |id: &'static str| {
        let page = &page;
        async move {
            page.js(
                "const d = document.getElementById(arguments[0]);
                 return { open: d.classList.contains('open'), inert: d.inert };",
                vec![json!(id)],
            )
            .await
        }
    };
    assert_eq!(
        drawer("sidebar").await,
        json!({"open": true, "inert": false})
    );
    assert_eq!(page.focused().await, "sidebar button.room");
    page.press(&[Key::Tab]).await;
    assert_eq!(page.focused().await, "sidebar button.part");
    page.shot("narrow-rooms-drawer-open").await;
    // Esc closes it, and the focus is back on the button that opened it.
    page.press(&[Key::Escape]).await;
    assert_eq!(
        drawer("sidebar").await,
        json!({"open": false, "inert": true})
    );
    assert_eq!(page.focused().await, "#rooms-toggle");

    // The People drawer alike: its first nickname has the focus.
    page.c
        .find(fantoccini::Locator::Id("people-toggle"))
        .await
        .expect("#people-toggle")
        .click()
        .await
        .expect("click #people-toggle");
    assert_eq!(
        drawer("people").await,
        json!({"open": true, "inert": false})
    );
    let f = page.focused().await;
    assert!(f.starts_with("people button.nick"), "{f}");
    page.press(&[Key::Escape]).await;
    assert_eq!(
        drawer("people").await,
        json!({"open": false, "inert": true})
    );
    assert_eq!(page.focused().await, "#people-toggle");
    page.shot("narrow-drawers-closed").await;
    page.close().await;
}

// ---------------------------------------------------------------------
// b3. Commands: answered in view, and the terminal client's set.
// ---------------------------------------------------------------------

/// Where the log is: how far above its bottom, whether "↓ New messages"
/// shows, and the text of its last line.
const LOG_PLACE_JS: &str = "const m = document.getElementById('messages');
  const last = document.querySelector(
    '#messages .room-log[data-room=\"lobby\"] .events > li:last-child');
  return { below: m.scrollHeight - m.scrollTop - m.clientHeight,
    jump: !document.getElementById('jump').hidden,
    last: last ? (last.querySelector('.text') ?? last).textContent : null,
    lastInView: !!last && last.getBoundingClientRect().bottom
      <= m.getBoundingClientRect().bottom + 1 };";

#[test]
fn a_command_typed_while_scrolled_up_is_answered_in_view() {
    let Some(h) = Harness::start("a_command_typed_while_scrolled_up") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(commands_in_view(&h, &server));
}

async fn commands_in_view(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 400)).await;
    let mut bob = server.join("bob");
    for i in 1..=40 {
        say_in(&mut bob, "lobby", &[], &format!("filler {i} from bob"));
    }
    page.wait_texts("lobby", &["filler 40 from bob"]).await;

    for (cmd, answer) in [
        ("/who", "2 online in #lobby"),
        ("/rooms", "rooms: #lobby (2)"),
        ("/help", "Enter sends, Shift+Enter starts a new line"),
    ] {
        // The reader scrolls up half way; "↓ New messages" shows.
        let place = wait_for("the log scrolled up", async || {
            let v = page
                .js(
                    &format!(
                        "{{ const s = document.getElementById('messages');
                           if (s.scrollHeight - s.scrollTop - s.clientHeight < 100)
                             s.scrollTop = (s.scrollHeight - s.clientHeight) / 2; }}
                         {LOG_PLACE_JS}"
                    ),
                    vec![],
                )
                .await;
            if v["jump"] == true && v["below"].as_f64() > Some(100.0) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        if cmd == "/who" {
            page.shot("command-scrolled-up-before").await;
        }
        page.type_line(cmd).await;
        let v = wait_for(&format!("the answer to {cmd}"), async || {
            let v = page.js(LOG_PLACE_JS, vec![]).await;
            match v["last"].as_str() {
                Some(t) if t.starts_with(answer) => Ok(v),
                _ => Err(v.to_string()),
            }
        })
        .await;
        if cmd == "/who" {
            page.shot("command-answered").await;
        }
        assert!(
            v["below"].as_f64().is_some_and(|b| b < 2.0)
                && v["jump"] == false
                && v["lastInView"] == true,
            "{cmd}: its answer is not in view (was {place}): {v}"
        );
    }
    page.close().await;
}

#[test]
fn msg_query_clear_and_help_work_as_in_the_terminal_client() {
    let Some(h) = Harness::start("msg_query_clear_and_help") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(msg_query_clear(&h, &server));
}

async fn msg_query_clear(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    page.wait_lines("carol online", "lobby", |ls| {
        ls.iter().any(|l| l.nick.as_deref() == Some("carol"))
    })
    .await;
    // What bob receives of alice's `text`: its recipients.
    let to_bob = |bob: &mut Client, text: &str| {
        let (_, f) = bob.recv_until(50, |f| f["type"] == "msg" && f["text"] == text);
        f["to"].clone()
    };

    // /help lists every command the page takes.
    page.type_line("/help").await;
    let help = page
        .wait_lines("the help", "lobby", |ls| {
            ls.iter().any(|l| l.text.starts_with("Enter sends"))
        })
        .await;
    let help: Vec<&str> = help
        .iter()
        .filter(|l| l.has_class("help"))
        .map(|l| l.text.as_str())
        .collect();
    for cmd in [
        "/me ",
        "/msg ",
        "/query ",
        "/join ",
        "/part ",
        "/rooms ",
        "/who ",
        "/history ",
        "/clear ",
        "/help ",
        "/quit ",
        "//text ",
    ] {
        assert!(
            help.iter().any(|l| l.starts_with(cmd)),
            "/help does not list {cmd}: {help:#?}"
        );
    }

    // /msg NICK TEXT is @NICK TEXT.
    page.type_line("/msg bob hi   there").await;
    assert_eq!(to_bob(&mut bob, "hi   there"), json!(["bob"]));
    let shown = page.wait_texts("lobby", &["hi   there"]).await;
    let m = shown
        .iter()
        .find(|l| l.text == "hi   there")
        .expect("shown");
    assert_eq!(m.to.as_deref(), Some("bob"), "{m:?}");

    // /query NICK: every line after it goes to NICK, until /query alone.
    page.type_line("/query @bob").await;
    let what = page
        .js(
            "const q = document.getElementById('query-to');
             return q.hidden ? null : q.textContent;",
            vec![],
        )
        .await;
    assert_eq!(what, json!("→ bob only"));
    page.wait_lines("the query notice", "lobby", |ls| {
        ls.last().is_some_and(|l| {
            l.text == "lines now go to bob only; /query alone sends to everyone again"
        })
    })
    .await;
    page.type_line("just for bob").await;
    assert_eq!(to_bob(&mut bob, "just for bob"), json!(["bob"]));
    page.type_line("/me waves at bob").await;
    assert_eq!(to_bob(&mut bob, "/me waves at bob"), json!(["bob"]));
    // Naming someone still wins.
    page.type_line("@carol and you").await;
    let (_, f) = carol.recv_until(50, |f| f["type"] == "msg" && f["text"] == "and you");
    assert_eq!(f["to"], json!(["carol"]));
    page.shot("query-bob").await;
    page.type_line("/query").await;
    page.wait_lines("the end of the query", "lobby", |ls| {
        ls.last()
            .is_some_and(|l| l.text == "lines go to everyone in the room again")
    })
    .await;
    let hidden = page
        .js("return document.getElementById('query-to').hidden;", vec![])
        .await;
    assert_eq!(hidden, json!(true));
    page.type_line("to everyone").await;
    assert_eq!(to_bob(&mut bob, "to everyone"), json!([]));
    page.wait_texts("lobby", &["to everyone"]).await;

    // /clear empties the view; what comes after shows, and only that.
    page.type_line("/clear").await;
    page.wait_lines("an empty log", "lobby", |ls| ls.is_empty())
        .await;
    say_in(&mut bob, "lobby", &[], "after the clear");
    let after = page.wait_texts("lobby", &["after the clear"]).await;
    assert_eq!(
        shown_texts(&after),
        ["after the clear"],
        "more than the new message after /clear"
    );
    // Unknown commands are still refused.
    page.type_line("/frob").await;
    let err = page
        .js(
            "return document.querySelector('#errors .error .text')?.textContent ?? null;",
            vec![],
        )
        .await;
    assert_eq!(
        err,
        json!("unknown command /frob; /help lists the commands, and //frob sends the line as text")
    );
    page.close().await;
}

fn shown_texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

// ---------------------------------------------------------------------
// c. History loads on scroll.
// ---------------------------------------------------------------------

const OLD: usize = 120;

fn old_text(i: usize) -> String {
    format!("old message {i:03} of {OLD}")
}

#[test]
fn scrolling_to_the_top_loads_history_down_to_the_first_message() {
    let Some(h) = Harness::start("scrolling_to_the_top_loads_history") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    let mut dave = server.join("dave");
    for i in 1..=OLD {
        dave.send_frame(&json!({"type": "msg", "text": old_text(i)}));
    }
    let last = old_text(OLD);
    dave.recv_until(OLD + 10, |f| {
        f["type"] == "msg" && f["text"] == last.as_str()
    });
    h.block_on(history_on_scroll(&h, &server));
}

async fn history_on_scroll(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    let first = old_text(1);
    let last = old_text(OLD);
    let before = page.wait_texts("lobby", &[last.as_str()]).await;
    let shown_before = before.iter().filter(|l| l.is_msg()).count();
    assert!(
        shown_before < OLD && !before.iter().any(|l| l.text == first),
        "everything was shown before scrolling ({shown_before} messages); nothing to test"
    );

    // The reader scrolls to the top, again each time a page arrives
    // (a page keeps the reader's place, so the top moves away).
    let what = format!("{first:?} after scrolling to the top");
    wait_for(&what, async || {
        let v = page
            .js(
                "const m = document.getElementById('messages');
                 m.scrollTop = 0;
                 return { shown: document.querySelectorAll(
                   '#messages .room-log[data-room=\"lobby\"] .events > li.msg').length,
                   first: Array.from(document.querySelectorAll(
                   '#messages .room-log[data-room=\"lobby\"] .events > li.msg .text'),
                   (e) => e.textContent).includes(arguments[0]) };",
                vec![json!(first)],
            )
            .await;
        if v["first"] == true {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    let msgs = page.msgs("lobby").await;
    let texts: Vec<String> = msgs.iter().map(|m| m.text.clone()).collect();
    let want: Vec<String> = (1..=OLD).map(old_text).collect();
    assert_eq!(texts, want, "not every old message once, in order");
    let seqs: Vec<u64> = msgs.iter().map(|m| m.seq.expect("seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The log says it reached the start.
    let start = page
        .js(
            "const s = document.querySelector('.room-log[data-room=\"lobby\"] .log-start');
             return s && !s.hidden && s.textContent;",
            vec![],
        )
        .await;
    assert_eq!(start, json!("This is the start of #lobby's history."));
    page.close().await;
}

/// Erin's page, in a lobby where dave's first words are followed by far
/// more messages to frank than one page of history looks at: one "Load
/// older messages" goes on through the pages that show nothing until it
/// reaches dave's words and the start.
#[test]
fn older_pages_go_on_past_a_stretch_of_messages_to_others() {
    let Some(h) = Harness::start("older_pages_go_on_past_messages_to_others") else {
        return;
    };
    let server = Server::start(&["--rate", "0", "--history-scan", "20"]);
    let mut dave = server.join("dave");
    for i in 1..=3 {
        dave.send_frame(&json!({"type": "msg", "text": old_text(i)}));
    }
    let _frank = server.join("frank");
    for i in 0..60 {
        dave.send_frame(&json!({"type": "msg", "to": ["frank"], "text": format!("to frank {i}")}));
    }
    dave.recv_until(80, |f| f["type"] == "msg" && f["text"] == "to frank 59");
    h.block_on(past_messages_to_others(&h, &server));
}

async fn past_messages_to_others(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    let want: Vec<String> = (1..=3).map(old_text).collect();
    let mut clicks = 0;
    wait_for("dave's first words after loading older pages", async || {
        let v = page
            .js(
                "const log = document.querySelector('.room-log[data-room=\"lobby\"]');
                 const b = log && log.querySelector('button.load-older');
                 const clickable = b && !b.hidden && !b.disabled;
                 if (clickable) b.click();
                 return { clicked: !!clickable, start: !!log && !log.querySelector('.log-start').hidden,
                   texts: Array.from(log ? log.querySelectorAll('.events > li.msg .text') : [],
                   (e) => e.textContent) };",
                vec![],
            )
            .await;
        clicks += usize::from(v["clicked"] == true);
        if v["start"] == true {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let texts: Vec<String> = page
        .msgs("lobby")
        .await
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(
        texts, want,
        "dave's words once, in order, and nothing to frank"
    );
    // 60 messages to frank, 20 a page: the empty pages in between are
    // asked for without more clicks (a scroll may have asked first).
    assert!(clicks <= 1, "{clicks} clicks");
    page.close().await;
}

/// What messages.js keeps of a room's log while its reader follows the
/// newest lines (its `MAX_SHOWN` and `TRIM_BY`).
const MAX_SHOWN: usize = 2000;
const TRIM_BY: usize = 200;

fn busy_text(i: usize) -> String {
    format!("busy {i:04}")
}

/// Erin follows a room that gets far more messages than a page keeps:
/// the oldest lines go, the newest stay in order, and "Load older
/// messages" brings back the ones that went, right above the oldest kept.
#[test]
fn a_busy_room_keeps_its_newest_lines_and_pages_back_the_rest() {
    let Some(h) = Harness::start("a_busy_room_keeps_its_newest_lines") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(busy_room(&h, &server));
}

async fn busy_room(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    let n = MAX_SHOWN + 300;
    let mut dave = server.join("dave");
    for i in 1..=n {
        dave.send_frame(&json!({"type": "msg", "text": busy_text(i)}));
    }
    const PROBE: &str = "const log = document.querySelector('.room-log[data-room=\"lobby\"]');
         const b = log.querySelector('button.load-older');
         return { seqs: log.querySelectorAll('.events > li[data-seq]').length,
           older: !!b && !b.hidden,
           texts: Array.from(log.querySelectorAll('.events > li.msg .text'), (e) => e.textContent) };";
    let last = busy_text(n);
    let v = wait_for("the last of the busy messages", async || {
        let v = page.js(PROBE, vec![]).await;
        let texts = v["texts"].as_array().map(Vec::len).unwrap_or(0);
        if v["texts"][texts.saturating_sub(1)] == last.as_str() {
            Ok(v)
        } else {
            Err(format!("{} lines", v["seqs"]))
        }
    })
    .await;
    let seqs = v["seqs"].as_u64().expect("count") as usize;
    assert!(
        (MAX_SHOWN - TRIM_BY..=MAX_SHOWN).contains(&seqs),
        "{seqs} lines kept of {n} messages"
    );
    assert_eq!(v["older"], true, "no way to load the lines that went");
    let texts: Vec<String> = serde_json::from_value(v["texts"].clone()).expect("texts");
    let first = n + 1 - texts.len();
    let want: Vec<String> = (first..=n).map(busy_text).collect();
    assert_eq!(texts, want, "the newest messages, once each, in order");
    page.shot("busy-room-following").await;

    // One page back: the messages just above the oldest kept, no hole.
    page.js(
        "document.querySelector('.room-log[data-room=\"lobby\"] button.load-older').click();",
        vec![],
    )
    .await;
    let before = busy_text(first - 1);
    let v = wait_for("the message above the oldest kept", async || {
        let v = page.js(PROBE, vec![]).await;
        if v["texts"][0] != v["texts"][1]
            && v["texts"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == before.as_str()))
        {
            Ok(v)
        } else {
            Err(format!("{} lines, first {}", v["seqs"], v["texts"][0]))
        }
    })
    .await;
    let texts: Vec<String> = serde_json::from_value(v["texts"].clone()).expect("texts");
    let from = n + 1 - texts.len();
    assert!(from < first, "nothing older came back");
    let want: Vec<String> = (from..=n).map(busy_text).collect();
    assert_eq!(texts, want, "older lines back right above the kept ones");
    page.shot("busy-room-older").await;
    page.close().await;
}

// ---------------------------------------------------------------------
// d. A server restart.
// ---------------------------------------------------------------------

#[test]
fn the_page_reconnects_after_a_server_restart_and_resumes() {
    let Some(h) = Harness::start("the_page_reconnects_after_a_restart") else {
        return;
    };
    let data = tempfile::tempdir().expect("data directory");
    // A fixed port, so the page finds the restarted server where it was.
    let listen = format!("127.0.0.1:{}", free_port());
    let dir = data.path().to_str().expect("a UTF-8 path").to_owned();
    let flags = ["--listen", &listen, "--data-dir", &dir];
    h.block_on(restart(&h, &flags));
}

async fn restart(h: &Harness, flags: &[&str]) {
    let mut server = Server::start(flags);
    let page = Page::join(h, server.addr(), "alice", (1200, 800)).await;
    let mut bob = server.join("bob");
    say_in(&mut bob, "lobby", &[], "before the restart, from bob");
    page.type_line("before the restart, from alice").await;
    let before = page
        .wait_texts(
            "lobby",
            &[
                "before the restart, from bob",
                "before the restart, from alice",
            ],
        )
        .await;

    server.sigterm();
    let status = server.wait_exit(WAIT);
    assert!(
        status.success(),
        "chatserver did not stop cleanly: {status}"
    );
    drop(server);
    page.wait_state("reconnecting").await;
    let text = page
        .js(
            "return document.getElementById('status').textContent;",
            vec![],
        )
        .await;
    assert_eq!(text, json!("reconnecting…"));
    // The list of people is who was online: nobody is, while away.
    let heading = "return document.getElementById('people-heading').textContent;";
    assert_eq!(page.js(heading, vec![]).await, json!("Was online 2"));
    page.shot("reconnecting").await;

    // Typed while the server is away: kept, and sent once back.
    page.type_line("typed while the server was down").await;
    let what = "alice: the offline message pending";
    wait_for(what, async || match page.pending().await {
        1 => Ok(()),
        n => Err(format!("{n} pending")),
    })
    .await;

    let server = Server::start(flags);
    page.wait_state("connected").await;
    let mut carol = server.join("carol");
    say_in(&mut carol, "lobby", &[], "after the restart, from carol");
    let after = page
        .wait_texts(
            "lobby",
            &[
                "typed while the server was down",
                "after the restart, from carol",
            ],
        )
        .await;
    assert_eq!(page.pending().await, 0, "a message left unsent");
    let heading = page.js(heading, vec![]).await;
    assert!(
        heading.as_str().is_some_and(|h| h.starts_with("Online ")),
        "{heading}"
    );

    // Everything from before is still shown, once, where it was; no seq twice.
    let lines = shown(&after);
    let seqs: Vec<u64> = after.iter().filter_map(|l| l.seq).collect();
    let unique: HashSet<u64> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "a seq shown twice: {lines:#?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "not in seq order: {lines:#?}"
    );
    for l in before.iter().filter(|l| l.seq.is_some()) {
        let same: Vec<&Line> = after.iter().filter(|a| a.seq == l.seq).collect();
        assert!(
            same.len() == 1 && same[0].text == l.text,
            "{:?} (seq {:?}) not shown once as before: {lines:#?}",
            l.text,
            l.seq
        );
    }
    for text in [
        "before the restart, from bob",
        "before the restart, from alice",
        "typed while the server was down",
        "after the restart, from carol",
    ] {
        let n = after
            .iter()
            .filter(|l| l.is_msg() && l.text == text)
            .count();
        assert_eq!(n, 1, "{text:?} shown {n} times: {lines:#?}");
    }
    // The page resumed its session and says so.
    assert!(
        after.iter().any(|l| l.has_class("reconnected")),
        "no 'reconnected' line: {lines:#?}"
    );
    // The server stored the offline message once.
    let dir = flags[3];
    let run = run_to_exit(&["export", "--data-dir", dir, "--room", "lobby"], WAIT);
    assert!(run.status.success(), "export: {run:?}");
    let stored = run
        .stdout
        .matches("typed while the server was down")
        .count();
    assert_eq!(stored, 1, "stored {stored} times: {}", run.stdout);
    page.close().await;
}

/// Back after a loss, the page finds its nickname still held (here by a
/// client that took it while the server was away; in a cluster, by its
/// own lost connection on a node that died, until the others free it): it
/// says so and tries again instead of giving up, and resumes once the
/// name is free.
#[test]
fn a_page_that_finds_its_nickname_held_tries_again_and_resumes() {
    let Some(h) = Harness::start("a_page_that_finds_its_nickname_held") else {
        return;
    };
    let data = tempfile::tempdir().expect("data directory");
    let listen = format!("127.0.0.1:{}", free_port());
    let dir = data.path().to_str().expect("a UTF-8 path").to_owned();
    let flags = ["--listen", &listen, "--data-dir", &dir];
    h.block_on(async {
        let server = Server::start(&flags);
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        page.type_line("before").await;
        page.wait_texts("lobby", &["before"]).await;
        server.sigterm();
        let mut server = server;
        assert!(server.wait_exit(WAIT).success());
        drop(server);
        // Wait until the page's tries are a second or more apart, so that
        // the restarted server's first client comes before its next one;
        // then the test asks for each try with the page's Retry button.
        wait_for("alice: a third try to reconnect", async || {
            let detail = page
                .js(
                    "return document.getElementById('status-detail').textContent;",
                    vec![],
                )
                .await;
            let detail = detail.as_str().unwrap_or_default().to_owned();
            let attempt = detail
                .rsplit_once("(attempt ")
                .and_then(|(_, n)| n.trim_end_matches(')').parse::<u32>().ok());
            match attempt {
                Some(n) if n >= 3 => Ok(()),
                _ => Err(detail),
            }
        })
        .await;
        let server = Server::start(&flags);
        let mut bob = server.join("bob");
        let holder = server.join("alice");
        let retry = "document.getElementById('retry').click(); return null;";
        page.js(retry, vec![]).await;
        let lines = page
            .wait_lines("the nickname said to be held", "lobby", |lines| {
                lines
                    .iter()
                    .any(|l| l.text.starts_with("the nickname is still held"))
            })
            .await;
        assert!(
            !lines.iter().any(|l| l.text.contains("could not rejoin")),
            "{lines:#?}"
        );
        drop(holder);
        // The server has let the name go (bob sees it leave).
        bob.recv_until(100, |f| common::is_presence(f, "alice", "offline"));
        page.wait_state("reconnecting").await;
        page.js(retry, vec![]).await;
        page.wait_state("connected").await;
        let lines = page
            .wait_lines("resumed", "lobby", |lines| {
                lines.iter().any(|l| l.has_class("reconnected"))
            })
            .await;
        assert!(
            !lines.iter().any(|l| l.text.contains("new session")),
            "{lines:#?}"
        );
        page.close().await;
    });
}

#[test]
fn a_reloaded_page_resumes_its_session() {
    let Some(h) = Harness::start("a_reloaded_page_resumes_its_session") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(reload(&h, &server));
}

/// A page joins as alice, and bob tells her `text`, for her only; the
/// page shows it.
async fn alice_told_by_bob(h: &Harness, server: &Server, text: &str) -> (Page, Client) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let mut bob = server.join("bob");
    say_in(&mut bob, "lobby", &["alice"], text);
    page.wait_texts("lobby", &[text]).await;
    (page, bob)
}

async fn reload(h: &Harness, server: &Server) {
    let (page, _bob) = alice_told_by_bob(h, server, "only for alice, before the reload").await;
    let token = || page_token(&page);
    let before = token().await;
    assert!(before.is_string(), "no session kept for a reload: {before}");
    // A second room, the one being read at the reload.
    page.type_line("/join rust").await;
    let rooms_and_current = || async {
        page.js(
            "return [[...document.querySelectorAll('#rooms li')].map(li => li.dataset.room), \
             document.getElementById('current-room').textContent];",
            vec![],
        )
        .await
    };
    wait_for("alice: in #rust", async || {
        let v = rooms_and_current().await;
        if v == json!([["lobby", "rust"], "#rust"]) {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    page.c.refresh().await.expect("reload the page");
    // No join form: the page joins again by itself, as the same session.
    page.wait_state("connected").await;
    page.wait_lines("alice back in the lobby", "lobby", |lines| {
        lines
            .iter()
            .any(|l| l.nick.as_deref() == Some("alice") && l.status.as_deref() == Some("online"))
    })
    .await;
    assert_eq!(token().await, before, "the reload began a new session");
    // Its rooms in their order, and the one it was reading.
    assert_eq!(
        rooms_and_current().await,
        json!([["lobby", "rust"], "#rust"])
    );
    // Its private message is still its own to see.
    page.wait_texts("lobby", &["only for alice, before the reload"])
        .await;
    // Leaving forgets it: the next load asks for a nickname.
    page.c
        .find(fantoccini::Locator::Id("leave"))
        .await
        .expect("#leave")
        .click()
        .await
        .expect("click #leave");
    let kept = page
        .js("return sessionStorage.getItem('chat.resume');", vec![])
        .await;
    assert!(kept.is_null(), "still kept after leaving: {kept}");
    page.close().await;
}

// ---------------------------------------------------------------------
// e. One session, two copies.
// ---------------------------------------------------------------------

/// The notice that another tab or connection continues the session, its
/// button, and the input meanwhile.
const ELSEWHERE_JS: &str = r#"
const notice = document.getElementById('elsewhere');
const input = document.getElementById('input');
const button = document.getElementById('continue-here').getBoundingClientRect();
return {
  notice: !notice.hidden && notice.getClientRects().length > 0,
  text: notice.textContent.replace(/\s+/g, ' ').trim(),
  button_in_view: button.width > 0 && button.left >= 0 && button.right <= innerWidth
    && button.top >= 0 && button.bottom <= innerHeight,
  width: innerWidth,
  // On a phone the lists are drawers: closed, out of the way.
  drawers_away: innerWidth > 760 || [...document.querySelectorAll('.drawer')].every((d) => {
    const r = d.getBoundingClientRect();
    return r.right <= 0 || r.left >= innerWidth;
  }),
  state: document.getElementById('status').dataset.state,
  input_disabled: input.disabled,
  send_disabled: document.getElementById('send').disabled,
  draft: input.value,
};
"#;

/// A raw client resumes the page's session with the page's token (as a
/// duplicated tab would): the page says the conversation went on
/// elsewhere and does not take it back by itself; its button does, and
/// the raw client is then told so and closed.
#[test]
fn a_session_resumed_elsewhere_comes_back_only_by_the_button() {
    let Some(h) = Harness::start("a_session_resumed_elsewhere") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(resumed_elsewhere(&h, &server));
}

/// The session token the page keeps for a reload.
async fn page_token(page: &Page) -> Value {
    let js = "return JSON.parse(sessionStorage.getItem('chat.resume')).token;";
    page.js(js, vec![]).await
}

/// A raw client resumes the page's session with its token and so takes
/// it over (the page is told `resumed_elsewhere`); bob sees alice go.
async fn take_over(page: &Page, server: &Server, bob: &mut Client) -> Client {
    let token = page_token(page).await;
    let token = token.as_str().expect("the page's session token").to_owned();
    let mut other = server.connect();
    other.send_frame(&json!({"type": "join", "nick": "alice", "rooms": [], "resume": token}));
    let welcome = other.expect_kind("welcome");
    assert_eq!(welcome["resumed"], json!(true), "not resumed: {welcome}");
    bob.recv_until(100, |f| common::is_presence(f, "alice", "offline"));
    other
}

async fn resumed_elsewhere(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let mut bob = server.join("bob");
    // A line half written when the session goes.
    page.c
        .find(fantoccini::Locator::Id("input"))
        .await
        .expect("#input")
        .send_keys("half a line")
        .await
        .expect("type a draft");
    let mut other = take_over(&page, server, &mut bob).await;

    let seen = wait_for("alice: the notice", async || {
        let v = page.js(ELSEWHERE_JS, vec![]).await;
        if v["notice"] == json!(true) && v["state"] == json!("elsewhere") {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let text = seen["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("This conversation continued in another tab or window"),
        "{seen}"
    );
    assert_eq!(seen["button_in_view"], json!(true), "{seen}");
    assert_eq!(seen["input_disabled"], json!(true), "{seen}");
    assert_eq!(seen["send_disabled"], json!(true), "{seen}");
    assert_eq!(
        seen["draft"],
        json!("half a line"),
        "the draft went: {seen}"
    );
    // The focus was in the input: the notice has it, not its button,
    // which an Enter on its way would press.
    assert_eq!(page.focused().await, "#elsewhere");
    page.shot("elsewhere-wide").await;

    // A phone's width: the button is still in view.
    let frame = page
        .js(
            "return [outerWidth - innerWidth, outerHeight - innerHeight];",
            vec![],
        )
        .await;
    let dw = frame[0].as_u64().expect("a width") as u32;
    let dh = frame[1].as_u64().expect("a height") as u32;
    page.c
        .set_window_size(390 + dw, 760 + dh)
        .await
        .expect("a phone's width");
    let narrow = wait_for("alice: the notice on a phone's width", async || {
        let v = page.js(ELSEWHERE_JS, vec![]).await;
        if v["width"] == json!(390) && v["drawers_away"] == json!(true) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(narrow["notice"], json!(true), "{narrow}");
    assert_eq!(narrow["button_in_view"], json!(true), "{narrow}");
    page.shot("elsewhere-narrow").await;

    // The page does not come back by itself: its first reconnect would
    // come within 0.5 s (connection.js, BACKOFF_MIN_MS) and close the
    // other connection; in four times that, nothing reaches it.
    match other.next_within(Duration::from_secs(2)) {
        Next::TimedOut => {}
        got => panic!("the page took the session back by itself: {got:?}"),
    }
    say_in(&mut bob, "lobby", &[], "said while alice was elsewhere");

    page.c
        .find(fantoccini::Locator::Id("continue-here"))
        .await
        .expect("#continue-here")
        .click()
        .await
        .expect("click #continue-here");
    page.wait_state("connected").await;
    other.expect_error("resumed_elsewhere");
    other.expect_closed();
    let lines = page
        .wait_lines("back, with what was said meanwhile", "lobby", |ls| {
            ls.iter().any(|l| l.has_class("reconnected"))
                && ls
                    .iter()
                    .any(|l| l.is_msg() && l.text == "said while alice was elsewhere")
        })
        .await;
    let shown = shown(&lines);
    assert!(
        lines
            .iter()
            .any(|l| l.text == "reconnected; 1 missed message"),
        "{shown:#?}"
    );
    assert!(
        lines.iter().any(|l| l.has_class("notice")
            && l.text
                .starts_with("this conversation continued in another tab")),
        "{shown:#?}"
    );
    let back = page.js(ELSEWHERE_JS, vec![]).await;
    assert_eq!(back["notice"], json!(false), "{back}");
    assert_eq!(back["input_disabled"], json!(false), "{back}");
    assert_eq!(back["draft"], json!("half a line"), "{back}");
    assert_eq!(page.focused().await, "#input");
    // The draft goes out from here.
    page.press(&[Key::Enter]).await;
    bob.recv_until(100, |f| f["type"] == "msg" && f["text"] == "half a line");
    page.close().await;
}

/// A window the page opens gets a copy of its sessionStorage, the token
/// included, as a duplicated tab does: it asks the first whether the
/// token is in use, and starts afresh instead of taking the session.
#[test]
fn a_copy_of_a_tab_starts_afresh_instead_of_taking_the_session() {
    let Some(h) = Harness::start("a_copy_of_a_tab_starts_afresh") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(copied_tab(&h, &server));
}

/// The page opens a copy of itself in a new window (which gets a copy of
/// its sessionStorage, as a duplicated tab does) and the driver switches
/// to it; returns the first window, to switch back.
async fn open_copy(page: &Page) -> fantoccini::wd::WindowHandle {
    let first = page.c.window().await.expect("the first window");
    page.js("window.open(location.href, '_blank'); return null;", vec![])
        .await;
    let copy = wait_for("a second window", async || {
        let all = page.c.windows().await.map_err(|e| e.to_string())?;
        let n = all.len();
        all.into_iter()
            .find(|w| *w != first)
            .ok_or_else(|| format!("{n} windows"))
    })
    .await;
    page.c
        .switch_to_window(copy)
        .await
        .expect("switch to the copy");
    first
}

async fn copied_tab(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let first = open_copy(&page).await;
    let seen = wait_for("the copy: why it asks for a nickname", async || {
        let v = page
            .js(
                "const e = document.getElementById('join-error');
                 return { shown: !e.hidden, code: e.dataset.code, text: e.textContent,
                          chat: !document.getElementById('chat').hidden,
                          kept: sessionStorage.getItem('chat.resume') };",
                vec![],
            )
            .await;
        if v["shown"] == json!(true) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(seen["code"], json!("in_another_tab"), "{seen}");
    let text = seen["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("alice is open in another tab or window"),
        "{seen}"
    );
    assert_eq!(seen["chat"], json!(false), "{seen}");
    assert!(seen["kept"].is_null(), "the copy kept the token: {seen}");
    page.shot("copied-tab").await;

    // The first window still has the session.
    page.c
        .switch_to_window(first)
        .await
        .expect("switch to the first window");
    assert_eq!(page.state().await, "connected");
    let v = page.js(ELSEWHERE_JS, vec![]).await;
    assert_eq!(v["notice"], json!(false), "{v}");
    let mut bob = server.join("bob");
    page.type_line("still here").await;
    bob.recv_until(100, |f| {
        f["type"] == "msg" && f["from"] == "alice" && f["text"] == "still here"
    });
    page.close().await;
}

/// What a copied tab shows: the join form and why, or the chat.
const COPY_JS: &str = r#"
const e = document.getElementById('join-error');
return {
  join_error: !e.hidden,
  code: e.dataset.code,
  text: e.textContent,
  chat: !document.getElementById('chat').hidden,
  elsewhere: !document.getElementById('elsewhere').hidden,
  state: document.getElementById('status').dataset.state,
  token: JSON.parse(sessionStorage.getItem('chat.resume') || 'null')?.token ?? null,
};
"#;

/// A tab whose session went on elsewhere (here: a raw client resumed it)
/// no longer holds it: a copy of that tab is not turned away with
/// in_another_tab but resumes the session, which closes the raw client.
#[test]
fn a_copy_of_a_tab_whose_session_went_elsewhere_resumes_it() {
    let Some(h) = Harness::start("a_copy_of_a_tab_whose_session_went_elsewhere") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(copy_after_elsewhere(&h, &server));
}

async fn copy_after_elsewhere(h: &Harness, server: &Server) {
    let (page, mut bob) = alice_told_by_bob(h, server, "only for alice, before the copy").await;
    let token = page_token(&page).await;
    let mut other = take_over(&page, server, &mut bob).await;
    wait_for("alice: the notice", async || {
        let v = page.js(ELSEWHERE_JS, vec![]).await;
        if v["notice"] == json!(true) && v["state"] == json!("elsewhere") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    // The first window shows the notice while its copy asks whether the
    // token is held: nobody says so, and the copy resumes the session.
    let first = open_copy(&page).await;
    let seen = wait_for("the copy: joined, or why not", async || {
        let v = page.js(COPY_JS, vec![]).await;
        if v["join_error"] == json!(true) || v["state"] == json!("connected") {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(
        seen["join_error"],
        json!(false),
        "the copy was turned away by a tab that no longer has the session: {seen}"
    );
    assert_eq!(seen["state"], json!("connected"), "{seen}");
    assert_eq!(seen["chat"], json!(true), "{seen}");
    assert_eq!(seen["elsewhere"], json!(false), "{seen}");
    assert_eq!(seen["token"], token, "not the same session: {seen}");
    other.expect_error("resumed_elsewhere");
    other.expect_closed();
    bob.recv_until(100, |f| common::is_presence(f, "alice", "online"));
    // The conversation as the session had it, its private message included.
    page.wait_lines("the copy: the conversation", "lobby", |ls| {
        ls.iter()
            .any(|l| l.nick.as_deref() == Some("alice") && l.status.as_deref() == Some("online"))
            && ls
                .iter()
                .any(|l| l.is_msg() && l.text == "only for alice, before the copy")
    })
    .await;
    page.shot("copy-after-elsewhere").await;
    page.type_line("from the copy").await;
    bob.recv_until(100, |f| {
        f["type"] == "msg" && f["from"] == "alice" && f["text"] == "from the copy"
    });

    // The first window still shows the notice: it did not take the
    // session back.
    page.c
        .switch_to_window(first)
        .await
        .expect("switch to the first window");
    let v = page.js(ELSEWHERE_JS, vec![]).await;
    assert_eq!(v["notice"], json!(true), "{v}");
    assert_eq!(v["state"], json!("elsewhere"), "{v}");
    page.close().await;
}

// ---------------------------------------------------------------------
// f. A screenshot of a conversation.
// ---------------------------------------------------------------------

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn a_screenshot_of_a_conversation_is_a_png() {
    let Some(h) = Harness::start("a_screenshot_of_a_conversation") else {
        return;
    };
    let server = Server::start(&[]);
    let png = h.block_on(conversation(&h, &server));
    assert!(png.starts_with(PNG_MAGIC), "not a PNG");
    // The IHDR chunk first: width and height, big-endian, after its header.
    assert_eq!(&png[12..16], b"IHDR", "no IHDR chunk first");
    let width = u32::from_be_bytes(png[16..20].try_into().expect("4 bytes"));
    let height = u32::from_be_bytes(png[20..24].try_into().expect("4 bytes"));
    assert!(
        (width, height) == (1200, 760),
        "a {width}x{height} screenshot of a 1200x760 page"
    );
    if std::env::var("CHAT_WRITE_SCREENSHOT").as_deref() == Ok("1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/page.png");
        std::fs::create_dir_all(path.parent().expect("docs/")).expect("create docs/");
        std::fs::write(&path, &png).expect("write docs/page.png");
        eprintln!("wrote {}", path.display());
    }
}

/// A short afternoon in two rooms, seen by alice; her screenshot.
async fn conversation(h: &Harness, server: &Server) -> Vec<u8> {
    let page = Page::join(h, server.addr(), "alice", (1200, 760)).await;
    let enter = |c: &mut Client, room: &str| {
        c.send_frame(&json!({"type": "enter", "room": room}));
        c.recv_until(100, |f| f["type"] == "entered" && f["room"] == room);
    };
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    let mut erin = server.join("erin");
    page.wait_lines("erin joined", "lobby", |ls| {
        ls.iter().any(|l| l.nick.as_deref() == Some("erin"))
    })
    .await;

    // #rust first, then back to #lobby, where the rest happens.
    page.type_line("/join rust").await;
    enter(&mut bob, "rust");
    say_in(
        &mut bob,
        "rust",
        &[],
        "has anyone tried the new let chains yet?",
    );
    page.wait_texts("rust", &["has anyone tried the new let chains yet?"])
        .await;
    page.type_line("yes, they tidied up half of our parser")
        .await;
    page.wait_texts("rust", &["yes, they tidied up half of our parser"])
        .await;
    page.js(
        "document.querySelector('#rooms > li[data-room=\"lobby\"] button.room').click();",
        vec![],
    )
    .await;

    let lobby: &[(&str, &[&str], &str)] = &[
        ("carol", &[], "good morning! the coffee machine works again"),
        ("bob", &[], "best news all week"),
        ("erin", &[], "did the nightly build pass?"),
        ("bob", &[], "all green since the flaky test was fixed"),
        ("bob", &[], "lunch at 12:30, anyone?"),
        ("carol", &[], "count me in, the noodle place?"),
        ("alice", &[], "sure, I'll book a table for four"),
        ("erin", &[], "same here, see you downstairs"),
        (
            "carol",
            &["alice"],
            "can you bring the slides for the 2 pm review?",
        ),
        ("alice", &["carol"], "will do, they are almost finished"),
        (
            "bob",
            &["alice", "erin"],
            "retro notes are due on Friday, don't forget",
        ),
    ];
    for (from, to, text) in lobby {
        match *from {
            "alice" => {
                let typed = match to {
                    [] => text.to_string(),
                    _ => format!("@{} {text}", to.join(" @")),
                };
                page.type_line(&typed).await;
            }
            "bob" => {
                say_in(&mut bob, "lobby", to, text);
            }
            "carol" => {
                say_in(&mut carol, "lobby", to, text);
            }
            _ => {
                say_in(&mut erin, "lobby", to, text);
            }
        }
        page.wait_texts("lobby", &[text]).await;
    }
    // Someone comes and goes; bob says something in #rust meanwhile.
    let mut dave = server.join("dave");
    say_in(&mut dave, "lobby", &[], "hi! just passing by");
    drop(dave);
    page.wait_lines("dave left", "lobby", |ls| {
        ls.iter()
            .any(|l| l.nick.as_deref() == Some("dave") && l.status.as_deref() == Some("offline"))
    })
    .await;
    say_in(&mut bob, "rust", &[], "nice; I'll send a PR for ours too");
    wait_for("alice: #rust marked unread", async || {
        let v = page
            .js(
                "const b = document.querySelector('#rooms > li[data-room=\"rust\"] .unread');
                 return b && !b.hidden && b.textContent;",
                vec![],
            )
            .await;
        if v == json!("1") {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    page.js("document.activeElement?.blur();", vec![]).await;

    let size = page
        .js(
            "return [window.innerWidth * devicePixelRatio, window.innerHeight * devicePixelRatio];",
            vec![],
        )
        .await;
    assert_eq!(size, json!([1200, 760]), "the page's viewport");
    let png = page.c.screenshot().await.expect("screenshot");
    assert!(!png.is_empty(), "an empty screenshot");
    page.close().await;
    png
}
