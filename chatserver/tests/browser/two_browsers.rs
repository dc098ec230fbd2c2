//! Two browsers and a terminal see one conversation, in one order.

use std::collections::{HashMap, HashSet};

use crate::common::{RealClient, Server};
use crate::shown;
use crate::webdriver::{Harness, Page};

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
