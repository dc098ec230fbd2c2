//! Commands typed in the page: answered in view, and the terminal client's set.

use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::json;

use crate::common::{Client, Server};
use crate::say_in;
use crate::webdriver::{wait_for, Harness, Line, Page};

// ---------------------------------------------------------------------
// b3. Commands: answered in view, and the terminal client's set.
// ---------------------------------------------------------------------

/// Where the log is: how far above its bottom, whether the jump button
/// ("↓ Newest", or "↓ New messages") shows and what it says, the text
/// of its last line shown, and the error above the input.
const LOG_PLACE_JS: &str = "const m = document.getElementById('messages');
  const last = Array.from(document.querySelectorAll(
    '#messages .room-log[data-room=\"lobby\"] .events > li'))
    .filter((li) => !li.hidden && !li.classList.contains('said-above')).pop();
  const error = document.querySelector('#errors .error .text');
  return { below: m.scrollHeight - m.scrollTop - m.clientHeight,
    error: error ? error.textContent : null,
    jump: !document.getElementById('jump').hidden,
    label: document.getElementById('jump').textContent,
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
            // Nothing new below yet: the button only goes to the newest.
            assert_eq!(place["label"], "↓ Newest", "{place}");
            page.shot("command-scrolled-up-before").await;
            // A line comes below while the reader reads older ones.
            say_in(&mut bob, "lobby", &[], "news while alice reads back");
            wait_for("the button saying new messages came", async || {
                let v = page.js(LOG_PLACE_JS, vec![]).await;
                if v["jump"] == true && v["label"] == "↓ New messages" {
                    Ok(())
                } else {
                    Err(v.to_string())
                }
            })
            .await;
        }
        page.type_line(cmd).await;
        // The log scrolls to a new line at the next frame: the answer is
        // in view once it has been drawn (or this times out).
        let v = wait_for(&format!("the answer to {cmd}, in view"), async || {
            let v = page.js(LOG_PLACE_JS, vec![]).await;
            match v["last"].as_str() {
                Some(t) if t.starts_with(answer) && v["lastInView"] == true => Ok(v),
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
fn a_line_the_server_refuses_leaves_the_log_at_its_newest_line() {
    let Some(h) = Harness::start("a_line_the_server_refuses_leaves_the_log") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(refused_in_view(&h, &server));
}

async fn refused_in_view(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 400)).await;
    let mut bob = server.join("bob");
    for i in 1..=40 {
        say_in(&mut bob, "lobby", &[], &format!("filler {i} from bob"));
    }
    page.wait_texts("lobby", &["filler 40 from bob"]).await;
    // Followed to the bottom, a line to no one online: its pending line
    // goes, the error comes above the input (which takes the line back;
    // the log has it once the line is changed), and the log is no
    // higher than before. The newest line stays in view (it was left
    // above "↓ Newest").
    page.type_line("@nobody hi").await;
    let v = wait_for("the refusal, the log at its bottom", async || {
        let v = page.js(LOG_PLACE_JS, vec![]).await;
        let said = v["error"]
            .as_str()
            .is_some_and(|t| t.starts_with("not online: nobody"));
        if said
            && v["last"] == "filler 40 from bob"
            && v["lastInView"] == true
            && v["jump"] == false
        {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert!(v["below"].as_f64().is_some_and(|b| b < 2.0), "{v}");
    page.shot("refused-in-view").await;
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
    // The whole history was shown: the start of it says what /clear hid.
    let start = page
        .js(
            "const p = document.querySelector('section[data-room=\"lobby\"] .log-start');
             return p.hidden ? null : p.textContent;",
            vec![],
        )
        .await;
    assert_eq!(
        start,
        json!("This is the start of #lobby's history; /history shows again what /clear hid.")
    );
    say_in(&mut bob, "lobby", &[], "after the clear");
    let after = page.wait_texts("lobby", &["after the clear"]).await;
    assert_eq!(
        shown_texts(&after),
        ["after the clear"],
        "more than the new message after /clear"
    );
    // /history shows again what /clear hid, above what came after it (a
    // page said "no older messages" and stayed empty).
    page.type_line("/history").await;
    let back = page
        .wait_texts("lobby", &["to everyone", "after the clear"])
        .await;
    let texts = shown_texts(&back);
    let at = |t: &str| texts.iter().position(|x| *x == t);
    assert!(at("to everyone") < at("after the clear"), "{texts:?}");
    // With nothing after it, /history brings back the newest too (it paged
    // from where the room was entered, and found nothing older).
    page.type_line("/clear").await;
    page.wait_lines("an empty log again", "lobby", |ls| ls.is_empty())
        .await;
    page.type_line("/history").await;
    page.wait_texts("lobby", &["to everyone", "after the clear"])
        .await;
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
    // A command that takes nothing refuses words after it, as the
    // terminal client does: `/quit now` does not leave.
    let state = page.state().await;
    for (typed, usage) in [("/quit now", "/quit"), ("/help join", "/help")] {
        page.paste_line(typed).await;
        let want = format!("too many words; usage: {usage}");
        let err = page
            .js(
                "const e = [...document.querySelectorAll('#errors .error .text')].pop();
                 return e ? e.textContent : null;",
                vec![],
            )
            .await;
        assert_eq!(err, json!(want), "{typed}");
    }
    assert_eq!(page.state().await, state, "/quit now left");
    page.close().await;
}

fn shown_texts(lines: &[Line]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

/// A line too long to send is said above the input as it is typed, and
/// the warning goes once the line is short enough again. The most it says
/// the server takes is what the server takes: a line that long is sent
/// and delivered, one byte more is warned of (it said "about" a bound 540
/// bytes too high, and the server refused lines under it).
#[test]
fn a_line_too_long_is_said_while_it_is_typed() {
    let Some(h) = Harness::start("a_line_too_long_is_said_while_typed") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(too_long_while_typed(&h, &server));
}

async fn too_long_while_typed(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let type_js = |n: usize| {
        format!(
            "const i = document.getElementById('input');
             i.value = 'x'.repeat({n});
             i.dispatchEvent(new Event('input'));
             const e = document.querySelector('#errors .error');
             return e ? [e.dataset.code, e.textContent] : null;"
        )
    };
    let warned = page.js(&type_js(70_000), vec![]).await;
    assert_eq!(warned[0], "msg_too_large", "{warned}");
    assert!(
        warned[1].as_str().is_some_and(|t| t.contains("too long")),
        "{warned}"
    );
    // Shorter again: no warning, and nothing was sent.
    let fine = page.js(&type_js(60_000), vec![]).await;
    assert!(fine.is_null(), "{fine}");
    assert_eq!(page.pending().await, 0);
    // "... the server takes at most N)": N is sent, N + 1 is not.
    let said = warned[1].as_str().expect("a text");
    let most: usize = said
        .rsplit("at most ")
        .next()
        .and_then(|n| n.trim_end_matches(')').replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no bound in {said:?}"));
    assert!(page.js(&type_js(most + 1), vec![]).await.is_array());
    assert!(page.js(&type_js(most), vec![]).await.is_null());
    let line = "x".repeat(most);
    page.paste_line(&line).await;
    page.wait_texts("lobby", &[&line]).await;
    // Taken by the server (echoed), not refused as too large.
    page.wait_pending(0).await;
    let bar = page.js(BAR_JS, vec![]).await;
    assert!(bar[0].is_null(), "{bar}");
    page.close().await;
}

/// The error above the input (`#errors`): its code and the input's text.
const BAR_JS: &str = "const e = document.querySelector('#errors .error');
  return [e ? e.dataset.code : null, document.getElementById('input').value];";

/// A line the server refused (here `unavailable`: its history is at its size cap)
/// comes back to the input with the reason above it. The reason goes once
/// the line is changed: edited, addressed by a click on a nickname, or
/// cleared with Escape (the log keeps it).
#[test]
fn a_refused_lines_error_goes_once_the_line_is_changed() {
    let Some(h) = Harness::start("a_refused_lines_error_goes") else {
        return;
    };
    let data = tempfile::tempdir().expect("data directory");
    let dir = data.path().to_str().expect("a UTF-8 path").to_owned();
    let server = Server::start(&["--data-dir", &dir, "--store-max-mib", "1", "--rate", "0"]);
    h.block_on(refused_line(&h, &server));
}

async fn refused_line(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    // Bob fills the store with messages of 1,000 bytes until one is
    // refused. While the store fails, a probe each second writes that same
    // message again (texts up to 1 KiB are probed whole), which never
    // fits: everything is refused from then on. A larger message's probe
    // is cut to 1 KiB, which could fit, and the store would take lines
    // again while this test reads their refusals.
    let mut bob = server.join("bob");
    page.wait_lines("bob joined", "lobby", |ls| {
        ls.iter().any(|l| l.nick.as_deref() == Some("bob"))
    })
    .await;
    let text = "x".repeat(1_000);
    let full = (0..3_000).any(|n| {
        let id = format!("fill-{n}");
        bob.send_frame(&json!({"type": "msg", "text": text, "id": id}));
        let (_, f) = bob.recv_until(10, |f| {
            (f["type"] == "msg" || f["type"] == "error") && f["id"] == id.as_str()
        });
        f["type"] == "error"
    });
    assert!(full, "1 MiB took 3,000 messages of 1,000 bytes");
    let refused = async |what: &str, line: &str| {
        wait_for(&format!("alice: {what} refused"), async || {
            let v = page.js(BAR_JS, vec![]).await;
            if v == json!(["unavailable", line]) {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
    };
    let input = page.c.find(Locator::Id("input")).await.expect("#input");

    page.type_line("not stored").await;
    refused("the line", "not stored").await;
    input.send_keys(" again").await.expect("type");
    assert_eq!(
        page.js(BAR_JS, vec![]).await,
        json!([null, "not stored again"]),
        "the error stayed once the line was edited"
    );

    page.type_line("").await;
    refused("the edited line", "not stored again").await;
    page.click_css("#online li[data-nick=\"bob\"] button.nick")
        .await;
    assert_eq!(
        page.js(BAR_JS, vec![]).await,
        json!([null, "@bob not stored again"]),
        "the error stayed once the line was addressed"
    );

    page.type_line("").await;
    refused("the addressed line", "@bob not stored again").await;
    page.press(&[Key::Escape]).await;
    assert_eq!(
        page.js(BAR_JS, vec![]).await,
        json!([null, ""]),
        "the error stayed once the line was cleared"
    );
    // The log keeps each refusal.
    let lines = page.lines("lobby").await;
    let n = lines
        .iter()
        .filter(|l| l.has_class("error") && l.text.contains("cannot store"))
        .count();
    assert_eq!(n, 3, "{lines:#?}");
    page.shot("refused-line").await;
    page.close().await;
}

/// An error answered in one room is that room's: showing another room
/// puts it away (the line stays in the input, and the room's log shows
/// its line of the error again), coming back while the line is unchanged
/// shows it again, and once the line has changed it is over.
#[test]
fn a_rooms_error_goes_with_its_room_and_comes_back_with_it() {
    let Some(h) = Harness::start("a_rooms_error_goes_with_its_room") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(error_of_a_room(&h, &server));
}

/// The error above the input, the input's text, and whether `#rust`'s
/// line of the error is in sight (not `.said-above`).
const ROOM_ERROR_JS: &str = "const e = document.querySelector('#errors .error');
  const li = document.querySelector('.room-log[data-room=\"rust\"] li.error');
  return [e ? e.dataset.code : null, document.getElementById('input').value,
    li ? !li.classList.contains('said-above') : null];";

async fn error_of_a_room(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    let mut bob = server.join("bob");
    let _carol = server.join("carol");
    page.type_line("/join rust").await;
    bob.enter("rust");
    page.wait_nicks("rust", &["bob"]).await;
    let line = "@bob @carol: hi";
    page.type_line(line).await;
    let refused = json!(["unknown_nick", line, false]);
    wait_for("alice: the line refused in #rust", async || {
        let v = page.js(ROOM_ERROR_JS, vec![]).await;
        if v == refused {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    let says = async |v: serde_json::Value, what: &str| {
        assert_eq!(page.js(ROOM_ERROR_JS, vec![]).await, v, "{what}");
    };

    page.click_css("#rooms > li[data-room=\"lobby\"] button.room")
        .await;
    page.shot("room-error-elsewhere").await;
    says(
        json!([null, line, true]),
        "in #lobby, #rust's error is shown",
    )
    .await;
    page.click_css("#rooms > li[data-room=\"rust\"] button.room")
        .await;
    says(
        refused.clone(),
        "back in #rust, its error is not shown again",
    )
    .await;

    // Changed elsewhere, the line is no longer the one refused.
    page.click_css("#rooms > li[data-room=\"lobby\"] button.room")
        .await;
    page.click("input").await;
    page.press(&[Key::End]).await;
    page.press_text("!").await;
    page.click_css("#rooms > li[data-room=\"rust\"] button.room")
        .await;
    says(
        json!([null, format!("{line}!"), true]),
        "the error came back for a line changed since",
    )
    .await;
    page.close().await;
}

/// Clicking the room list's Refresh again and again asks the server once
/// at a time: a `rooms` request costs one of the largest frames against
/// the byte allowance, and a burst of them was read slower and slower,
/// then closed (here past 300 ms), a message sent behind them waiting
/// in the meantime.
#[test]
fn refreshing_the_room_list_again_and_again_keeps_the_page_connected() {
    let Some(h) = Harness::start("refreshing_the_room_list_again_and_again") else {
        return;
    };
    let server = Server::start(&[
        "--rate-bytes",
        "65536",
        "--burst-bytes",
        "262144",
        "--rate-limit-grace-ms",
        "300",
    ]);
    h.block_on(refresh_rooms(&h, &server));
}

async fn refresh_rooms(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 600)).await;
    let mut bob = server.join("bob");
    page.js(
        "document.getElementById('server-rooms-panel').open = true;
         const b = document.getElementById('server-rooms-refresh');
         for (let i = 0; i < 30; i++) b.click();
         return null;",
        vec![],
    )
    .await;
    page.type_line("after the clicks").await;
    bob.recv_until(10, |f| {
        f["type"] == "msg" && f["text"] == "after the clicks"
    });
    wait_for("the room list", async || {
        let v = page
            .js(
                "return document.getElementById('server-rooms').textContent;",
                vec![],
            )
            .await;
        if v.as_str().is_some_and(|t| t.contains("lobby")) {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert!(
        !server.log().contains("rate limit exceeded"),
        "{}",
        server.log()
    );
    assert_eq!(page.state().await, "connected");
    page.close().await;
}

/// A room list the server cut to fit one frame (eight rooms with the
/// smallest frames) says how many rooms it left out, in the panel and
/// in the answer to `/rooms`; a whole list says nothing of the kind.
#[test]
fn a_cut_room_list_says_how_many_rooms_are_not_listed() {
    let Some(h) = Harness::start("a_cut_room_list_says_how_many_rooms_are_not_listed") else {
        return;
    };
    let server = Server::start(&["--max-frame-bytes", "1024"]);
    h.block_on(cut_room_list(&h, &server));
}

async fn cut_room_list(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 600)).await;
    let mut bob = server.join("bob");
    bob.enter("room-01");
    let panel = async |want: &str, not: Option<&str>| {
        page.js(
            "document.getElementById('server-rooms-panel').open = true;
             document.getElementById('server-rooms-refresh').click();
             return null;",
            vec![],
        )
        .await;
        wait_for(&format!("the room list saying {want:?}"), async || {
            let v = page
                .js(
                    "return document.getElementById('server-rooms').textContent;",
                    vec![],
                )
                .await;
            let text = v.as_str().unwrap_or_default().to_owned();
            if text.contains(want) && not.is_none_or(|n| !text.contains(n)) {
                Ok(text)
            } else {
                Err(text)
            }
        })
        .await
    };
    // Two rooms: the whole list.
    panel("#room-01", Some("not listed")).await;
    for i in 2..=10 {
        bob.enter(&format!("room-{i:02}"));
    }
    // Eleven: lobby and room-01 to room-07 listed, three more not.
    let text = panel("3 more not listed", None).await;
    assert!(
        text.contains("#room-07") && !text.contains("#room-08"),
        "{text}"
    );
    page.type_line("/rooms").await;
    let said = "3 more not listed (/join ROOM enters any room by name)";
    page.wait_lines("the answer to /rooms", "lobby", |lines| {
        lines
            .iter()
            .any(|l| l.text.starts_with("rooms: #lobby (2)") && l.text.ends_with(said))
    })
    .await;
    page.close().await;
}

#[test]
fn a_line_of_several_lines_sent_after_an_error_is_shown_in_view() {
    let Some(h) = Harness::start("a_line_of_several_lines_sent_after_an_error") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(several_lines_after_an_error(&h, &server));
}

/// An error above the input, then a message of three lines typed and
/// sent: the input and the error line shrink as it goes, the log grows
/// taller, and the browser moves it to fit in the same frame as the
/// message comes in. That move is not the reader scrolling up: the log
/// keeps following, and the message is in view.
async fn several_lines_after_an_error(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 400)).await;
    let mut bob = server.join("bob");
    for i in 1..=40 {
        say_in(&mut bob, "lobby", &[], &format!("filler {i} from bob"));
    }
    page.wait_texts("lobby", &["filler 40 from bob"]).await;
    for round in 1..=3 {
        page.type_line("/bogus").await;
        wait_for("the error above the input", async || {
            let v = page
                .js(
                    "return document.querySelectorAll('#errors > .error').length > 0;",
                    vec![],
                )
                .await;
            if v == true {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        // The line kept in the input taken out, and three lines typed
        // (the input grows with each) and sent, in one go as a fast
        // typist would: all of it may land in one frame.
        let [ctrl, shift, enter, backspace, release] = [
            Key::Control,
            Key::Shift,
            Key::Enter,
            Key::Backspace,
            Key::Null,
        ]
        .map(char::from);
        let newline = format!("{shift}{enter}{release}");
        page.press_text(&format!(
            "{ctrl}a{release}{backspace}round {round} line 1{newline}line 2{newline}line 3{enter}"
        ))
        .await;
        let v = wait_for("the message echoed, at the bottom of the log", async || {
            let v = page.js(LOG_PLACE_JS, vec![]).await;
            let echoed = v["last"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("round {round} line 1")));
            if echoed && page.pending().await == 0 {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.shot(&format!("several-lines-after-error-{round}"))
            .await;
        assert!(
            v["jump"] == false && v["lastInView"] == true,
            "round {round}: the message is not in view: {v}"
        );
    }
    page.close().await;
}

/// On a phone's width the bar gives the room's name the place of the
/// app's; with no room named (the join screen, after `/quit`), the app's
/// name stays rather than an empty strip.
#[test]
fn on_a_phone_the_bar_names_the_room_or_else_the_app() {
    let Some(h) = Harness::start("on_a_phone_the_bar_names_the_room") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(phone_bar(&h, &server));
}

async fn phone_bar(h: &Harness, server: &Server) {
    const BAR_JS: &str = "const a = document.querySelector('.app-name');
        return { app: a.offsetWidth > 0, room: document.getElementById('current-room').textContent,
                 joining: !document.getElementById('join-screen').hidden };";
    let page = Page::join(h, server.addr(), "alice", (390, 844)).await;
    let v = page.js(BAR_JS, vec![]).await;
    assert_eq!(v, json!({"app": false, "room": "#lobby", "joining": false}));
    page.type_line("/quit").await;
    let v = wait_for("the join screen", async || {
        let v = page.js(BAR_JS, vec![]).await;
        if v["joining"] == json!(true) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(v, json!({"app": true, "room": "", "joining": true}));
    page.shot("phone-join-bar").await;
}

/// The composer's row after `/query NICK`: what the mark beside the input
/// says, whether its `→` and `only` are seen (the name between them may be
/// cut short), the input's width, and whether the mark, the input and
/// Send are each wholly in the window, none over another.
const QUERY_ROW_JS: &str = r#"
const q = document.getElementById('query-to');
const boxes = ['query-to', 'input', 'send'].map((id) => document.getElementById(id).getBoundingClientRect());
const over = (x, y) => x.left < y.right && y.left < x.right && x.top < y.bottom && y.top < x.bottom;
const ends = Array.from(q.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => {
  const r = document.createRange();
  r.selectNodeContents(n);
  const b = r.getBoundingClientRect();
  return b.width > 0 && b.left >= boxes[0].left - 0.5 && b.right <= boxes[0].right + 0.5;
});
return {
  text: q.hidden ? null : q.textContent,
  ends_seen: ends.length === 2 && ends.every((e) => e),
  input_width: Math.round(boxes[1].width),
  in_view: boxes.every((b) => b.width > 0 && b.left >= 0 && b.right <= innerWidth && b.bottom <= innerHeight)
    && !over(boxes[0], boxes[1]) && !over(boxes[1], boxes[2]) && !over(boxes[0], boxes[2]),
  boxes: boxes.map((b) => [b.left, b.top, b.right, b.bottom].map(Math.round)),
};
"#;

/// On a phone, `/query` a long nickname: the mark beside the input
/// (`→ NAME only`, the name cut short with an ellipsis if need be) leaves
/// room to type, and Send stays on the screen. (The mark kept the whole
/// name on one line: the input was squeezed to a sliver writing its
/// placeholder a letter a row, and Send went off the right edge.)
#[test]
fn on_a_phone_a_query_to_a_long_nickname_leaves_room_to_type() {
    let Some(h) = Harness::start("on_a_phone_a_query_to_a_long_nickname") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let long = "bartholomew-the-long-nickname-xy";
        let mut bob = server.join(long);
        for (nick, w, ht) in [("alice", 390, 844), ("carol", 320, 640)] {
            let page = Page::join(&h, server.addr(), nick, (w, ht)).await;
            page.type_line(&format!("/query {long}")).await;
            let row = wait_for(&format!("{nick}: the query's mark"), async || {
                let v = page.js(QUERY_ROW_JS, vec![]).await;
                if v["text"].is_null() {
                    Err(v.to_string())
                } else {
                    Ok(v)
                }
            })
            .await;
            page.shot(&format!("phone-query-long-nick-{w}")).await;
            assert_eq!(row["text"], json!(format!("→ {long} only")), "{row}");
            assert_eq!(row["ends_seen"], json!(true), "at {w}x{ht}: {row}");
            assert_eq!(row["in_view"], json!(true), "at {w}x{ht}: {row}");
            let input = row["input_width"].as_u64().expect("a width");
            assert!(
                input >= w as u64 / 4,
                "the input {input}px wide at {w}x{ht}: {row}"
            );
            // And the line typed goes to the long-named one.
            page.type_line("just for you").await;
            let (_, f) = bob.recv_until(50, |f| f["type"] == "msg" && f["text"] == "just for you");
            assert_eq!(f["to"], json!([long]), "{f}");
            page.close().await;
        }
    });
}

/// Lines refused together (sent at once, each answered after the last
/// was sent): the first goes back into the input, and each of the others
/// is said with its error, with its text, which only one line could keep
/// in the input (the others' texts were lost: a probe typed five lines
/// while its node was cut off from NATS and got one back).
#[test]
fn lines_refused_together_each_keep_their_text() {
    let Some(h) = Harness::start("lines_refused_together_each_keep_their_text") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(refused_together(&h, &server));
}

async fn refused_together(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    // Sent within one script: no answer can come between them.
    page.js(
        "const i = document.getElementById('input');
         for (const line of ['@nobody one', '@nobody two', '@nobody three']) {
           i.value = line;
           i.form.requestSubmit();
         }
         return null;",
        vec![],
    )
    .await;
    let errors = wait_for("three lines refused", async || {
        let v = page
            .js(
                "return [...document.querySelectorAll(
                   '.room-log[data-room=\"lobby\"] li.error[data-code=\"unknown_nick\"]')]
                   .map((li) => li.textContent);",
                vec![],
            )
            .await;
        match v.as_array() {
            Some(a) if a.len() == 3 => Ok(v),
            _ => Err(v.to_string()),
        }
    })
    .await;
    page.shot("lines-refused-together").await;
    let input = page
        .js("return document.getElementById('input').value;", vec![])
        .await;
    assert_eq!(input, json!("@nobody one"), "{errors}");
    let texts: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap_or_default())
        .collect();
    assert!(!texts[0].contains("your line"), "{texts:?}");
    assert!(texts[1].contains("your line: @nobody two"), "{texts:?}");
    assert!(texts[2].contains("your line: @nobody three"), "{texts:?}");
    // The last error is the one shown above the input (its line in the
    // log waits meanwhile): with its line too.
    let above = page
        .js(
            "return document.querySelector('#errors .error').textContent;",
            vec![],
        )
        .await;
    assert!(
        above
            .as_str()
            .is_some_and(|t| t.contains("your line: @nobody three")),
        "{above}"
    );
}

/// What the page shows of the room (or no room) shown: its name, the
/// lines of the log in sight and whether the last is in view, the error
/// above the input, the input's text and the `/query` mark.
const SHOWN_JS: &str = "const m = document.getElementById('messages');
  const box = m.getBoundingClientRect();
  const seen = Array.from(m.querySelectorAll('.events > li')).filter((li) => li.offsetParent !== null);
  const b = seen.length ? seen[seen.length - 1].getBoundingClientRect() : null;
  const e = document.querySelector('#errors .error .text');
  const q = document.getElementById('query-to');
  return { room: document.getElementById('current-room').textContent,
    lines: seen.map((li) => (li.querySelector('.text') ?? li).textContent),
    lastInView: !b || (b.top >= box.top - 1 && b.bottom <= box.bottom + 1),
    error: e ? e.textContent : null,
    input: document.getElementById('input').value,
    query: q.hidden ? null : q.textContent };";

/// In no room (every room left), the commands that need none are
/// answered in the log shown then, and those that need one say so above
/// the input, which keeps the line, as the terminal client does. (Each
/// emptied the input and said nothing: their answers went to no room.)
#[test]
fn commands_in_no_room_are_answered_or_say_why_not() {
    let Some(h) = Harness::start("commands_in_no_room") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(in_no_room(&h, &server));
}

async fn in_no_room(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 600)).await;
    let _bob = server.join("bob");
    page.wait_lines("bob online", "lobby", |ls| {
        ls.iter().any(|l| l.nick.as_deref() == Some("bob"))
    })
    .await;
    // Until `done` holds of what is shown.
    let until = async |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        wait_for(what, async || {
            let v = page.js(SHOWN_JS, vec![]).await;
            if done(&v) {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await
    };
    let last_is = |v: &serde_json::Value, want: &str| {
        v["lines"]
            .as_array()
            .and_then(|ls| ls.last())
            .is_some_and(|l| l.as_str().is_some_and(|t| t.starts_with(want)))
            && v["lastInView"] == true
            && v["input"] == ""
    };
    page.type_line("/part").await;
    until("no room shown", &|v| {
        v["room"] == "" && v["lines"] == json!([])
    })
    .await;

    // Needing no room: answered in the log shown.
    page.type_line("/help").await;
    let v = until("the help", &|v| last_is(v, "Enter sends")).await;
    let help = v["lines"].as_array().expect("lines");
    assert!(
        help.iter()
            .any(|l| l.as_str().is_some_and(|t| t.starts_with("/join "))),
        "{v}"
    );
    page.type_line("/rooms").await;
    until("the answer to /rooms", &|v| last_is(v, "rooms: #lobby (1)")).await;
    page.type_line("/query bob").await;
    let v = until("the query's note", &|v| {
        last_is(
            v,
            "lines now go to bob only; /query alone sends to everyone again",
        )
    })
    .await;
    assert_eq!(v["query"], "→ bob only", "{v}");
    page.shot("no-room-answers").await;
    page.type_line("/clear").await;
    until("an empty log", &|v| {
        v["lines"] == json!([]) && v["input"] == ""
    })
    .await;
    page.type_line("/query").await;
    until("the end of the query", &|v| {
        last_is(v, "lines go to everyone in the room again")
    })
    .await;

    // Needing a room: said above the input, which keeps the line.
    for line in ["/who", "/history", "hello"] {
        page.js(
            "const i = document.getElementById('input');
             i.value = '';
             i.dispatchEvent(new Event('input'));
             return null;",
            vec![],
        )
        .await;
        page.type_line(line).await;
        let v = until(&format!("{line}: why not"), &|v| {
            v["error"] == "you are in no room; /join ROOM first"
        })
        .await;
        assert_eq!(v["input"], line, "{v}");
    }
    page.shot("no-room-who").await;

    // What was said in no room stays there: not in the room entered, and
    // back with no room.
    page.js(
        "const i = document.getElementById('input');
         i.value = '';
         i.dispatchEvent(new Event('input'));
         return null;",
        vec![],
    )
    .await;
    page.type_line("/join rust").await;
    page.wait_lines("alice in #rust", "rust", |ls| {
        ls.iter()
            .any(|l| l.nick.as_deref() == Some("alice") && l.status.as_deref() == Some("online"))
    })
    .await;
    let v = page.js(SHOWN_JS, vec![]).await;
    assert_eq!(v["room"], "#rust", "{v}");
    assert!(
        v["lines"].as_array().expect("lines").iter().all(|l| l
            .as_str()
            .is_some_and(|t| !t.starts_with("lines go to everyone"))),
        "{v}"
    );
    page.type_line("/part").await;
    until("the no-room log again", &|v| {
        v["room"] == "" && last_is(v, "lines go to everyone in the room again")
    })
    .await;
    page.close().await;
}

/// `/part` of a room one is not in is a mistake: said above the input,
/// which keeps the line to be corrected (it was emptied). One that
/// leaves empties it.
#[test]
fn a_part_of_a_room_you_are_not_in_keeps_the_line() {
    let Some(h) = Harness::start("a_part_of_a_room_you_are_not_in") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1000, 600)).await;
        page.type_line("/part zzz").await;
        let v = wait_for("the error", async || {
            let v = page.js(SHOWN_JS, vec![]).await;
            if v["error"] == "you are not in #zzz" {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        assert_eq!(v["input"], "/part zzz", "{v}");
        assert_eq!(v["room"], "#lobby", "{v}");
        page.shot("part-not-in").await;
        // Corrected, it leaves, and the input empties.
        page.js(
            "const i = document.getElementById('input');
             i.value = '';
             i.dispatchEvent(new Event('input'));
             return null;",
            vec![],
        )
        .await;
        page.type_line("/part lobby").await;
        wait_for("no room, the input empty", async || {
            let v = page.js(SHOWN_JS, vec![]).await;
            if v["room"] == "" && v["input"] == "" && v["error"].is_null() {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.close().await;
    });
}
