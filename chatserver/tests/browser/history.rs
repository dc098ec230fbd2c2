//! History loads on scroll, and a busy room keeps its newest lines.

use serde_json::{json, Value};

use crate::common::{Client, Server, WAIT};
use crate::webdriver::{wait_for, Harness, Line, Page};
use crate::{restartable, shown};

// ---------------------------------------------------------------------
// c. History loads on scroll.
// ---------------------------------------------------------------------

const OLD: usize = 120;

fn old_text(i: usize) -> String {
    format!("old message {i:03} of {OLD}")
}

/// A server whose lobby holds `OLD` messages from dave, still there.
fn server_with_old_messages() -> (Server, Client) {
    let server = Server::start(&["--rate", "0"]);
    let mut dave = server.join("dave");
    for i in 1..=OLD {
        dave.send_frame(&json!({"type": "msg", "text": old_text(i)}));
    }
    let last = old_text(OLD);
    dave.recv_until(OLD + 10, |f| {
        f["type"] == "msg" && f["text"] == last.as_str()
    });
    (server, dave)
}

#[test]
fn scrolling_to_the_top_loads_history_down_to_the_first_message() {
    let Some(h) = Harness::start("scrolling_to_the_top_loads_history") else {
        return;
    };
    let (server, _dave) = server_with_old_messages();
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
fn the_keyboard_on_load_older_messages_keeps_its_focus_while_they_load() {
    let Some(h) = Harness::start("the_keyboard_on_load_older_messages") else {
        return;
    };
    let (server, _dave) = server_with_old_messages();
    h.block_on(load_older_by_keyboard(&h, &server));
}

async fn load_older_by_keyboard(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    let last = old_text(OLD);
    let before = page.wait_texts("lobby", &[last.as_str()]).await;
    let shown_before = before.iter().filter(|l| l.is_msg()).count();
    assert!(
        shown_before < OLD,
        "everything was shown at once; nothing to test"
    );
    // Tab from the log to Load older messages: in view, it asks for a
    // page by itself. The focus stays on it while the page comes (it
    // fell to the page's body), or on the log once the first message
    // is shown and the button goes.
    page.js("document.getElementById('messages').focus();", vec![])
        .await;
    page.press(&[fantoccini::key::Key::Tab]).await;
    let first = old_text(1);
    let more = move |lines: &[crate::webdriver::Line]| {
        lines.iter().filter(|l| l.is_msg()).count() > shown_before
            || lines.iter().any(|l| l.text == first)
    };
    page.wait_lines("an older page", "lobby", more).await;
    let focused = wait_for("the page loaded and the focus kept", async || {
        let loading = page
            .js(
                "return document.querySelector('.room-log[data-room=\"lobby\"] button.load-older')
                   .textContent === 'Loading…';",
                vec![],
            )
            .await;
        let f = page.focused().await;
        if loading == false && f != "body" {
            Ok(f)
        } else {
            Err(format!("loading: {loading}, focus on {f}"))
        }
    })
    .await;
    assert!(
        focused == "button.load-older" || focused == "#messages",
        "the focus went to {focused}"
    );
    page.close().await;
}

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
                 const clickable = b && !b.hidden && b.getAttribute('aria-disabled') !== 'true';
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

/// Lines without a seq count against what a room's log keeps too: a tab
/// left open where notes pile up (here, `/help` asked for again and
/// again) keeps its newest lines, not all of them.
#[test]
fn notes_count_against_what_a_room_keeps() {
    let Some(h) = Harness::start("notes_count_against_what_a_room_keeps") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(notes_pile_up(&h, &server));
}

async fn notes_pile_up(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "gina", (1200, 800)).await;
    // Typed and sent with Enter, 200 times, in one script: about 15 notes
    // each, half as many again as the log keeps.
    let v = page
        .js(
            "const input = document.getElementById('input');
             for (let i = 0; i < 200; i++) {
               input.value = '/help';
               input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true }));
             }
             const log = document.querySelector('.room-log[data-room=\"lobby\"] .events');
             const help = log.querySelectorAll('li.help').length;
             return { lines: log.childElementCount, help,
                      last: log.lastElementChild.querySelector('.text').textContent };",
            vec![],
        )
        .await;
    let lines = v["lines"].as_u64().expect("a count") as usize;
    let help = v["help"].as_u64().expect("a count") as usize;
    assert!(
        (MAX_SHOWN - TRIM_BY..=MAX_SHOWN).contains(&lines),
        "{lines} lines kept: {v}"
    );
    assert!(help > MAX_SHOWN / 2, "the help was not shown: {v}");
    assert!(
        v["last"]
            .as_str()
            .is_some_and(|t| t.starts_with("Enter sends")),
        "the newest help line is not the last: {v}"
    );
    page.close().await;
}

/// `/history 5` typed at the end of the log: the five come above, where
/// the reader does not look, and the end of the log says so, as the
/// answer to every other command is (and as chatclient says it).
#[test]
fn a_typed_history_says_at_the_end_of_the_log_what_it_brought() {
    let Some(h) = Harness::start("a_typed_history_says_what_it_brought") else {
        return;
    };
    let (server, _dave) = server_with_old_messages();
    h.block_on(typed_history(&h, &server));
}

async fn typed_history(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    let last = old_text(OLD);
    let before = page.wait_texts("lobby", &[last.as_str()]).await;
    let shown_before = before.iter().filter(|l| l.is_msg()).count();
    page.type_line("/history 5").await;
    let want = "5 older messages of #lobby shown above; /history shows more";
    let lines = page
        .wait_lines(&format!("{want:?} at the end"), "lobby", |lines| {
            lines.last().is_some_and(|l| l.text == want)
        })
        .await;
    assert_eq!(
        lines.iter().filter(|l| l.is_msg()).count(),
        shown_before + 5,
        "five older messages more"
    );
    page.close().await;
}

/// `/history` after `/clear` hid a whole short room: what it brings are
/// the room's newest messages, and its line says so, as chatclient's (it
/// said `20 older messages of #lobby shown above`); the next one brings
/// older ones, and says that.
#[test]
fn a_history_after_clear_says_it_brought_the_newest() {
    let Some(h) = Harness::start("a_history_after_clear_says_it_brought_the_newest") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    let said = |i: usize| format!("said {i:02}");
    let mut dave = server.join("dave");
    for i in 1..=30 {
        dave.send_frame(&json!({"type": "msg", "text": said(i)}));
    }
    dave.recv_until(40, |f| f["type"] == "msg" && f["text"] == said(30).as_str());
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "erin", (1200, 800)).await;
        page.wait_texts("lobby", &[said(1).as_str(), said(30).as_str()])
            .await;
        page.type_line("/clear").await;
        page.wait_lines("an empty log", "lobby", |ls| ls.is_empty())
            .await;
        page.type_line("/history").await;
        let told = |ls: &[Line]| ls.last().is_some_and(|l| l.text.contains("of #lobby"));
        let lines = page
            .wait_lines("what /history brought", "lobby", told)
            .await;
        let want = "the newest 20 messages of #lobby; /history shows more";
        assert_eq!(
            lines.last().map(|l| l.text.as_str()),
            Some(want),
            "{:#?}",
            shown(&lines)
        );
        let msgs: Vec<_> = lines.iter().filter(|l| l.is_msg()).collect();
        assert_eq!(
            (msgs.len(), msgs.last().map(|l| l.text.clone())),
            (20, Some(said(30))),
            "{:#?}",
            shown(&lines)
        );
        page.shot("history-after-clear").await;
        page.type_line("/history").await;
        let want = "10 older messages of #lobby shown above; that is all";
        page.wait_lines(&format!("{want:?} at the end"), "lobby", |ls| {
            ls.last().is_some_and(|l| l.text == want)
        })
        .await;
        page.close().await;
    });
}

/// Installed in the page before it joins: while `__hold.on`, the
/// server's `history` answers are held back (as a loaded server's come
/// late), in order, until `__hold.release()` gives them to the page.
const HOLD_JS: &str = "
    const Real = window.WebSocket;
    const hold = { on: false, held: [] };
    hold.release = () => {
      hold.on = false;
      for (const [ws, data] of hold.held.splice(0)) {
        const e = new MessageEvent('message', { data });
        e.released = true;
        ws.dispatchEvent(e);
      }
    };
    window.__hold = hold;
    window.WebSocket = class extends Real {
      constructor(url, protocols) {
        super(url, protocols);
        // Before the page's own handler: this one goes first.
        this.addEventListener('message', (e) => {
          if (!hold.on || e.released || typeof e.data !== 'string') return;
          if (JSON.parse(e.data).type !== 'history') return;
          e.stopImmediatePropagation();
          hold.held.push([this, e.data]);
        });
      }
    };
    return null;";

/// What the top of `arguments[0]`'s log offers: "Load older messages",
/// "Loading…" while a page is on its way, or null (none).
const OLDER_BUTTON_JS: &str =
    "const b = document.querySelector(`.room-log[data-room=\"${arguments[0]}\"] button.load-older`);
  return b.hidden ? null : b.textContent;";

/// `/history` typed after `/clear` while a page asked by a scroll is on
/// its way (a loaded server answers late): it still brings the newest
/// messages `/clear` hid, and says so. It took over the page on its way,
/// asked from where the log was before `/clear`, and said `50 older
/// messages of #lobby shown above` (or, that page at the room's start,
/// `no older messages`).
#[test]
fn a_history_after_clear_with_a_page_on_its_way_brings_the_newest() {
    let Some(h) = Harness::start("a_history_after_clear_with_a_page_on_its_way") else {
        return;
    };
    let (server, _dave) = server_with_old_messages();
    h.block_on(async {
        let page = Page {
            c: h.browser(1200, 800).await,
            nick: "erin".to_owned(),
        };
        page.c
            .goto(&format!("http://{}/", server.addr()))
            .await
            .expect("open the page");
        page.js(HOLD_JS, vec![]).await;
        page.js(
            "document.getElementById('nick').value = 'erin';
             document.getElementById('join').click();
             return null;",
            vec![],
        )
        .await;
        page.wait_state("connected").await;
        let last = old_text(OLD);
        page.wait_texts("lobby", &[last.as_str()]).await;
        let offered = json!("Load older messages");
        page.wait_js(
            "older messages offered",
            OLDER_BUTTON_JS,
            vec![json!("lobby")],
            offered.clone(),
        )
        .await;
        // The reader scrolls to the top: a page is asked for, and held.
        page.js(
            "window.__hold.on = true;
             document.getElementById('messages').scrollTop = 0;
             return null;",
            vec![],
        )
        .await;
        page.wait_js(
            "the page the scroll asked for on its way",
            OLDER_BUTTON_JS,
            vec![json!("lobby")],
            json!("Loading…"),
        )
        .await;
        page.type_line("/clear").await;
        page.wait_lines("an empty log", "lobby", |ls| ls.is_empty())
            .await;
        page.type_line("/history").await;
        page.js("window.__hold.release(); return null;", vec![])
            .await;
        let told = |ls: &[Line]| ls.last().is_some_and(|l| l.text.contains("of #lobby"));
        let lines = page
            .wait_lines("what /history brought", "lobby", told)
            .await;
        assert_eq!(
            lines.last().map(|l| l.text.as_str()),
            Some("the newest 20 messages of #lobby; /history shows more"),
            "{:#?}",
            shown(&lines)
        );
        // The newest, each once, in order, down to the last (a scroll may
        // have brought older ones above them since, none missing between).
        let texts: Vec<String> = lines
            .iter()
            .filter(|l| l.is_msg())
            .map(|l| l.text.clone())
            .collect();
        let want: Vec<String> = (OLD + 1 - texts.len().max(20)..=OLD)
            .map(old_text)
            .collect();
        assert_eq!(texts, want, "{:#?}", shown(&lines));
        // The page the scroll asked for left nothing on its way.
        page.wait_js(
            "older messages offered again",
            OLDER_BUTTON_JS,
            vec![json!("lobby")],
            offered,
        )
        .await;
        page.shot("history-after-clear-with-a-page-on-its-way")
            .await;
        page.close().await;
    });
}

/// A page of older messages is not read out by the log: its lines go in
/// silent (`aria-live="off"`, each a region of its own), while the note
/// at the end that says what `/history` brought is said, as a line said
/// in the room is; and the log is not left busy. The log was marked
/// `aria-busy` and unmarked in the same task, which the accessibility
/// tree never saw: a screen reader read a page of 5 (or 200) old lines
/// as if they had just been said.
#[test]
fn an_older_page_is_not_read_out_by_the_log() {
    let Some(h) = Harness::start("an_older_page_is_not_read_out") else {
        return;
    };
    let (server, mut dave) = server_with_old_messages();
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "erin", (1200, 800)).await;
        let last = old_text(OLD);
        let before = page.wait_texts("lobby", &[last.as_str()]).await;
        let first = before
            .iter()
            .find(|l| l.is_msg())
            .expect("a message")
            .clone();
        page.type_line("/history 5").await;
        let want = "5 older messages of #lobby shown above; /history shows more";
        let lines = page
            .wait_lines(&format!("{want:?} at the end"), "lobby", |lines| {
                lines.last().is_some_and(|l| l.text == want)
            })
            .await;
        let older: Vec<u64> = lines
            .iter()
            .filter(|l| l.is_msg())
            .take(5)
            .map(|l| l.seq.expect("a seq"))
            .collect();
        assert!(
            older.iter().all(|s| *s < first.seq.expect("a seq")),
            "{older:?} are not above {first:?}"
        );
        let mut said = Vec::new();
        for seq in &older {
            said.push(
                page.live(&format!("#messages li.msg[data-seq=\"{seq}\"]"))
                    .await,
            );
        }
        assert_eq!(said, vec![json!("off"); 5], "the page's lines {older:?}");
        let note = "#messages .room-log[data-room=\"lobby\"] .events > li:last-child";
        assert_eq!(page.live(note).await, json!("polite"), "the note");
        let log = page.ax("#messages").await;
        assert_eq!(
            (&log["props"]["live"], &log["props"]["busy"]),
            (&json!("polite"), &Value::Null),
            "{log}"
        );
        // What dave says next is said.
        dave.say("and now");
        let now = page.wait_texts("lobby", &["and now"]).await;
        let seq = now.last().and_then(|l| l.seq).expect("a seq");
        assert_eq!(
            page.live(&format!("#messages li.msg[data-seq=\"{seq}\"]"))
                .await,
            json!("polite")
        );
        page.close().await;
    });
}

/// The server no longer keeps the oldest messages of a room erin entered
/// (its memory's cap here; retention on disk does the same): paging back
/// to where the kept history starts, the top of her log says they are no
/// longer kept, not that the room's history starts there, and so does
/// `/history`'s answer.
#[test]
fn the_top_of_a_log_whose_older_messages_went_says_they_are_no_longer_kept() {
    let Some(h) = Harness::start("the_top_of_a_log_whose_older_messages_went") else {
        return;
    };
    let server = Server::start(&[
        "--rate",
        "0",
        "--store",
        "memory",
        "--history-per-room",
        "200",
    ]);
    h.block_on(older_gone(&h, &server));
}

async fn older_gone(h: &Harness, server: &Server) {
    let said = |i: usize| format!("said {i:03}");
    let mut dave = server.join("dave");
    let say = |dave: &mut Client, from: usize, to: usize| {
        for i in from..=to {
            dave.send_frame(&json!({"type": "msg", "text": said(i)}));
        }
        let last = said(to);
        dave.recv_until(to - from + 10, |f| {
            f["type"] == "msg" && f["text"] == last.as_str()
        });
    };
    say(&mut dave, 1, 150);
    // Erin is shown the newest fifty, more than her log shows at once;
    // the server keeps all 150. (On a loaded machine her log may ask for
    // one older page by itself while it is still filling, as a log too
    // short to scroll does: fifty more, still not the room's start.)
    let page = Page::join(h, server.addr(), "erin", (1000, 400)).await;
    page.wait_texts("lobby", &[said(150).as_str()]).await;
    // Two hundred more: memory keeps the newest two hundred, from
    // "said 151" on, above the oldest erin was shown.
    say(&mut dave, 151, 350);
    page.wait_texts("lobby", &[said(350).as_str()]).await;
    let top = wait_for("the top of erin's log", async || {
        let v = page
            .js(
                "document.getElementById('messages').scrollTop = 0;
                 const s = document.querySelector('.room-log[data-room=\"lobby\"] .log-start');
                 return s && !s.hidden && s.textContent;",
                vec![],
            )
            .await;
        match v.as_str() {
            Some(text) => Ok(text.to_owned()),
            None => Err(v.to_string()),
        }
    })
    .await;
    assert_eq!(top, "Older messages of #lobby are no longer kept.");
    let msgs = page.msgs("lobby").await;
    let first = msgs.first().map(|m| m.text.as_str());
    assert!(
        matches!(first, Some("said 101" | "said 051")),
        "the oldest line shown: {first:?}"
    );
    page.type_line("/history").await;
    page.wait_lines("/history's answer", "lobby", |ls| {
        ls.iter()
            .any(|l| l.text == "older messages of #lobby are no longer kept")
    })
    .await;
    page.close().await;
}

/// Whether `room`'s log offers "Load older messages", and whether it says
/// it starts at the start of the room's history.
const OLDER_JS: &str =
    "const log = document.querySelector(`.room-log[data-room=\"${arguments[0]}\"]`);
  return { older: !log.querySelector('button.load-older').hidden,
    start: !log.querySelector('.log-start').hidden };";

/// A lobby whose history before dave's only message holds only joins and
/// leaves (which history pages do not carry): the page, whose log is too
/// short to scroll, asks for an older page by itself, finds nothing
/// older, and from then on the log says it starts at the start, after a
/// reconnect too.
#[test]
fn a_page_that_found_nothing_older_does_not_offer_more_again() {
    let Some(h) = Harness::start("a_page_that_found_nothing_older") else {
        return;
    };
    let (_data, flags) = restartable(&[]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    h.block_on(nothing_older(&h, &flags));
}

async fn nothing_older(h: &Harness, flags: &[&str]) {
    let mut server = Server::start(flags);
    for nick in ["carol", "frank"] {
        drop(server.join(nick));
    }
    let mut dave = server.join("dave");
    dave.say("the only message");
    dave.recv_until(10, |f| {
        f["type"] == "msg" && f["text"] == "the only message"
    });
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    page.wait_texts("lobby", &["the only message"]).await;
    // The replay cannot tell that the joins and leaves before it hold no
    // message; a log too short to scroll asks for an older page at once,
    // which finds none: no "Load older messages" that would load nothing.
    wait_for("erin: the start of #lobby's history", async || {
        let v = page.js(OLDER_JS, vec![json!("lobby")]).await;
        if v == json!({"older": false, "start": true}) {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;

    // Back after a loss, the page still knows there is nothing older.
    server.sigterm();
    assert!(server.wait_exit(WAIT).success());
    drop(server);
    page.wait_state("reconnecting").await;
    let _server = Server::start(flags);
    page.wait_state("connected").await;
    page.wait_lines("back in #lobby", "lobby", |ls| {
        ls.iter().any(|l| l.has_class("reconnected"))
    })
    .await;
    let v = page.js(OLDER_JS, vec![json!("lobby")]).await;
    assert_eq!(
        v,
        json!({"older": false, "start": true}),
        "after the reconnect"
    );
    page.shot("nothing-older").await;
    page.close().await;
}

/// A room nobody was in before (a new server's lobby, a room just
/// begun): the page says it is at the start of its history and offers
/// no "Load older messages". (A room that held only joins and leaves
/// finds it out with one page: see the test above.)
#[test]
fn a_new_room_offers_no_older_messages() {
    let Some(h) = Harness::start("a_new_room_offers_no_older_messages") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(new_room(&h, &server));
}

async fn new_room(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1200, 800)).await;
    page.type_line("/join fresh").await;
    for room in ["lobby", "fresh"] {
        wait_for(
            &format!("#{room} at the start of its history"),
            async || {
                let v = page.js(OLDER_JS, vec![json!(room)]).await;
                if v == json!({"older": false, "start": true}) {
                    Ok(())
                } else {
                    Err(v.to_string())
                }
            },
        )
        .await;
    }
    page.close().await;
}
