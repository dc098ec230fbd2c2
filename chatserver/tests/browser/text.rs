//! Markup, bidi overrides, joiners and tabs arrive as visible text; a
//! long line wraps under its words, at a readable length.

use serde_json::{json, Value};

use crate::common::Server;
use crate::say_in;
use crate::webdriver::{size_page, wait_for, Harness, Page};

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
/// A blank filler, an annotation mark and a noncharacter: escaped (a
/// terminal and the full-screen client disagree on their width).
const FILLERS: &str = "a\u{3164}b\u{fffb}c\u{fdd0}";
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
    for text in [FAMILY, PERSIAN, ASCII_JOINER, TAB, FILLERS] {
        say_in(&mut bob, "lobby", &[], text);
    }
    page.paste_line(&own).await;
    page.paste_line(TWO_LINES).await;

    // Each text as the terminal client shows it (chatproto's
    // escape_control), but for the newline the page shows as a break.
    let shown = |raw: &str| chatproto::escape_control(raw).replace("\\n", "\n");
    let want: Vec<String> = [
        FAMILY,
        PERSIAN,
        ASCII_JOINER,
        TAB,
        FILLERS,
        own.as_str(),
        TWO_LINES,
    ]
    .into_iter()
    .map(shown)
    .collect();
    let lines = page
        .wait_lines("seven messages", "lobby", |ls| {
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
            .nth(5)
            .and_then(|l| l.from.as_deref()),
        Some("alice")
    );
    assert!(
        want[0].contains('\u{200d}') && want[1].contains('\u{200c}'),
        "{want:?}"
    );
    assert_eq!(want[2], "b\\u{200d}ob is not bob");
    assert_eq!(want[3], "name\\tvalue");
    assert_eq!(want[4], "a\\u{3164}b\\u{fffb}c\\u{fdd0}");
    assert_eq!(want[6], TWO_LINES);

    // The escapes stand out (`.ctl`), one per escaped character, in order.
    let ctl = page
        .js(
            "return Array.from(document.querySelectorAll(
               '#messages .room-log[data-room=\"lobby\"] .msg .text .ctl'), (e) => e.textContent);",
            vec![],
        )
        .await;
    assert_eq!(
        ctl,
        json!([
            "\\u{200d}",
            "\\t",
            "\\u{3164}",
            "\\u{fffb}",
            "\\u{fdd0}",
            "\\t"
        ])
    );
    page.close().await;
}

// ---------------------------------------------------------------------
// A line that names the reader is marked, as the terminal client does.
// ---------------------------------------------------------------------

#[test]
fn a_line_naming_the_reader_as_a_word_is_marked_a_mention() {
    let Some(h) = Harness::start("a_line_naming_the_reader_as_a_word") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(naming_the_reader(&h, &server));
}

/// `me` joins the lobby in a page, bob says `said` there: each line's
/// text, and whether the page marked it a mention.
async fn mentions_marked(h: &Harness, server: &Server, me: &str, said: &[&str]) -> Value {
    let page = Page::join(h, server.addr(), me, (1200, 800)).await;
    let mut bob = server.join("bob");
    for text in said {
        say_in(&mut bob, "lobby", &[], text);
    }
    page.wait_texts("lobby", said).await;
    let marked = page
        .js(
            "return Array.from(document.querySelectorAll('.room-log[data-room=lobby] li.msg'),
               (li) => [li.querySelector('.text').textContent, li.classList.contains('mention')]);",
            vec![],
        )
        .await;
    page.close().await;
    marked
}

async fn naming_the_reader(h: &Harness, server: &Server) {
    let said = [
        "alice: are you there?",
        "thanks Alice.",
        "@alice look",
        "hi malice",
        "alice2 is someone else",
        "alice_b and alice-b too",
    ];
    let marked = mentions_marked(h, server, "alice", &said).await;
    assert_eq!(
        marked,
        json!([
            ["alice: are you there?", true],
            ["thanks Alice.", true],
            ["@alice look", true],
            ["hi malice", false],
            ["alice2 is someone else", false],
            ["alice_b and alice-b too", false],
        ])
    );
}

#[test]
fn a_line_naming_the_reader_by_a_folded_spelling_is_a_mention() {
    let Some(h) = Harness::start("naming_the_reader_by_a_folded_spelling") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let said = [
            "STRASSE: are you there?",
            "thanks strasse.",
            "@Strasse look",
            "strassen is someone else",
        ];
        let marked = mentions_marked(&h, &server, "Straße", &said).await;
        assert_eq!(
            marked,
            json!([
                ["STRASSE: are you there?", true],
                ["thanks strasse.", true],
                ["@Strasse look", true],
                ["strassen is someone else", false],
            ])
        );
    });
}

// ---------------------------------------------------------------------
// One person has one colour, however their name is spelled.
// ---------------------------------------------------------------------

#[test]
fn one_person_has_one_colour_in_every_spelling() {
    let Some(h) = Harness::start("one_colour_in_every_spelling") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        // The class a nickname button gets, as the page draws it.
        let classes = page
            .js(
                "return import('/text.js').then((t) => arguments[0].map((pair) =>
                   pair.map((n) => t.nickButton(n).className)));",
                vec![json!([
                    ["Straße", "STRASSE"],
                    ["ΣΟΦΟΣ", "σοφος"],
                    ["Jose\u{301}", "JOSÉ"],
                    ["Alice", "alice"],
                ])],
            )
            .await;
        let mut split = Vec::new();
        for pair in classes.as_array().expect("pairs") {
            if pair[0] != pair[1] {
                split.push(pair.clone());
            }
        }
        assert!(split.is_empty(), "two colours for one person: {split:?}");
        page.close().await;
    });
}

// ---------------------------------------------------------------------
// A long or multi-line message wraps under its words, not under its time.
// ---------------------------------------------------------------------

#[test]
fn a_long_message_wraps_under_its_words_not_its_time() {
    let Some(h) = Harness::start("a_long_message_wraps_under_its_words") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(wraps_under_its_words(&h, &server));
}

async fn wraps_under_its_words(h: &Harness, server: &Server) {
    // Narrow: the long line takes several rows.
    let page = Page::join(h, server.addr(), "alice", (420, 700)).await;
    let mut bob = server.join("bob");
    let long = "a long line that goes on and on so that it must wrap onto more rows \
                of the log than one, however the page lays it out";
    let lines = "first of three\nsecond\nthird";
    say_in(&mut bob, "lobby", &[], long);
    say_in(&mut bob, "lobby", &[], lines);
    page.wait_texts("lobby", &[long, lines]).await;
    // Per message: its time's right edge, and the left edge and count of
    // every row its text takes.
    let rows = page
        .js(
            "return Array.from(document.querySelectorAll('.room-log[data-room=lobby] li.msg'), (li) => {
               const time = li.querySelector('time').getBoundingClientRect();
               const rows = Array.from(li.querySelector('.text').getClientRects());
               return [time.right, rows.map((r) => r.left)];
             });",
            vec![],
        )
        .await;
    let rows = rows.as_array().expect("a list");
    assert_eq!(rows.len(), 2, "{rows:?}");
    for msg in rows {
        let time_right = msg[0].as_f64().expect("a right edge");
        let lefts: Vec<f64> = msg[1]
            .as_array()
            .expect("rows")
            .iter()
            .map(|l| l.as_f64().expect("a left edge"))
            .collect();
        assert!(lefts.len() >= 2, "the message took one row: {rows:?}");
        for left in &lefts[1..] {
            assert!(
                *left > time_right,
                "a row of the text starts under the time: {rows:?}"
            );
        }
    }
}

/// A name too long for a phone's width (32 characters, the most a join
/// takes) wraps from its left edge, and its line's time stays beside the
/// name's first row: as a button it was centred, and the time sat beside
/// its last row.
#[test]
fn a_long_name_wraps_from_its_left_and_its_time_stays_beside_its_first_row() {
    let Some(h) = Harness::start("a_long_name_wraps_from_its_left") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(long_name(&h, &server));
}

async fn long_name(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (360, 700)).await;
    let name = "Averyveryverylongnickname_123456";
    let mut long = server.join(name);
    say_in(&mut long, "lobby", &[], "hello from a long name");
    page.wait_texts("lobby", &["hello from a long name"]).await;
    let got = page
        .js(
            "const li = [...document.querySelectorAll('.room-log[data-room=lobby] li.msg')].pop();
             const nick = li.querySelector('.nick');
             const rows = [...nick.getClientRects()];
             const range = document.createRange();
             range.selectNodeContents(nick);
             const lines = [...range.getClientRects()];
             const time = li.querySelector('time').getBoundingClientRect();
             return { align: getComputedStyle(nick).textAlign, rows: lines.length,
                      first: lines[0].top, firstBottom: lines[0].bottom, left: rows[0].left,
                      lastLeft: lines[lines.length - 1].left,
                      timeTop: time.top, timeBottom: time.bottom };",
            vec![],
        )
        .await;
    let f = |k: &str| got[k].as_f64().unwrap_or(f64::NAN);
    assert!(f("rows") >= 2.0, "the name fits one row here: {got}");
    assert!(
        (f("lastLeft") - f("left")).abs() < 1.0,
        "the name's last row is not at its left edge: {got}"
    );
    let time_middle = (f("timeTop") + f("timeBottom")) / 2.0;
    assert!(
        f("first") < time_middle && time_middle < f("firstBottom"),
        "the time is not beside the name's first row: {got}"
    );
    page.shot("long-name-narrow").await;
}

// ---------------------------------------------------------------------
// A line of the log is kept to a readable length on a wide screen.
// ---------------------------------------------------------------------

/// The last message of #lobby: the window's width, its body's left and
/// right edges and width, the width of 100 zeros (`100ch`) in its font,
/// its text's widest row, and its line's right edge (inside its padding).
const MEASURE_JS: &str = "
const li = [...document.querySelectorAll('.room-log[data-room=lobby] li.msg')].pop();
const body = li.querySelector('.body');
const probe = document.createElement('span');
probe.style.whiteSpace = 'pre';
probe.textContent = '0'.repeat(100);
body.append(probe);
const ch100 = probe.getBoundingClientRect().width;
probe.remove();
const b = body.getBoundingClientRect();
const rows = [...li.querySelector('.text').getClientRects()];
const pad = parseFloat(getComputedStyle(li).paddingRight);
// On a phone the lists are drawers: closed, out of the way (once they
// have slid there).
const away = innerWidth > 760 || [...document.querySelectorAll('.drawer')].every((d) => {
  const r = d.getBoundingClientRect();
  return r.right <= 0 || r.left >= innerWidth;
});
return { width: innerWidth, away, left: b.left, right: b.right, body: b.width, ch100,
  widest: Math.max(...rows.map((r) => r.width)),
  end: li.getBoundingClientRect().right - pad };";

/// At a very wide window a message's rows stop at about 100 characters
/// (they ran some 1,800 pixels); on a phone and a laptop a line still
/// takes the whole width of its column.
#[test]
fn a_long_line_is_kept_to_a_readable_length_on_a_wide_screen() {
    let Some(h) = Harness::start("a_long_line_is_kept_to_a_readable_length") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(readable_length(&h, &server));
}

async fn readable_length(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (2400, 900)).await;
    let mut bob = server.join("bob");
    let long = "a long line that goes on and on, as a paragraph pasted into the \
                chat does, long enough to fill more than one row of the log at \
                any width this page is shown at, from a phone held upright to a \
                screen of 2400 pixels, so that where its rows end can be seen \
                and measured against the length a reader takes in at a glance";
    say_in(&mut bob, "lobby", &[], long);
    page.wait_texts("lobby", &[long]).await;
    for width in [2400, 1000, 400] {
        size_page(&page.c, width, 900).await;
        let m = wait_for(&format!("alice: the page {width} wide"), async || {
            let m = page.js(MEASURE_JS, vec![]).await;
            if m["width"] == json!(width) && m["away"] == json!(true) {
                Ok(m)
            } else {
                Err(m.to_string())
            }
        })
        .await;
        page.shot(&format!("readable-{width}")).await;
        let f = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        assert!(f("widest") <= f("body") + 1.0, "{width}: {m}");
        if width == 2400 {
            assert!(f("body") <= f("ch100") + 1.0, "{width}: over 100ch: {m}");
            assert!(f("widest") > 0.8 * f("ch100"), "{width}: {m}");
        } else {
            assert!(
                f("right") >= f("end") - 1.0,
                "{width}: short of its row: {m}"
            );
        }
    }
    page.close().await;
}
