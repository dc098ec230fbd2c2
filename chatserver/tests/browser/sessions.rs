//! A page's session: refused for a nickname taken, kept over a reload,
//! taken over elsewhere (and what a crowded room says of it when back),
//! and in a copied tab.

use std::time::Duration;

use fantoccini::key::Key;
use serde_json::{json, Value};

use crate::common::{self, Client, Next, Server};
use crate::webdriver::{size_page, wait_for, Harness, Line, Page};
use crate::{say_in, shown};

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
        lines.iter().any(|l| l.has_class("resumed"))
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
    // A room name refused just before leaving: its refusal and the name
    // go with the chat, not to whoever joins next.
    let refused = page
        .js(
            "const i = document.getElementById('room-input');
             i.value = '<b>r</b>';
             document.getElementById('room-form').requestSubmit();
             return !document.getElementById('room-error').hidden;",
            vec![],
        )
        .await;
    assert_eq!(refused, json!(true), "the bad room name was not refused");
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
    let left = page
        .js(
            "return [document.getElementById('room-input').value,
                     document.getElementById('room-error').hidden];",
            vec![],
        )
        .await;
    assert_eq!(left, json!(["", true]), "the room box kept its refusal");
    page.close().await;
}

/// Joining as `BOB` while `bob` is online: the join screen names both
/// spellings (it said only "the nickname bob is in use", a name the user
/// had not typed).
#[test]
fn a_nickname_taken_in_another_spelling_is_refused_naming_both() {
    let Some(h) = Harness::start("a_nickname_taken_in_another_spelling") else {
        return;
    };
    let server = Server::start(&[]);
    let _bob = server.join("bob");
    h.block_on(async {
        let c = h.browser(1000, 700).await;
        c.goto(&format!("http://{}/", server.addr()))
            .await
            .expect("open the page");
        let page = Page {
            c,
            nick: "BOB".to_owned(),
        };
        page.type_into("nick", "BOB").await;
        let refused = wait_for("BOB: the join refused", async || {
            let v = page
                .js(
                    "const e = document.getElementById('join-error');
                     return e.hidden ? null : [e.dataset.code, e.textContent];",
                    vec![],
                )
                .await;
            if v.is_null() {
                Err(v.to_string())
            } else {
                Ok(v)
            }
        })
        .await;
        page.shot("nick-taken").await;
        assert_eq!(
            refused,
            json!([
                "nick_taken",
                "the nickname BOB is taken: bob is online, and nicknames ignore case; choose another"
            ])
        );
        page.close().await;
    });
}

/// What each room says once a reload has resumed the session.
const RESUMED: &str = "resumed your session; earlier joins and leaves are not shown";

/// A reload resumes the session: each room says so in one line, below
/// the messages its replay brought, and not "alice joined", the words of
/// a fresh join (the replay brings no joins and leaves, so the page
/// cannot show those from before the reload).
#[test]
fn a_reloaded_page_says_it_resumed_not_that_it_joined() {
    let Some(h) = Harness::start("a_reloaded_page_says_it_resumed") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let (page, mut bob) = alice_told_by_bob(&h, &server, "before the reload").await;
        page.type_line("/join rust").await;
        bob.enter("rust");
        say_in(&mut bob, "rust", &[], "in rust before the reload");
        page.wait_texts("rust", &["in rust before the reload"])
            .await;

        page.c.refresh().await.expect("reload the page");
        page.wait_state("connected").await;
        // Settled: the room's own presence came (a line of alice's, or
        // the line that says the session resumed).
        let settled = |ls: &[Line]| {
            ls.iter()
                .any(|l| l.nick.as_deref() == Some("alice") || l.has_class("resumed"))
        };
        for room in ["lobby", "rust"] {
            page.wait_lines(&format!("#{room} entered again"), room, settled)
                .await;
        }
        page.shot("reloaded").await;
        for (room, said) in [
            ("lobby", "before the reload"),
            ("rust", "in rust before the reload"),
        ] {
            let lines = page.lines(room).await;
            let own: Vec<_> = lines
                .iter()
                .filter(|l| l.nick.as_deref() == Some("alice"))
                .collect();
            assert!(own.is_empty(), "#{room}: {:#?}", shown(&lines));
            let resumed: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].has_class("resumed"))
                .collect();
            assert_eq!(resumed.len(), 1, "#{room}: {:#?}", shown(&lines));
            assert_eq!(lines[resumed[0]].text, RESUMED);
            let msg = lines.iter().position(|l| l.is_msg() && l.text == said);
            assert!(
                msg.is_some_and(|m| m < resumed[0]),
                "#{room}: {:#?}",
                shown(&lines)
            );
        }
        page.close().await;
    });
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
    size_page(&page.c, 390, 760).await;
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
    // Alice's own line from the other connection is news to this page too.
    other.send_frame(&json!({"type": "enter", "room": "lobby"}));
    other.recv_until(100, |f| f["type"] == "entered");
    say_in(&mut other, "lobby", &[], "alice from elsewhere");

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
            .any(|l| l.text == "reconnected; 2 missed messages above"),
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
                          nick: document.getElementById('nick').value,
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
    assert_eq!(
        seen["nick"],
        json!(""),
        "a nickname the other tab holds is offered: {seen}"
    );
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
        ls.iter().any(|l| l.has_class("resumed"))
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

/// Two tabs of one browser, two nicknames: what one enters and leaves
/// is its own, and the other, reloaded, comes back to its own rooms.
#[test]
fn a_reloaded_tab_comes_back_to_its_own_rooms_not_another_tabs() {
    let Some(h) = Harness::start("a_reloaded_tab_comes_back_to_its_own_rooms") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(own_rooms(&h, &server));
}

/// The rooms in the current window's list.
async fn room_list(page: &Page) -> Value {
    page.js(
        "return [...document.querySelectorAll('#rooms li')].map(li => li.dataset.room);",
        vec![],
    )
    .await
}

async fn wait_rooms(page: &Page, who: &str, want: Value) {
    wait_for(&format!("{who}'s rooms {want}"), async || {
        let v = room_list(page).await;
        if v == want {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

async fn own_rooms(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "alice", (1000, 700)).await;
    page.type_line("/join rust").await;
    wait_rooms(&page, "alice", json!(["lobby", "rust"])).await;
    // A copy asks for a nickname of its own; as carol it goes elsewhere.
    let first = open_copy(&page).await;
    wait_for("the copy's join form", async || {
        let shown = page
            .js(
                "return !document.getElementById('join-screen').hidden;",
                vec![],
            )
            .await;
        if shown == json!(true) {
            Ok(())
        } else {
            Err(shown.to_string())
        }
    })
    .await;
    page.js(
        "document.getElementById('nick').value = 'carol';
         document.getElementById('join').click(); return null;",
        vec![],
    )
    .await;
    page.wait_state("connected").await;
    page.type_line("/join go").await;
    wait_rooms(&page, "carol", json!(["lobby", "rust", "go"])).await;
    page.type_line("/part rust").await;
    page.type_line("/part lobby").await;
    wait_rooms(&page, "carol", json!(["go"])).await;
    // alice's tab, reloaded: her rooms, not carol's.
    page.c
        .switch_to_window(first)
        .await
        .expect("switch to the first window");
    page.c.refresh().await.expect("reload the page");
    page.wait_state("connected").await;
    wait_rooms(&page, "alice", json!(["lobby", "rust"])).await;
    page.close().await;
}

/// The server's `presence_fanout_max` (PROTOCOL.md 5.2) in the test
/// below, not the default (1,000): in a room with more members, entering
/// and leaving are sent only to whoever entered or left. The page must
/// take it from the server's `welcome`.
const FANOUT_MAX: usize = 5;

/// `n` raw clients, `{prefix}0001` and on, joined into no room and then
/// in `room`: all asked at once, and each in when this returns.
fn crowd(server: &Server, prefix: &str, n: usize, room: &str) -> Vec<Client> {
    let mut all: Vec<Client> = (1..=n)
        .map(|i| {
            let mut c = server.connect();
            let nick = format!("{prefix}{i:04}");
            c.send_frame(&json!({"type": "join", "nick": nick, "rooms": []}));
            c.send_frame(&json!({"type": "enter", "room": room}));
            c
        })
        .collect();
    for c in &mut all {
        c.expect_kind("welcome");
        c.recv_until(10, |f| f["type"] == "entered" && f["room"] == room);
    }
    all
}

/// In a room past the server's presence fan-out cap the page is not told
/// who comes and goes, so its online list there falls behind (here it
/// never sees the last of a crowd come in): back after its session went
/// on elsewhere, such a room, crowded before or after, says nothing of
/// who came and went meanwhile, where a small room still does.
#[test]
fn back_a_crowded_room_says_nothing_of_who_came_and_went() {
    let Some(h) = Harness::start("back_a_crowded_room_says_nothing") else {
        return;
    };
    // None of the crowd is pinged while the test does not read them.
    let cap = FANOUT_MAX.to_string();
    let server = Server::start(&["--presence-fanout-max", &cap, "--idle-ping-ms", "600000"]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1200, 800)).await;
        let mut bob = server.join("bob");
        bob.enter("after");
        for room in ["after", "before"] {
            page.type_line(&format!("/join {room}")).await;
            page.wait_lines(&format!("in #{room}"), room, |ls| {
                ls.iter().any(|l| l.nick.as_deref() == Some("alice"))
            })
            .await;
        }
        page.type_line("/join lobby").await;
        // #before fills past the cap: the page is told of every arrival
        // but the last, which made the room one more than the cap.
        let before = crowd(&server, "x", FANOUT_MAX, "before");
        page.wait_lines("the crowd in #before", "before", |ls| {
            let came = ls
                .iter()
                .filter(|l| l.nick.as_deref().is_some_and(|n| n.starts_with('x')))
                .count();
            came == FANOUT_MAX - 1
        })
        .await;

        // Away (the page waits for its button): #before empties, #after
        // fills past the cap, and in the lobby bob goes and carol comes.
        let other = take_over(&page, &server, &mut bob).await;
        drop(before);
        drop(bob);
        let _after = crowd(&server, "y", FANOUT_MAX, "after");
        let mut carol = server.join("carol");
        let want = json!({"after": FANOUT_MAX, "lobby": 1});
        wait_for("#before empty, bob gone", async || {
            carol.send_frame(&json!({"type": "rooms"}));
            let (_, rooms) = carol.recv_until(10, |f| f["type"] == "rooms");
            let members: serde_json::Map<String, Value> = rooms["rooms"]
                .as_array()
                .expect("rooms")
                .iter()
                .map(|r| (r["room"].as_str().unwrap().to_owned(), r["members"].clone()))
                .collect();
            if Value::Object(members.clone()) == want {
                Ok(())
            } else {
                Err(format!("{members:?}"))
            }
        })
        .await;

        page.click("continue-here").await;
        page.wait_state("connected").await;
        drop(other);
        // What alice says in a room comes after her own return there.
        let mut logs = Vec::new();
        for room in ["before", "after", "lobby"] {
            page.type_line(&format!("/join {room}")).await;
            let text = format!("back in {room}");
            page.type_line(&text).await;
            logs.push(page.wait_texts(room, &[text.as_str()]).await);
        }
        let away = |ls: &[Line]| -> Vec<String> {
            ls.iter()
                .filter(|l| l.has_class("away"))
                .map(|l| l.text.clone())
                .collect()
        };
        // Who left is said a moment after who came (held back in case
        // they come straight back).
        logs[2] = page
            .wait_lines("bob said to have left", "lobby", |ls| away(ls).len() == 2)
            .await;
        let lobby = [
            "while you were away: carol joined",
            "while you were away: bob left",
        ];
        for ((room, want), lines) in [("before", &[][..]), ("after", &[]), ("lobby", &lobby)]
            .into_iter()
            .zip(&logs)
        {
            assert_eq!(
                away(lines),
                want,
                "#{room}: {:#?}",
                shown(lines)
                    .into_iter()
                    .filter(|l| !l.contains(" joined #"))
                    .collect::<Vec<_>>()
            );
        }
        page.close().await;
    });
}

/// The page's session core (`session.js`, driven here with frames as the
/// server sends them) for a room that went back below what it saw in the
/// same epoch (PROTOCOL.md §5.8's open case: a server stopped while its
/// store failed gives the lost seqs again): the events numbered so anew
/// are shown, not taken for copies of those seen.
#[test]
fn a_room_whose_seq_went_back_in_the_same_epoch_is_followed_from_there() {
    let Some(h) = Harness::start("a_room_whose_seq_went_back_in_the_same_epoch") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(seq_went_back(&h, &server));
}

const SEQ_WENT_BACK_JS: &str = "return (async () => {
  const { Session } = await import('/session.js');
  const P = await import('/protocol.js');
  const events = [];
  const s = new Session('alice', ['lobby'], { send: () => {}, emit: (k, d) => events.push([k, d]) });
  const frame = (o) => s.frame(P.decode(JSON.stringify(o)));
  const welcome = { type: 'welcome', nick: 'alice', seq: 0, online: [], session: 't', resumed: false };
  const entered = (seq) => ({ type: 'entered', room: 'lobby', epoch: 'e1', seq, oldest: 1, online: ['alice'], recovered: false });
  const msg = (seq, from, text) => ({ type: 'msg', room: 'lobby', seq, ts: 1, from, text });
  s.connected();
  frame(welcome);
  frame(entered(0));
  frame({ type: 'presence', room: 'lobby', seq: 1, nick: 'alice', status: 'online', ts: 1 });
  for (let seq = 2; seq <= 5; seq++) frame(msg(seq, 'bob', 'old'));
  s.sendMsg('lobby', [], 'unanswered', 1);
  s.disconnected();
  events.length = 0;
  s.connected();
  frame(welcome);
  frame(entered(2));
  const lastSeq = s.roomState('lobby').lastSeq;
  // Sent after seq 5, it may be stored above 2 now.
  const after = s.pending.find((p) => p.text === 'unanswered').after;
  frame({ type: 'presence', room: 'lobby', seq: 3, nick: 'alice', status: 'online', ts: 1 });
  frame(msg(4, 'carol', 'new'));
  const kinds = events.map(([k, d]) => k === 'message' ? `message ${d.from} ${d.text}` : k === 'entered' ? `entered gap=${d.gap} behind=${d.behind}` : k);
  // After a reload: a new session, its waiting message restored with the
  // history and seq it was sent after; the room's first entering says 2.
  const t = new Session('alice', ['lobby'], { send: () => {}, emit: () => {} });
  t.restore([{ id: 'r1', room: 'lobby', to: [], text: 'restored', line: 1, epoch: 'e1', after: 5 }]);
  const tframe = (o) => t.frame(P.decode(JSON.stringify(o)));
  t.connected();
  tframe(welcome);
  tframe(entered(2));
  const restoredAfter = t.pending.find((p) => p.id === 'r1').after;
  return { lastSeq, after, restoredAfter, kinds };
})();";

async fn seq_went_back(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(SEQ_WENT_BACK_JS, vec![]).await;
    assert_eq!(v["lastSeq"], json!(2), "{v}");
    assert_eq!(v["after"], json!(2), "{v}");
    assert_eq!(v["restoredAfter"], json!(2), "{v}");
    let kinds: Vec<&str> = v["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(kinds.contains(&"entered gap=false behind=true"), "{v}");
    assert!(kinds.contains(&"message carol new"), "{v}");
}

/// The page's session core (`session.js`) leaving a room it has just
/// sent a message to: the `part` waits for the message's echo, and if the
/// connection goes first, the next one enters the room again to resend it
/// (a resumed session answers `duplicate`), then leaves. Resent into the
/// room already left, it was refused `not_in_room` and shown as not sent
/// although it had arrived.
#[test]
fn a_message_sent_just_before_its_room_is_left_is_not_refused_after_a_reconnect() {
    let Some(h) = Harness::start("a_message_sent_just_before_its_room_is_left") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(part_after_msg(&h, &server));
}

const PART_AFTER_MSG_JS: &str = "return (async () => {
  const { Session } = await import('/session.js');
  const P = await import('/protocol.js');
  const sent = [];
  const events = [];
  const s = new Session('alice', ['lobby', 'rust'], {
    send: (f) => sent.push(`${f.type}${f.room ? ' ' + f.room : ''}${f.text ? ' ' + f.text : ''}`),
    emit: (k, d) => events.push(k === 'error' ? `error ${d.code}` : k),
  });
  const frame = (o) => s.frame(P.decode(JSON.stringify(o)));
  const welcome = (resumed) => ({ type: 'welcome', nick: 'alice', seq: 0, online: [], session: 't', resumed });
  const entered = (room, seq) => ({ type: 'entered', room, epoch: 'e1', seq, oldest: 1, online: ['alice'], recovered: true });
  const own = (room, seq) => ({ type: 'presence', room, seq, nick: 'alice', status: 'online', ts: 1 });
  s.connected();
  frame(welcome(false));
  frame(entered('lobby', 0));
  frame(own('lobby', 1));
  frame(entered('rust', 0));
  frame(own('rust', 1));
  sent.length = 0;
  // Sent, then the room left at once: no part before the answer.
  const first = s.sendMsg('rust', [], 'last words', 1);
  s.part('rust');
  const beforeEcho = [...sent];
  frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'last words', id: first.id });
  const afterEcho = [...sent];
  // Again, and the connection lost before the echo.
  s.enter('rust');
  frame(entered('rust', 3));
  frame(own('rust', 4));
  const second = s.sendMsg('rust', [], 'more words', 1);
  s.part('rust');
  s.disconnected();
  sent.length = 0;
  events.length = 0;
  s.connected();
  frame(welcome(true));
  const reconnect = [...sent];
  frame(entered('lobby', 1));
  frame(entered('rust', 5));
  frame({ type: 'error', code: 'duplicate', message: 'already delivered', id: second.id, room: 'rust' });
  return { beforeEcho, afterEcho, reconnect, sent, events, pending: s.pending.length, rooms: [...s.rooms.keys()] };
})();";

async fn part_after_msg(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(PART_AFTER_MSG_JS, vec![]).await;
    assert_eq!(v["beforeEcho"], json!(["msg rust last words"]), "{v}");
    assert_eq!(
        v["afterEcho"],
        json!(["msg rust last words", "part rust"]),
        "{v}"
    );
    assert_eq!(
        v["reconnect"],
        json!(["join", "enter rust", "enter lobby", "msg rust more words"]),
        "{v}"
    );
    assert_eq!(
        v["sent"].as_array().and_then(|a| a.last()),
        Some(&json!("part rust")),
        "{v}"
    );
    let events = v["events"].as_array().expect("events");
    assert!(
        !events
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.starts_with("error"))),
        "{v}"
    );
    assert_eq!(v["pending"], json!(0), "{v}");
    assert_eq!(v["rooms"], json!(["lobby"]), "{v}");
}

/// The page's session core against the sequences where it parted ways
/// with chatproto's client core (a review set them side by side), each a
/// message lost, sent twice, out of order or for ever, or a room left for
/// good entered again: a room left offline keeps its waiting message; a
/// room left with nothing waiting any more is not entered again; a line
/// typed offline into a room never entered is not taken for an older one
/// of the same text; the match by content minds the recipients and a new
/// history (a private line a new session cannot see is given up, not
/// sent again); a line typed during a held replay waits behind the held
/// ones; a waiting message the new limit does not take is given up; a
/// second `welcome` is ignored; an error with a message's id does not
/// answer an entering; a room's own leaving before its `entered` is not
/// told; a room entered while another left waits for its `part` waits
/// for it too (at the rooms per client it was refused), and a reconnect
/// enters the rooms being left first, a room never entered after them.
#[test]
fn the_page_core_keeps_to_the_client_core_on_resends_and_leavings() {
    let Some(h) = Harness::start("the_page_core_keeps_to_the_client_core") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(page_core_parity(&h, &server));
}

const PAGE_CORE_PARITY_JS: &str = "return (async () => {
  const { Session } = await import('/session.js');
  const P = await import('/protocol.js');
  const make = (rooms = ['lobby', 'rust']) => {
    const c = { sent: [], events: [] };
    c.s = new Session('alice', rooms, {
      send: (f) => c.sent.push(`${f.type}${f.room ? ' ' + f.room : ''}${f.text ? ' ' + f.text : ''}`),
      emit: (k, d) => c.events.push(
        k === 'error' ? `error ${d.code}` : k === 'message' ? `message ${d.from} ${d.text}` :
        k === 'presence' ? `presence ${d.nick} ${d.online}` : k),
    });
    c.frame = (o) => c.s.frame(P.decode(JSON.stringify(o)));
    return c;
  };
  const welcome = (resumed, limits) => ({ type: 'welcome', nick: 'alice', seq: 0, online: [], session: 't', resumed, ...(limits ? { limits } : {}) });
  const entered = (room, seq, epoch = 'e1') => ({ type: 'entered', room, epoch, seq, oldest: 1, online: ['alice'], recovered: false });
  const own = (room, seq, online = true) => ({ type: 'presence', room, seq, nick: 'alice', status: online ? 'online' : 'offline', ts: 1 });
  const replayed = (room, seq, text, to) => ({ type: 'msg', room, seq, ts: 1, from: 'alice', text, ...(to ? { to } : {}), replay: true });
  const up = (c, resumed = false) => {
    c.s.connected();
    c.frame(welcome(resumed));
    c.frame(entered('lobby', 0));
    c.frame(own('lobby', 1));
    c.frame(entered('rust', 0));
    c.frame(own('rust', 1));
  };
  const out = {};

  // A room left offline: its message waits, the next connection enters
  // it again to send it, then leaves once it is answered.
  let c = make();
  up(c);
  const lost = c.s.sendMsg('rust', [], 'important', 1);
  c.s.disconnected();
  c.s.part('rust');
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(true));
  c.frame(entered('lobby', 1));
  c.frame(entered('rust', 1));
  c.frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'important', id: lost.id });
  out.leftOffline = [...c.sent];

  // Left, its message found in a fresh replay: the next connection does
  // not enter it again.
  c = make();
  up(c);
  c.s.sendMsg('rust', [], 'bye', 1);
  c.s.part('rust');
  c.s.disconnected();
  c.s.connected();
  c.frame(welcome(false));
  c.frame(entered('rust', 2));
  c.frame(replayed('rust', 2, 'bye'));
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(true));
  out.leftForGood = [...c.sent];

  // Typed offline into a room never entered: sent after its replay, not
  // taken for yesterday's line of the same text.
  c = make(['lobby']);
  up(c);
  c.s.disconnected();
  c.s.enter('dev');
  c.s.sendMsg('dev', [], 'hi', 1);
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(false));
  c.frame(entered('lobby', 1));
  c.frame(entered('dev', 40, 'e9'));
  c.frame(replayed('dev', 7, 'hi'));
  c.frame(own('dev', 41));
  out.neverSent = c.sent.filter((f) => f.startsWith('msg'));

  // Two lines of one text, one to bob only: the public copy in the
  // replay answers the public one; the private one, which a new session
  // is not shown, is given up as unconfirmed, not sent again.
  c = make(['lobby']);
  up(c);
  c.s.sendMsg('lobby', ['bob'], 'yes', 1);
  c.s.sendMsg('lobby', [], 'yes', 2);
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(false));
  c.frame(entered('lobby', 3));
  c.frame(replayed('lobby', 3, 'yes'));
  c.events.length = 0;
  c.s.emit = (k, d) => c.events.push(k === 'unconfirmed' ? `unconfirmed ${d.to.join(',')} ${d.text}` : k);
  c.frame(own('lobby', 4));
  out.recipients = { sent: c.sent.filter((f) => f.startsWith('msg')), pending: c.s.pending.length, unconfirmed: c.events.filter((e) => e.startsWith('unconfirmed')) };

  // A line typed offline, sent as the history begins anew and its echo
  // lost: the next fresh replay of the new history holds it.
  c = make(['lobby']);
  up(c);
  c.s.disconnected();
  c.s.sendMsg('lobby', [], 'again', 1);
  c.s.connected();
  c.frame(welcome(false));
  c.frame(entered('lobby', 1, 'e2'));
  c.frame(own('lobby', 2));
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(false));
  c.frame(entered('lobby', 4, 'e2'));
  c.frame(replayed('lobby', 3, 'again'));
  c.frame(own('lobby', 5));
  // (Found: neither sent again nor given up.)
  out.newEpoch = { sent: c.sent.filter((f) => f.startsWith('msg')), unconfirmed: c.events.filter((e) => e === 'unconfirmed').length };

  // A line typed during a held replay goes after the held one (not in
  // a replay that holds all since: it did not arrive).
  c = make(['lobby']);
  up(c);
  c.s.sendMsg('lobby', [], 'first', 1);
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(false));
  c.frame({ ...entered('lobby', 1), recovered: true });
  c.s.sendMsg('lobby', [], 'second', 2);
  c.frame(own('lobby', 2));
  out.heldOrder = c.sent.filter((f) => f.startsWith('msg'));

  // A waiting line the new limit does not take: given up, once.
  c = make(['lobby']);
  up(c);
  c.s.disconnected();
  c.s.sendMsg('lobby', [], 'x'.repeat(40000), 1);
  c.sent.length = 0;
  c.events.length = 0;
  c.s.connected();
  c.frame(welcome(true, { max_frame_bytes: 16384 }));
  out.tooLarge = { sent: c.sent.filter((f) => f.startsWith('msg')).length, errors: c.events.filter((e) => e.startsWith('error')), pending: c.s.pending.length };

  // A second welcome enters nothing again.
  c = make(['lobby']);
  up(c);
  c.sent.length = 0;
  c.frame(welcome(true));
  out.secondWelcome = [...c.sent];

  // An error with a message's id does not answer the entering of its room.
  c = make(['lobby']);
  up(c);
  c.s.enter('dev');
  c.frame({ type: 'error', code: 'too_many_rooms', message: 'x', id: 'zz', room: 'dev' });
  out.stillEntering = c.s.entering.has('dev');

  // Left and entered again at once: its own leaving, before `entered`, is not told.
  c = make();
  up(c);
  c.s.part('rust');
  c.s.enter('rust');
  c.events.length = 0;
  c.frame(own('rust', 2, false));
  c.frame(entered('rust', 2));
  c.frame(own('rust', 3));
  out.reentered = c.events.filter((e) => e.startsWith('presence'));

  // A room entered while another left waits for its part: its `enter`
  // and its line go after that part (the server counts the room left
  // until then), live and after a reconnect; one left before its enter
  // went gives up its line.
  c = make();
  up(c);
  let last = c.s.sendMsg('rust', [], 'last', 1);
  c.s.part('rust');
  c.s.enter('ops');
  c.s.sendMsg('ops', [], 'first', 2);
  c.frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'last', id: last.id });
  out.waitsLive = c.sent.slice(-4);
  c = make();
  up(c);
  last = c.s.sendMsg('rust', [], 'last', 1);
  c.s.part('rust');
  c.s.enter('ops');
  c.s.sendMsg('ops', [], 'first', 2);
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(true));
  c.frame(entered('lobby', 1));
  c.frame(entered('rust', 1));
  c.frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'last', id: last.id });
  out.waitsReconnect = [...c.sent];
  c = make();
  up(c);
  c.s.sendMsg('rust', [], 'last', 1);
  c.s.part('rust');
  c.s.enter('ops');
  c.s.sendMsg('ops', [], 'first', 2);
  c.sent.length = 0;
  c.events.length = 0;
  c.s.part('ops');
  out.waitingLeft = { sent: [...c.sent], events: c.events.filter((e) => e.startsWith('error')), pending: c.s.pending.length };

  // A long line to a room left, a room entered meanwhile (it waits), and
  // a server that takes smaller frames: the long line is given up, and
  // each room entered once, in order.
  c = make();
  up(c);
  c.s.sendMsg('rust', [], 'x'.repeat(40000), 1);
  c.s.part('rust');
  c.s.enter('ops');
  c.s.sendMsg('ops', [], 'first', 2);
  c.s.disconnected();
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(true, { max_frame_bytes: 16384 }));
  out.givenUpAtWelcome = [...c.sent];

  // A line to a room not entered goes at once; the room entered then
  // waits, and after a fresh session it is held too. Left before its
  // enter went: nothing is held for it any more, and the line that went
  // is not given up (the server answers it).
  c = make();
  up(c);
  c.s.sendMsg('rust', [], 'last', 1);
  c.s.part('rust');
  c.s.sendMsg('ops', [], 'early', 2);
  c.s.enter('ops');
  c.s.disconnected();
  c.s.connected();
  c.frame(welcome(false));
  c.events.length = 0;
  c.s.part('ops');
  out.waitingHeld = { held: [...c.s.held], errors: c.events.filter((e) => e.startsWith('error')), pending: c.s.pending.length };

  // Offline, a room entered, then one left whose line waits: the next
  // connection enters the one left first, and the new room (never
  // entered) once that one is left, as online.
  c = make();
  up(c);
  last = c.s.sendMsg('rust', [], 'last', 1);
  c.s.disconnected();
  c.s.enter('ops');
  c.s.part('rust');
  c.sent.length = 0;
  c.s.connected();
  c.frame(welcome(true));
  c.frame(entered('lobby', 1));
  c.frame(entered('rust', 1));
  c.frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'last', id: last.id });
  out.partingFirst = [...c.sent];

  // A line to a room not entered goes at once; the room entered then
  // waits for rust's part: entered once that goes, without the line a
  // second time on the connection.
  c = make();
  up(c);
  last = c.s.sendMsg('rust', [], 'last', 1);
  c.s.part('rust');
  c.s.sendMsg('ops', [], 'early', 2);
  c.s.enter('ops');
  c.sent.length = 0;
  c.frame({ type: 'msg', room: 'rust', seq: 2, ts: 1, from: 'alice', text: 'last', id: last.id });
  out.sentOnce = [...c.sent];
  return out;
})();";

async fn page_core_parity(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(PAGE_CORE_PARITY_JS, vec![]).await;
    assert_eq!(
        v["leftOffline"],
        json!([
            "join",
            "enter rust",
            "enter lobby",
            "msg rust important",
            "part rust"
        ]),
        "{v}"
    );
    assert_eq!(v["leftForGood"], json!(["join", "enter lobby"]), "{v}");
    assert_eq!(v["neverSent"], json!(["msg dev hi"]), "{v}");
    assert_eq!(
        v["recipients"],
        json!({ "sent": [], "pending": 0, "unconfirmed": ["unconfirmed bob yes"] }),
        "{v}"
    );
    assert_eq!(
        v["newEpoch"],
        json!({ "sent": [], "unconfirmed": 0 }),
        "{v}"
    );
    assert_eq!(
        v["heldOrder"],
        json!(["msg lobby first", "msg lobby second"]),
        "{v}"
    );
    assert_eq!(v["tooLarge"]["sent"], json!(0), "{v}");
    assert_eq!(
        v["tooLarge"]["errors"],
        json!(["error msg_too_large"]),
        "{v}"
    );
    assert_eq!(v["tooLarge"]["pending"], json!(0), "{v}");
    assert_eq!(v["secondWelcome"], json!([]), "{v}");
    assert_eq!(v["stillEntering"], json!(true), "{v}");
    assert_eq!(v["reentered"], json!(["presence alice true"]), "{v}");
    assert_eq!(
        v["waitsLive"],
        json!(["msg rust last", "part rust", "enter ops", "msg ops first"]),
        "{v}"
    );
    assert_eq!(
        v["waitsReconnect"],
        json!([
            "join",
            "enter rust",
            "enter lobby",
            "msg rust last",
            "part rust",
            "enter ops",
            "msg ops first"
        ]),
        "{v}"
    );
    assert_eq!(
        v["waitingLeft"],
        json!({ "sent": [], "events": ["error not_in_room"], "pending": 1 }),
        "{v}"
    );
    assert_eq!(
        v["givenUpAtWelcome"],
        json!(["join", "enter lobby", "enter ops", "msg ops first"]),
        "{v}"
    );
    assert_eq!(
        v["waitingHeld"],
        json!({ "held": ["rust"], "errors": [], "pending": 2 }),
        "{v}"
    );
    assert_eq!(v["sentOnce"], json!(["part rust", "enter ops"]), "{v}");
    assert_eq!(
        v["partingFirst"],
        json!([
            "join",
            "enter rust",
            "enter lobby",
            "msg rust last",
            "part rust",
            "enter ops"
        ]),
        "{v}"
    );
}

/// The page keeps a room's members as chatproto's client core does: at
/// most 100,000, none longer than a nickname can be (a hostile server
/// naming ever more grew the page without end), and shows a list of
/// 200,000 without overflowing the call stack (each was one argument of
/// one call): it counts them all and draws the rows of the first 300
/// (those near the view: online::a_long_online_list_draws_the_rows_near_the_view).
#[test]
fn a_roster_is_capped_and_a_long_list_is_shown() {
    let Some(h) = Harness::start("a_roster_is_capped_and_a_long_list_is_shown") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(roster_capped(&h, &server));
}

const ROSTER_CAPPED_JS: &str = "return (async () => {
  const { Session } = await import('/session.js');
  const { OnlineList } = await import('/sidebar.js');
  const P = await import('/protocol.js');
  const s = new Session('alice', ['lobby'], { send: () => {}, emit: () => {} });
  const frame = (o) => s.frame(P.decode(JSON.stringify(o)));
  const many = Array.from({ length: 100010 }, (_, i) => `u${i}`);
  s.connected();
  frame({ type: 'welcome', nick: 'alice', seq: 0, online: [], session: 't', resumed: false });
  frame({ type: 'entered', room: 'lobby', epoch: 'e1', seq: 1, oldest: 1, online: ['x'.repeat(33), ...many], recovered: false });
  const entered = s.roomState('lobby').roster.size;
  frame({ type: 'presence', room: 'lobby', seq: 2, nick: 'late', status: 'online', ts: 1 });
  const late = s.roomState('lobby').roster.has(P.nickKey('late'));
  frame({ type: 'presence', room: 'lobby', seq: 3, nick: 'u0', status: 'offline', ts: 1 });
  frame({ type: 'presence', room: 'lobby', seq: 4, nick: 'late', status: 'online', ts: 1 });
  const afterLeave = s.roomState('lobby').roster.has(P.nickKey('late'));
  const scroller = document.createElement('div');
  const list = document.createElement('ul');
  scroller.append(list);
  const count = document.createElement('span');
  const names = Array.from({ length: 200000 }, (_, i) => `n${i}`);
  new OnlineList(list, count, scroller).show(names, 'alice');
  return { entered, late, afterLeave, shown: list.children.length, count: count.textContent };
})();";

async fn roster_capped(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(ROSTER_CAPPED_JS, vec![]).await;
    assert_eq!(v["entered"], json!(100_000), "{v}");
    assert_eq!(v["late"], json!(false), "no room past the cap: {v}");
    assert_eq!(v["afterLeave"], json!(true), "room once one left: {v}");
    assert_eq!(v["shown"], json!(300), "{v}");
    assert_eq!(v["count"], json!("200000"), "{v}");
}

/// The page's log (`messages.js`, driven here directly) for such a room:
/// the lines shown with the seqs given again stay, and the events now
/// numbered so are shown below them, also where `/clear` hid the old ones.
#[test]
fn a_log_shows_the_events_numbered_again_below_the_old_ones() {
    let Some(h) = Harness::start("a_log_shows_the_events_numbered_again") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(log_numbered_again(&h, &server));
}

const NUMBERED_AGAIN_JS: &str = "return (async () => {
  const { MessageView } = await import('/messages.js');
  const scroller = document.createElement('div');
  const jump = document.createElement('button');
  document.body.append(scroller, jump);
  const noop = () => {};
  const v = new MessageView(scroller, jump, { olderWanted: noop, trimmed: noop, notesTrimmed: noop });
  const texts = (room) => [...v.rooms.get(room).events.querySelectorAll('li.msg .text')].map((e) => e.textContent);
  const msg = (room, seq, text) => v.message({ room, seq, ts: 1, from: 'bob', to: [], text, replay: false, mine: false, live: true }, 'alice');
  const out = {};
  for (const room of ['a', 'b']) {
    v.addRoom(room);
    for (let seq = 1; seq <= 5; seq++) msg(room, seq, `old ${seq}`);
  }
  v.clearShown('b');
  for (const room of ['a', 'b']) {
    v.forgetAbove(room, 2);
    // The replay of what the room holds: shown already (or hidden).
    msg(room, 2, 'old 2');
    const shown = msg(room, 3, `new 3`);
    out[room] = { shown, texts: texts(room) };
  }
  scroller.remove();
  jump.remove();
  return out;
})();";

async fn log_numbered_again(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(NUMBERED_AGAIN_JS, vec![]).await;
    assert_eq!(
        v["a"],
        json!({"shown": true, "texts": ["old 1", "old 2", "old 3", "old 4", "old 5", "new 3"]}),
        "{v}"
    );
    assert_eq!(v["b"], json!({"shown": true, "texts": ["new 3"]}), "{v}");
}

/// A log its reader left scrolled up (here a room not shown, never read)
/// keeps at most MAX_KEPT lines of 20,000, its newest (it has no place
/// of its reader's to keep), checking so without a count of its lines
/// for every line (it kept every line, and at 160,000 a spread into one
/// call overflowed the stack); `/clear` hides the seqs shown, and a
/// reader back at the newest lines trims the log at once.
#[test]
fn a_log_of_many_lines_kept_scrolled_up_is_bounded_cleared_and_trimmed() {
    let Some(h) = Harness::start("a_log_of_many_lines_kept_scrolled_up") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(log_of_many_lines(&h, &server));
}

const MANY_LINES_JS: &str = "return (async () => {
  const { MessageView, MAX_SHOWN, MAX_KEPT } = await import('/messages.js');
  const scroller = document.createElement('div');
  const jump = document.createElement('button');
  document.body.append(scroller, jump);
  const noop = () => {};
  const v = new MessageView(scroller, jump, { olderWanted: noop, trimmed: noop, notesTrimmed: noop });
  const lines = 20000;
  const msg = (room, seq) => v.message({ room, seq, ts: 1, from: 'bob', to: [], text: 'x', replay: false, mine: false, live: true }, 'alice');
  const out = { maxShown: MAX_SHOWN, maxKept: MAX_KEPT };
  for (const room of ['a', 'b']) {
    const r = v.addRoom(room);
    // Not the room shown, and its reader was reading older lines there.
    r.stick = false;
    let most = 0;
    for (let seq = 11; seq < lines + 11; seq++) {
      msg(room, seq);
      if (seq % 100 === 0) most = Math.max(most, r.events.childElementCount);
    }
    out[room] = { kept: r.seqs.size, most, oldest: v.oldestSeq(room) };
  }
  const a = out.a;
  try { v.clearShown('a'); a.cleared = v.rooms.get('a').cleared; } catch (e) { a.cleared = String(e); }
  a.oldestAfter = v.oldestSeq('a');
  // b's reader comes back down: the next line trims the log.
  const b = v.rooms.get('b');
  b.stick = true;
  msg('b', lines + 11);
  out.b.after = b.events.childElementCount;
  out.b.oldestAfter = v.oldestSeq('b');
  scroller.remove();
  jump.remove();
  return out;
})();";

async fn log_of_many_lines(h: &Harness, server: &Server) {
    let page = Page::join(h, server.addr(), "erin", (1000, 700)).await;
    let v = page.js(MANY_LINES_JS, vec![]).await;
    let newest = 20_010;
    let max_kept = v["maxKept"].as_u64().expect("MAX_KEPT");
    for room in ["a", "b"] {
        let kept = v[room]["kept"].as_u64().expect("a count");
        assert!(
            kept <= max_kept && v[room]["most"].as_u64() <= Some(max_kept),
            "{room}: past MAX_KEPT: {v}"
        );
        assert!(kept > max_kept / 2, "{room}: {v}");
        // The newest, all of them.
        assert_eq!(v[room]["oldest"], json!(newest - kept + 1), "{room}: {v}");
    }
    let oldest = &v["a"]["oldest"];
    assert_eq!(
        v["a"]["cleared"],
        json!({"from": oldest, "to": newest}),
        "{v}"
    );
    assert_eq!(v["a"]["oldestAfter"], *oldest, "what /clear hid: {v}");
    let kept = v["maxShown"].as_u64().expect("MAX_SHOWN") - 200;
    assert_eq!(
        v["b"]["after"],
        json!(kept),
        "trimmed to MAX_SHOWN - TRIM_BY: {v}"
    );
    assert_eq!(v["b"]["oldestAfter"], json!(newest + 1 - kept + 1), "{v}");
}

/// Someone whose connection drops and who is straight back (a page
/// reloaded, Wi-Fi that blinked) is not said to have left and come back;
/// someone who stays away is, once the hold is over, in the place of
/// their leaving (before what was said after it).
#[test]
fn a_quick_return_is_not_said_to_leave_and_come_back() {
    let Some(h) = Harness::start("a_quick_return_is_not_said_to_leave") else {
        return;
    };
    let server = Server::start(&[]);
    h.block_on(async {
        let page = Page::join(&h, server.addr(), "alice", (1000, 700)).await;
        let mut carol = server.join("carol");
        let bob = server.join("bob");
        say_in(&mut carol, "lobby", &[], "bob is here");
        page.wait_texts("lobby", &["bob is here"]).await;
        let bobs = |ls: &[Line]| -> Vec<String> {
            ls.iter()
                .filter(|l| l.nick.as_deref() == Some("bob"))
                .map(|l| l.status.clone().unwrap_or_default())
                .collect()
        };

        drop(bob);
        carol.recv_until(100, |f| common::is_presence(f, "bob", "offline"));
        let mut bob = server.join("bob");
        say_in(&mut bob, "lobby", &[], "back already");
        let lines = page.wait_texts("lobby", &["back already"]).await;
        assert_eq!(bobs(&lines), ["online"], "{:#?}", shown(&lines));

        // A notice (the answer to a command) after bob's last line: his
        // leaving, said late, goes below it, where it happened.
        page.type_line("/who").await;
        let noticed = |ls: &[Line]| {
            ls.iter()
                .position(|l| l.seq.is_none() && l.text.starts_with("3 online"))
        };
        page.wait_lines("the answer to /who", "lobby", |ls| noticed(ls).is_some())
            .await;
        drop(bob);
        carol.recv_until(100, |f| common::is_presence(f, "bob", "offline"));
        say_in(&mut carol, "lobby", &[], "bob has gone");
        let lines = page
            .wait_lines("bob said to have left", "lobby", |ls| bobs(ls).len() == 2)
            .await;
        assert_eq!(bobs(&lines), ["online", "offline"], "{:#?}", shown(&lines));
        let left = lines
            .iter()
            .position(|l| l.status.as_deref() == Some("offline"));
        let said = lines.iter().position(|l| l.text == "bob has gone");
        assert!(
            noticed(&lines) < left && left < said,
            "{:#?}",
            shown(&lines)
        );
        page.close().await;
    });
}
