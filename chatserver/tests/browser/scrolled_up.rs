//! A room read scrolled up under a flood: its log stays within
//! `MAX_KEPT` lines, what is in view stays where it is, and once the
//! newest lines had to go the room is cut until the reader goes back to
//! the newest messages.

use serde_json::{json, Value};

use crate::common::{self, Client, Server};
use crate::webdriver::{wait_for, Harness, Line, Page};

/// What messages.js keeps at most of a room's log, followed or not (its
/// `MAX_KEPT`, four times `MAX_SHOWN`).
const MAX_KEPT: u64 = 8000;

/// What `room`'s log shows: how many lines, the text of those in view
/// (none while another room is shown) and how far the first of them is
/// below the log's top edge, the oldest and newest seqs, whether its
/// last line is the cut line (and how many there are), the jump button,
/// and the room's unread mark in the list.
const VIEW_JS: &str = r#"
const room = arguments[0];
const log = document.querySelector(`#messages > .room-log[data-room="${CSS.escape(room)}"]`);
const lines = Array.from(log.querySelector('.events').children);
const box = document.getElementById('messages').getBoundingClientRect();
const seen = log.hidden ? [] : lines.filter((li) => {
  const b = li.getBoundingClientRect();
  return b.bottom > box.top && b.top < box.bottom;
});
const seqs = lines.filter((li) => li.dataset.seq !== undefined).map((li) => Number(li.dataset.seq));
const jump = document.getElementById('jump');
const unread = document.querySelector(`#rooms > li[data-room="${CSS.escape(room)}"] .unread`);
return {
  count: lines.length,
  seen: seen.map((li) => (li.querySelector('.text') ?? li).textContent),
  top: seen.length ? seen[0].getBoundingClientRect().top - box.top : null,
  oldest: seqs.length ? seqs[0] : null,
  newest: seqs.length ? seqs[seqs.length - 1] : null,
  cut: lines.length > 0 && lines[lines.length - 1].classList.contains('cut'),
  cuts: lines.filter((li) => li.classList.contains('cut')).length,
  jump: !jump.hidden,
  label: jump.textContent,
  unread: unread && !unread.hidden ? unread.textContent : '',
};
"#;

async fn view(page: &Page, room: &str) -> Value {
    page.js(VIEW_JS, vec![json!(room)]).await
}

fn flood_text(i: usize) -> String {
    format!("flood {i:05}")
}

/// Dave says `from..=to` flood lines in `room`, reading his echoes as
/// he goes (a raw client that reads nothing is closed as slow); returns
/// the seq of the last.
fn flood(dave: &mut Client, room: &str, from: usize, to: usize) -> u64 {
    let mut seq = 0;
    for start in (from..=to).step_by(500) {
        let end = (start + 499).min(to);
        for i in start..=end {
            dave.send_frame(&json!({"type": "msg", "room": room, "text": flood_text(i)}));
        }
        let last = flood_text(end);
        let (_, echo) = dave.recv_until(600, |f| f["type"] == "msg" && f["text"] == last.as_str());
        seq = echo["seq"].as_u64().expect("a seq");
    }
    seq
}

/// A server, dave in #lobby and #side, and erin's page in both, showing
/// #lobby, where dave said `first` lines, erin following them.
async fn erin_in_a_busy_lobby(h: &Harness, server: &Server, first: usize) -> (Page, Client) {
    erin_in_a_busy_lobby_sized(h, server, first, (1200, 800)).await
}

/// [`erin_in_a_busy_lobby`] in a window of `size`.
async fn erin_in_a_busy_lobby_sized(
    h: &Harness,
    server: &Server,
    first: usize,
    size: (u32, u32),
) -> (Page, Client) {
    let page = Page::join(h, server.addr(), "erin", size).await;
    let mut dave = server.join("dave");
    dave.enter("side");
    page.type_line("/join side").await;
    page.wait_nicks("side", &["erin"]).await;
    page.type_line("/join lobby").await;
    flood(&mut dave, "lobby", 1, first);
    let last = flood_text(first);
    page.wait_texts("lobby", &[last.as_str()]).await;
    (page, dave)
}

/// Erin scrolls #lobby up to the middle of its log; returns what is in
/// view then.
async fn scroll_to_the_middle(page: &Page) -> Value {
    wait_for("erin: #lobby scrolled up to its middle", async || {
        page.js(
            "const m = document.getElementById('messages');
             m.scrollTop = (m.scrollHeight - m.clientHeight) / 2;",
            vec![],
        )
        .await;
        let v = view(page, "lobby").await;
        if v["jump"] == true && v["seen"].as_array().is_some_and(|s| s.len() > 10) {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await
}

/// Erin's page (in a window of `size`) reads #lobby from the top of its
/// log while dave floods it past MAX_KEPT lines: nothing can go above
/// her, so the newest go and #lobby is cut. Returns the number of the
/// last flood line dave said.
async fn erin_in_a_cut_lobby(
    h: &Harness,
    server: &Server,
    size: (u32, u32),
) -> (Page, Client, usize) {
    let (page, mut dave) = erin_in_a_busy_lobby_sized(h, server, 1500, size).await;
    wait_for("erin: #lobby scrolled up to its top", async || {
        page.js("document.getElementById('messages').scrollTop = 0;", vec![])
            .await;
        let v = view(&page, "lobby").await;
        let top = v["seen"]
            .as_array()
            .is_some_and(|s| s.iter().any(|t| t == "flood 00001"));
        if v["jump"] == true && top {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
    for batch in 0..20 {
        let last = 2000 + batch * 500;
        flood(&mut dave, "lobby", last - 499, last);
        if view(&page, "lobby").await["cut"] == true {
            return (page, dave, last);
        }
    }
    panic!("#lobby not cut: {}", view(&page, "lobby").await);
}

/// Wait until #side, a room erin is not reading, counts `want` unread:
/// what dave said there after a flood, so the page has had the flood.
async fn wait_side_unread(page: &Page, want: &str) {
    wait_for(&format!("erin: #side unread {want}"), async || {
        let v = view(page, "side").await;
        if v["unread"] == want {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

/// The lines in view are those that were, where they were (within a
/// pixel or two of rounding, after many lines went above them).
fn same_place(was: &Value, now: &Value, when: &str) {
    assert_eq!(
        now["seen"], was["seen"],
        "{when}: other lines in view; was {was}, now {now}"
    );
    let moved = (now["top"].as_f64().expect("top") - was["top"].as_f64().expect("top")).abs();
    assert!(
        moved < 3.0,
        "{when}: the lines in view moved {moved}px; was {was}, now {now}"
    );
}

/// Erin reads #lobby scrolled up while dave floods it with 10,000
/// messages: the log never passes MAX_KEPT lines, the lines in view stay
/// put, the oldest go first and then (the reader too near the top for
/// that to be enough) the newest, which cuts the room: its last line says
/// so, the jump button says new messages came, and going to the newest
/// shows the room's newest messages, each once, with no hole below the
/// older ones paged back. Before, the log kept every line.
#[test]
fn a_room_read_scrolled_up_under_a_flood_keeps_its_bound_and_its_view() {
    let Some(h) = Harness::start("a_room_read_scrolled_up_under_a_flood") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(flood_while_scrolled_up(&h, &server));
}

async fn flood_while_scrolled_up(h: &Harness, server: &Server) {
    let (page, mut dave) = erin_in_a_busy_lobby(h, server, 1500).await;
    let before = scroll_to_the_middle(&page).await;
    let oldest = before["oldest"].as_u64().expect("a seq");

    let mut most = 0;
    let mut newest = 0;
    for batch in 0..10 {
        newest = flood(
            &mut dave,
            "lobby",
            1501 + batch * 1000,
            1500 + (batch + 1) * 1000,
        );
        let v = view(&page, "lobby").await;
        most = most.max(v["count"].as_u64().expect("a count"));
        same_place(&before, &v, &format!("after {} floods", batch + 1));
    }
    dave.send_frame(&json!({"type": "msg", "room": "side", "text": "done"}));
    wait_side_unread(&page, "1").await;
    let v = view(&page, "lobby").await;
    most = most.max(v["count"].as_u64().expect("a count"));
    assert!(most <= MAX_KEPT, "the log held {most} lines: {v}");
    same_place(&before, &v, "after the flood");
    assert!(
        v["oldest"].as_u64() > Some(oldest),
        "no oldest line went: {v}"
    );
    assert!(
        v["newest"].as_u64() < Some(newest),
        "no newest line went: {v}"
    );
    assert_eq!((&v["cut"], &v["cuts"]), (&json!(true), &json!(1)), "{v}");
    assert_eq!(
        (&v["jump"], &v["label"]),
        (&json!(true), &json!("↓ New messages")),
        "{v}"
    );
    page.js(
        "document.querySelector('#messages > .room-log[data-room=\"lobby\"] li.cut').scrollIntoView();",
        vec![],
    )
    .await;
    page.shot("scrolled-up-cut").await;

    // To the newest: the newest page of #lobby, each message once, the
    // last one dave said last.
    page.click("jump").await;
    let last = flood_text(11_500);
    let lines = page
        .wait_lines("the newest messages of #lobby", "lobby", |ls| {
            ls.last().is_some_and(|l| l.text == last)
        })
        .await;
    assert!(!lines.iter().any(|l| l.has_class("cut")), "{lines:?}");
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l.seq).collect();
    assert!(seqs.len() >= 20, "{} lines", seqs.len());
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a hole or a line twice: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&newest));
    page.shot("scrolled-up-newest").await;

    // Older pages come right above, as far back as the reader scrolls.
    let shown = seqs.len();
    let lines = wait_for("erin: older pages above the newest", async || {
        page.js("document.getElementById('messages').scrollTop = 0;", vec![])
            .await;
        let lines = page.lines("lobby").await;
        if lines.iter().filter(|l| l.seq.is_some()).count() > shown + 100 {
            Ok(lines)
        } else {
            Err(format!("{} lines", lines.len()))
        }
    })
    .await;
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a hole or a line twice: {seqs:?}"
    );
    page.close().await;
}

/// Erin leaves #lobby scrolled up for #side while dave floods #lobby: it
/// stays within MAX_KEPT lines, hidden; back in #lobby the lines she
/// left in view are where she left them; a cut room keeps counting its
/// messages as unread, a mention of her flagged, and shows nothing of
/// them; the cut line's button shows its newest messages.
#[test]
fn a_room_left_scrolled_up_for_another_keeps_its_bound_and_its_place() {
    let Some(h) = Harness::start("a_room_left_scrolled_up_for_another") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(flood_while_away(&h, &server));
}

async fn flood_while_away(h: &Harness, server: &Server) {
    let (page, mut dave) = erin_in_a_busy_lobby(h, server, 1500).await;
    let before = scroll_to_the_middle(&page).await;
    let oldest = before["oldest"].as_u64().expect("a seq");

    // Away, only the oldest lines go: she left half the log above her.
    // (What dave says in #side, shown there, comes after the flood.)
    page.type_line("/join side").await;
    flood(&mut dave, "lobby", 1501, 8200);
    dave.send_frame(&json!({"type": "msg", "room": "side", "text": "done 1"}));
    page.wait_texts("side", &["done 1"]).await;
    let v = view(&page, "lobby").await;
    assert!(v["count"].as_u64() <= Some(MAX_KEPT), "{v}");
    assert!(
        v["oldest"].as_u64() > Some(oldest),
        "no oldest line went: {v}"
    );
    assert_eq!(v["cuts"], json!(0), "{v}");
    page.type_line("/join lobby").await;
    same_place(&before, &view(&page, "lobby").await, "back in #lobby");

    // Away again, the newest go too: #lobby is cut; what comes is
    // counted as unread (read up to now: 3,800 and 1), a mention of erin
    // flagged.
    page.type_line("/join side").await;
    let newest = flood(&mut dave, "lobby", 8201, 12_000);
    dave.send_frame(&json!({"type": "msg", "room": "lobby", "text": "erin: still reading?"}));
    dave.send_frame(&json!({"type": "msg", "room": "side", "text": "done 2"}));
    page.wait_texts("side", &["done 2"]).await;
    let v = view(&page, "lobby").await;
    assert!(v["count"].as_u64() <= Some(MAX_KEPT), "{v}");
    assert!(
        v["newest"].as_u64() < Some(newest),
        "no newest line went: {v}"
    );
    assert_eq!((&v["cut"], &v["cuts"]), (&json!(true), &json!(1)), "{v}");
    assert_eq!(
        v["unread"],
        json!("3801!"),
        "not every message counted, or the mention not flagged: {v}"
    );
    page.type_line("/join lobby").await;
    let back = view(&page, "lobby").await;
    same_place(&before, &back, "back in the cut #lobby");
    assert_eq!(
        back["count"], v["count"],
        "lines added to a cut room: {back}"
    );

    // The cut line's button: the newest messages, the mention last.
    page.click_css("#messages > .room-log[data-room=\"lobby\"] li.cut button.load-newest")
        .await;
    let lines = page
        .wait_lines("the newest messages of #lobby", "lobby", |ls| {
            ls.last().is_some_and(|l| l.text == "erin: still reading?")
        })
        .await;
    assert!(!lines.iter().any(|l| l.has_class("cut")), "{lines:?}");
    let seqs: Vec<u64> = lines.iter().filter_map(|l| l.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a hole or a line twice: {seqs:?}"
    );
    assert_eq!(seqs.last(), Some(&(newest + 1)));
    let v = view(&page, "lobby").await;
    assert_eq!(v["jump"], json!(false), "not at the newest: {v}");
    page.close().await;
}

/// The page's log (`messages.js`, driven here directly) of a room read
/// scrolled up in a short window, past MAX_KEPT: the lines in view stay,
/// the oldest go (the handlers told, to page them back), then the newest,
/// which cuts the room; an event after that is counted once (`message`
/// says so) and not shown; a long page of older ones read back into is
/// kept, the newest going instead; going to the newest empties the log and asks
/// for a page, and that page and a live message that came before it
/// show each seq once, with no hole.
#[test]
fn a_cut_log_counts_what_comes_and_shows_the_newest_once() {
    let Some(h) = Harness::start("a_cut_log_counts_what_comes") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "erin", (1000, 700)).await;
        let v = page.js(CUT_JS, vec![]).await;
        let kept = json!(MAX_KEPT);
        assert_eq!(v["maxKept"], kept, "{v}");
        assert!(v["most"].as_u64() <= Some(MAX_KEPT), "{v}");
        assert_eq!(v["seenAfter"], v["seenBefore"], "{v}");
        let moved = v["moved"].as_f64().expect("px").abs();
        assert!(moved < 3.0, "the lines in view moved {moved}px: {v}");
        assert!(v["trimmed"].as_u64() > Some(0), "{v}");
        assert_eq!(v["cut"], json!(true), "{v}");
        assert_eq!(
            v["counted"],
            json!([true, false]),
            "counted, then a copy: {v}"
        );
        assert_eq!(v["grew"], json!(false), "a line added to a cut log: {v}");
        assert_eq!(
            v["paged"],
            json!({"oldest": true, "most": true, "cut": true, "seen": true}),
            "an older page in a cut log: {v}"
        );
        assert_eq!(v["asked"], json!(["a"]), "{v}");
        assert_eq!(v["emptied"], json!(0), "{v}");
        let seqs: Vec<u64> = serde_json::from_value(v["after"].clone()).expect("seqs");
        let newest = v["newest"].as_u64().expect("seq");
        let want: Vec<u64> = (newest - 49..=newest + 1).collect();
        assert_eq!(seqs, want, "{v}");
        page.close().await;
    });
}

const CUT_JS: &str = "return (async () => {
  const { MessageView, MAX_KEPT } = await import('/messages.js');
  const scroller = document.createElement('div');
  scroller.style.cssText = 'position: fixed; top: 0; left: 0; width: 600px; height: 300px; overflow-y: auto; overflow-anchor: none; background: white; z-index: 9';
  const jump = document.createElement('button');
  document.body.append(scroller, jump);
  const out = { maxKept: MAX_KEPT, most: 0, asked: [] };
  let trimmed = 0;
  const v = new MessageView(scroller, jump, {
    olderWanted: (room) => out.asked.push(room),
    trimmed: () => { trimmed += 1; },
    notesTrimmed: () => {},
  });
  const r = v.addRoom('a');
  v.show('a');
  const msg = (seq) => v.message({ room: 'a', seq, ts: 1, from: 'bob', to: [], text: `line ${seq}`, replay: false, mine: false, live: true }, 'erin');
  let seq = 1;
  // Followed first: trimmed to MAX_SHOWN.
  for (; seq <= 3000; seq++) msg(seq);
  // Half way up, as the reader scrolls (the scroll event said at once).
  v.toBottom();
  scroller.scrollTop = (scroller.scrollHeight - scroller.clientHeight) / 2;
  scroller.dispatchEvent(new Event('scroll'));
  const box = scroller.getBoundingClientRect();
  const inView = () => [...r.events.children].filter((li) => {
    const b = li.getBoundingClientRect();
    return b.bottom > box.top && b.top < box.bottom;
  });
  const seen = inView();
  out.seenBefore = seen.map((li) => li.dataset.seq);
  const top = seen[0].getBoundingClientRect().top;
  while (!r.cut && seq < 20000) {
    msg(seq++);
    out.most = Math.max(out.most, r.events.childElementCount);
  }
  out.trimmed = trimmed;
  out.seenAfter = inView().map((li) => li.dataset.seq);
  out.moved = seen[0].getBoundingClientRect().top - top;
  out.cut = r.events.lastElementChild.classList.contains('cut');
  const count = r.events.childElementCount;
  out.counted = [msg(seq), msg(seq)];
  out.grew = r.events.childElementCount !== count;
  out.newest = seq;
  // A long page of older lines comes above, read back into: kept, the
  // newest go instead.
  const oldest = v.oldestSeq('a');
  v.above('a', () => {
    for (let s = oldest - 500; s < oldest; s++) msg(s);
  });
  out.paged = {
    oldest: v.oldestSeq('a') === oldest - 500,
    most: r.events.childElementCount <= MAX_KEPT,
    cut: r.events.querySelectorAll('li.cut').length === 1 && r.events.lastElementChild.classList.contains('cut'),
    seen: inView().map((li) => li.dataset.seq).join() === out.seenBefore.join(),
  };
  // To the newest: emptied, a page asked for; a live line comes before it.
  v.toNewest('a');
  out.emptied = r.events.childElementCount;
  msg(seq + 1);
  v.above('a', () => {
    for (let s = seq - 49; s <= seq + 1; s++) msg(s);
  });
  out.after = [...r.events.children].map((li) => Number(li.dataset.seq));
  scroller.remove();
  jump.remove();
  return out;
})();";

/// A cut room read at its bottom, in a window where the cut line's text
/// reaches the jump button (↓ New messages, shown there as the room is
/// not at its newest): the button covers no part of the line. Before, it
/// sat over the end of the line's text.
#[test]
fn the_jump_button_leaves_a_cut_rooms_last_line_readable() {
    let Some(h) = Harness::start("the_jump_button_leaves_a_cut_rooms_last_line") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(async {
        let (page, _dave, _) = erin_in_a_cut_lobby(&h, &server, (1000, 700)).await;
        let v = wait_for("erin: #lobby at the bottom of its cut log", async || {
            let v = page.js(COVERED_JS, vec![]).await;
            if v["atEnd"] == true && v["jump"] == true {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
        .await;
        page.shot("scrolled-up-cut-bottom").await;
        assert_eq!(v["covered"], json!([]), "{v}");
    });
}

/// Scrolls #messages to its end and says whether it is there, whether the
/// jump button shows, and which parts of the log's last line (its text,
/// its button) the jump button covers.
const COVERED_JS: &str = "const m = document.getElementById('messages');
m.scrollTop = m.scrollHeight;
const jump = document.getElementById('jump');
const last = m.querySelector('.room-log[data-room=\"lobby\"] .events').lastElementChild;
const j = jump.getBoundingClientRect();
const covered = [];
for (const [what, el] of [['text', last.querySelector('.text')], ['button', last.querySelector('button')]]) {
  if (!el) continue;
  for (const b of el.getClientRects()) {
    if (b.left < j.right && j.left < b.right && b.top < j.bottom && j.top < b.bottom) covered.push(what);
  }
}
return {
  atEnd: m.scrollHeight - m.scrollTop - m.clientHeight < 2,
  jump: !jump.hidden,
  last: last.className,
  covered,
};";

/// A raw client resumes erin's session with the token the page keeps
/// for a reload: the client, and its welcome.
async fn erin_resumed_by_a_raw_client(page: &Page, server: &Server) -> (Client, Value) {
    let token = page
        .js(
            "return JSON.parse(sessionStorage.getItem('chat.resume')).token;",
            vec![],
        )
        .await;
    let token = token.as_str().expect("the page's session token").to_owned();
    let mut other = server.connect();
    other.send_frame(&json!({"type": "join", "nick": "erin", "rooms": [], "resume": token}));
    let welcome = other.expect_kind("welcome");
    (other, welcome)
}

/// A raw client resumes erin's session with the page's token (the page
/// is told the session went on elsewhere), dave sees her go and says
/// `texts` in #lobby; then the page's Continue here takes the session
/// back, and #lobby's log says it reconnected. Returns that log.
async fn away_and_back(
    page: &Page,
    server: &Server,
    dave: &mut Client,
    texts: &[&str],
) -> Vec<Line> {
    let (_other, welcome) = erin_resumed_by_a_raw_client(page, server).await;
    assert_eq!(welcome["resumed"], json!(true), "not resumed: {welcome}");
    dave.recv_until(100, |f| common::is_presence(f, "erin", "offline"));
    page.wait_state("elsewhere").await;
    for text in texts {
        dave.send_frame(&json!({"type": "msg", "room": "lobby", "text": text}));
        dave.recv_until(100, |f| f["type"] == "msg" && f["text"] == *text);
    }
    page.click("continue-here").await;
    page.wait_state("connected").await;
    page.wait_lines("erin: back in #lobby", "lobby", |ls| {
        ls.iter().any(|l| l.has_class("reconnected"))
    })
    .await
}

/// Erin's session resumed elsewhere while #lobby is cut, dave says two
/// lines there, and she takes it back: #lobby's log says what she missed
/// is not shown, and ↓ shows it. Before, it said "reconnected; 2 missed
/// messages above", which were nowhere.
#[test]
fn a_cut_room_back_from_a_reconnect_says_its_missed_messages_are_below() {
    let Some(h) = Harness::start("a_cut_room_back_from_a_reconnect") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(async {
        let (page, mut dave, last) = erin_in_a_cut_lobby(&h, &server, (1200, 800)).await;
        let lines = away_and_back(&page, &server, &mut dave, &["missed 1", "missed 2"]).await;
        let said: Vec<&str> = lines
            .iter()
            .filter(|l| l.has_class("reconnected"))
            .map(|l| l.text.as_str())
            .collect();
        let end = &lines[lines.len().saturating_sub(4)..];
        assert_eq!(
            said,
            ["reconnected; 2 missed messages, not shown while you read this far back (↓ shows them)"],
            "{end:?}"
        );
        assert!(!lines.iter().any(|l| l.text.starts_with("missed")), "{end:?}");
        page.click("jump").await;
        let lines = page
            .wait_lines("erin: the newest messages of #lobby", "lobby", |ls| {
                ls.last().is_some_and(|l| l.text == "missed 2")
            })
            .await;
        newest_once(&lines, last, &["missed 1", "missed 2"]);
        page.close().await;
    });
}

/// The messages of `lines` are flood lines up to `last`, each once and
/// in order, then `then`.
fn newest_once(lines: &[Line], last: usize, then: &[&str]) {
    let texts: Vec<&str> = lines
        .iter()
        .filter(|l| l.is_msg())
        .map(|l| l.text.as_str())
        .collect();
    let n = texts.len();
    assert!(n > then.len() + 20, "{texts:?}");
    let want: Vec<String> = (last + then.len() + 1 - n..=last)
        .map(flood_text)
        .chain(then.iter().map(|t| (*t).to_owned()))
        .collect();
    assert_eq!(texts, want, "a hole or a line twice");
}

/// As above, the server replaying only 2 of the 3 lines dave said: the
/// line that says #lobby's history has a gap offers what shows the
/// missed messages in a cut room, its newest ones, each once. Before, it
/// offered "Load missed messages", whose pages a cut room does not show,
/// and then said "the missed messages are now shown".
#[test]
fn a_gap_in_a_cut_room_is_filled_by_its_newest_messages() {
    let Some(h) = Harness::start("a_gap_in_a_cut_room") else {
        return;
    };
    let server = Server::start(&["--rate", "0", "--replay-limit", "2"]);
    h.block_on(async {
        let (page, mut dave, last) = erin_in_a_cut_lobby(&h, &server, (1200, 800)).await;
        let missed = ["missed 1", "missed 2", "missed 3"];
        let lines = away_and_back(&page, &server, &mut dave, &missed).await;
        let end = &lines[lines.len().saturating_sub(4)..];
        assert!(
            end.iter()
                .any(|l| l.text == "reconnected; history has a gap"),
            "{end:?}"
        );
        page.click_css("#messages > .room-log[data-room=\"lobby\"] li.gap button")
            .await;
        let lines = page
            .wait_lines("erin: the missed messages of #lobby", "lobby", |ls| {
                ls.last().is_some_and(|l| l.text == "missed 3")
                    || ls.iter().any(|l| l.text.starts_with("history had a gap"))
            })
            .await;
        assert!(!lines.iter().any(|l| l.has_class("cut")), "still cut");
        newest_once(&lines, last, &missed);
        page.close().await;
    });
}

/// Erin leaves the cut #lobby for #side, dave says a line there, and
/// she comes back: the jump button says new messages came (the room's
/// unread count went as she came back, and the log shows none of them).
/// Before, it said only "↓ Newest".
#[test]
fn a_cut_room_shown_again_says_new_messages_came() {
    let Some(h) = Harness::start("a_cut_room_shown_again_says_new_messages") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(async {
        let (page, mut dave, _) = erin_in_a_cut_lobby(&h, &server, (1200, 800)).await;
        page.type_line("/join side").await;
        dave.send_frame(&json!({"type": "msg", "room": "lobby", "text": "while away"}));
        dave.send_frame(&json!({"type": "msg", "room": "side", "text": "done"}));
        page.wait_texts("side", &["done"]).await;
        assert_eq!(view(&page, "lobby").await["unread"], json!("1"));
        page.type_line("/join lobby").await;
        let v = view(&page, "lobby").await;
        assert_eq!(
            (&v["jump"], &v["label"], &v["unread"]),
            (&json!(true), &json!("↓ New messages"), &json!("")),
            "{v}"
        );
        page.close().await;
    });
}

/// Erin's session goes on elsewhere while #lobby is cut, and she asks
/// for its newest messages (↓) while the page is not connected: the log
/// keeps what it shows, its cut line says the newest show once
/// reconnected; when she takes the session back, they do, each once,
/// what dave said meanwhile last. Before, the log was emptied at once
/// and nothing asked: an empty room until the reconnect refilled it.
#[test]
fn the_newest_asked_for_while_disconnected_come_once_reconnected() {
    let Some(h) = Harness::start("the_newest_asked_for_while_disconnected") else {
        return;
    };
    let server = Server::start(&["--rate", "0"]);
    h.block_on(async {
        let (page, mut dave, last) = erin_in_a_cut_lobby(&h, &server, (1200, 800)).await;
        let (_other, _) = erin_resumed_by_a_raw_client(&page, &server).await;
        page.wait_state("elsewhere").await;
        let was = view(&page, "lobby").await;

        page.click("jump").await;
        let v = view(&page, "lobby").await;
        assert_eq!(
            (&v["count"], &v["oldest"], &v["cuts"]),
            (&was["count"], &was["oldest"], &json!(1)),
            "the log changed: {v}"
        );
        let said = page
            .js(
                "const li = document.querySelector('#messages > .room-log[data-room=\"lobby\"] li.cut');
                 return [li.querySelector('.text').textContent, li.querySelector('button').textContent];",
                vec![],
            )
            .await;
        assert_eq!(
            said,
            json!([
                "newer messages of #lobby are not kept while you read this far back; the newest show once reconnected",
                "Waiting for the connection…"
            ]),
        );
        page.shot("cut-newest-while-disconnected").await;

        dave.send_frame(&json!({"type": "msg", "room": "lobby", "text": "meanwhile"}));
        dave.recv_until(100, |f| f["type"] == "msg" && f["text"] == "meanwhile");
        page.click("continue-here").await;
        page.wait_state("connected").await;
        let lines = page
            .wait_lines("erin: the newest messages of #lobby", "lobby", |ls| {
                ls.last().is_some_and(|l| l.text == "meanwhile")
            })
            .await;
        assert!(!lines.iter().any(|l| l.has_class("cut")), "still cut");
        newest_once(&lines, last, &["meanwhile"]);
        page.shot("cut-newest-reconnected").await;
        page.close().await;
    });
}
