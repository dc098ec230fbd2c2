//! A scanner for plain client frames: the common case without serde.
//!
//! Almost every frame a client sends is a flat JSON object whose members
//! are strings without escapes, arrays of such strings, unsigned integers
//! or `null`: `{"type":"msg","to":["bob"],"text":"hi"}`. This reads such a
//! payload in one pass over its bytes, into the same [`Members`] that the
//! serde path fills, and builds the frame the same way. Anything else (an
//! escape, a nested object, a boolean, a float, a negative number, an
//! error of any kind) makes it give up, and the caller parses the payload
//! with serde_json instead, which gives the answer and the error text.
//! So a frame it accepts is exactly the frame serde_json would make (a
//! property test and the fuzz target check that), only sooner.

use serde::de::value::Error as Unused;

use crate::client_de::{Key, Members, Value};
use crate::frame::ClientFrame;

/// The frame in `text` (a whole payload, already known to be UTF-8), or
/// `None` when it is not plain enough to be sure of.
pub(crate) fn scan(text: &str) -> Option<ClientFrame> {
    let mut s = Scanner { text, at: 0 };
    let mut members = Members::default();
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.at += 1;
    } else {
        loop {
            let key = Key::from_name(s.string()?);
            s.ws();
            s.eat(b':')?;
            s.ws();
            match s.peek()? {
                // A string, the usual value: copied only if the frame
                // may use it (`type` not even then).
                b'"' => members.put_str(key, s.string()?),
                b'[' => members.put_strings(key, s.strings()?),
                _ => members.put(key, s.value()?),
            }
            s.ws();
            match s.next()? {
                b',' => s.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    s.ws();
    if s.at != text.len() {
        return None;
    }
    members.build::<Unused>().ok()
}

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Skip JSON's whitespace (the four characters RFC 8259 allows).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    /// A string without escapes or control characters; the input is UTF-8
    /// and `"` is ASCII, so the slice between the quotes is too (`get`
    /// checks only that its ends are on character boundaries).
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let b = self.bytes();
        if b.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let end = start + special(b.get(start..)?)?;
        if b[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        self.text.get(start..end)
    }

    /// An array of strings without escapes.
    fn strings(&mut self) -> Option<Vec<String>> {
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Vec::new());
        }
        // Four, as the first push would reserve, without the growing
        // path's cost.
        let mut items = Vec::with_capacity(4);
        loop {
            items.push(self.string()?.to_owned());
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b']' => return Some(items),
                _ => return None,
            }
        }
    }

    /// A value the frames use other than a string or an array of strings,
    /// or `None` for anything else.
    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'n' => {
                let rest = self.bytes().get(self.at..self.at + 4)?;
                (rest == b"null").then_some(())?;
                self.at += 4;
                Some(Value::Null)
            }
            b'0'..=b'9' => {
                let start = self.at;
                let mut n: u64 = 0;
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                    self.at += 1;
                }
                // JSON has no leading zeros; a fraction or an exponent
                // makes a float, which serde describes its own way.
                if (self.bytes()[start] == b'0' && self.at - start > 1)
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return None;
                }
                Some(Value::Unsigned(n))
            }
            _ => None,
        }
    }
}

/// Where the first byte that ends or escapes a JSON string is (a quote,
/// a backslash or a control character), eight bytes at a time. Reading a
/// client's string it finds the end; writing an event's strings
/// (`server::wire`) it finds what to escape: the same set of bytes.
#[inline]
pub(crate) fn special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of each byte of `x` below `n` (for `n` up to 0x80; the
    /// lowest one found is exact, which is all that is used).
    fn below(x: u64, n: u8) -> u64 {
        x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
    }
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits = below(x ^ (ONES * 0x22), 1) | below(x ^ (ONES * 0x5c), 1) | below(x, 0x20);
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = chunks.remainder();
    rest.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What serde_json makes of `text`.
    fn serde(text: &str) -> Option<ClientFrame> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn special_finds_the_first_quote_backslash_or_control_byte() {
        use crate::server::wire::needs_escape;
        // Every position in and past a word, each kind of byte, and bytes
        // around the ones looked for (0x21, 0x23, 0x5b, 0x5d, 0x20, 0x80+).
        // Up to 40 bytes: two blocks of sixteen for `needs_escape`.
        for len in 0..40 {
            for at in 0..=len {
                for hit in [b'"', b'\\', 0x00, 0x1f, 0x0a] {
                    let mut b: Vec<u8> = (0..len)
                        .map(|i| [0x21, 0x23, 0x5b, 0x5d, 0x20, 0xc3, 0xa9, b'x'][i % 8])
                        .collect();
                    if at < len {
                        b[at] = hit;
                        // A later hit must not hide the first one.
                        if at + 1 < len {
                            b[at + 1] = b'"';
                        }
                    }
                    let want = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
                    assert_eq!(special(&b), want, "{b:?}");
                    // The writers' whole-string check agrees.
                    assert_eq!(needs_escape(&b), want.is_some(), "{b:?}");
                }
            }
        }
    }

    /// A `msg` frame whose text is `text`, as a client would send it.
    fn msg_payload(text: &[u8]) -> Vec<u8> {
        let mut p = br#"{"type":"msg","to":["c42"],"text":""#.to_vec();
        p.extend_from_slice(text);
        p.extend_from_slice(br#""}"#);
        p
    }

    #[test]
    fn a_byte_that_ends_a_string_is_found_at_every_place_of_a_block() {
        // The text begins at byte 35 of the payload, so offsets 0 to 23
        // put the byte at each place of three blocks of eight.
        let hits: [&[u8]; 7] = [
            b"\\\"", b"\\\\", b"\\n", b"\\u0041", b"\x01", b"\x1f", b"\"",
        ];
        for len in 1..24 {
            for at in 0..len {
                for hit in hits {
                    let mut text = vec![b'x'; len];
                    text.splice(at..=at, hit.iter().copied());
                    let payload = msg_payload(&text);
                    let got = ClientFrame::from_payload(&payload);
                    let want = crate::parse_payload::<ClientFrame>(&payload);
                    assert_eq!(got, want, "{}", String::from_utf8_lossy(&payload));
                    // Only serde can read these: an escape, a control byte
                    // or a quote inside the text.
                    let json = std::str::from_utf8(&payload).unwrap();
                    assert_eq!(scan(json), None, "{json}");
                }
            }
        }
    }

    #[test]
    fn multibyte_characters_across_blocks_are_read_whole() {
        for ch in ["é", "✓", "😀"] {
            for before in 0..20 {
                let text = format!("{}{ch}y", "x".repeat(before));
                let payload = msg_payload(text.as_bytes());
                let json = std::str::from_utf8(&payload).unwrap();
                let fast = scan(json);
                assert!(fast.is_some(), "{json}");
                assert_eq!(fast, serde(json), "{json}");
                assert_eq!(
                    ClientFrame::from_payload(&payload),
                    Ok(ClientFrame::msg(vec!["c42".into()], text))
                );
            }
        }
    }

    #[test]
    fn invalid_utf8_anywhere_in_a_block_is_refused_as_serde_refuses_it() {
        // A lone continuation byte, a truncated two- and four-byte
        // sequence, an overlong encoding, a surrogate: each after 0 to 19
        // plain bytes, alone and with a valid character after it.
        let bad: [&[u8]; 5] = [
            &[0x80],
            &[0xc3],
            &[0xf0, 0x9f, 0x98],
            &[0xc0, 0xaf],
            &[0xed, 0xa0, 0x80],
        ];
        for bad in bad {
            for before in 0..20 {
                for after in [&b""[..], "é".as_bytes()] {
                    let mut text = vec![b'x'; before];
                    text.extend_from_slice(bad);
                    text.extend_from_slice(after);
                    let payload = msg_payload(&text);
                    let got = ClientFrame::from_payload(&payload);
                    assert_eq!(
                        got,
                        crate::parse_payload::<ClientFrame>(&payload),
                        "{payload:?}"
                    );
                    assert_eq!(
                        got,
                        Err(crate::PayloadError::NotUtf8 {
                            valid_up_to: 35 + before
                        }),
                        "{payload:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_in_any_string_is_refused_as_serde_refuses_it() {
        // A name the frames do not use, the value of such a member, an
        // unknown `type`, an item of an array, a value kept.
        for template in [
            r#"{"type":"msg","@":1,"text":"x"}"#,
            r#"{"type":"msg","other":"@","text":"x"}"#,
            r#"{"type":"msg","other":["a","@"],"text":"x"}"#,
            r#"{"type":"@"}"#,
            r#"{"type":"msg","to":["a","@"],"text":"x"}"#,
            r#"{"type":"msg","text":"@"}"#,
            r#"{"type":"join","nick":"@"}"#,
            r#"{"type":"enter","room":"@","epoch":"e"}"#,
        ] {
            let at = template.find('@').unwrap();
            for bad in [&[0x80][..], &[0xc3], &[0xed, 0xa0, 0x80], &[0xff]] {
                let mut payload = template.as_bytes()[..at].to_vec();
                payload.extend_from_slice(bad);
                payload.extend_from_slice(&template.as_bytes()[at + 1..]);
                assert_eq!(
                    ClientFrame::from_payload(&payload),
                    Err(crate::PayloadError::NotUtf8 { valid_up_to: at }),
                    "{payload:?}"
                );
            }
            // With a valid character instead, the scanner reads as serde does.
            let good = template.replace('@', "é");
            assert_eq!(scan(&good), serde(&good), "{good}");
        }
    }

    #[test]
    fn arrays_of_any_length_are_read_whole() {
        for n in 0..7 {
            let to: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            let frame = ClientFrame::msg(to, "hi");
            let json = serde_json::to_string(&frame).unwrap();
            assert_eq!(scan(&json), Some(frame), "{json}");
        }
    }

    #[test]
    fn plain_frames_are_scanned() {
        for text in [
            r#"{"type":"msg","to":["bob"],"text":"hi"}"#,
            r#"{"type":"msg","room":"dev","to":[],"text":"hé ✓","id":"7"}"#,
            r#" { "type" : "enter" , "room":"dev", "since": 12 ,"epoch":"e1" } "#,
            r#"{"type":"history","room":"dev","before":0,"limit":18446744073709551615}"#,
            r#"{"type":"join","nick":"al","rooms":["a", "b"],"resume":null}"#,
            r#"{"type":"ping","extra":[],"n":null,"k":1}"#,
            r#"{"type":"msg","text":"x","room":null,"id":null}"#,
        ] {
            let fast = scan(text);
            assert!(fast.is_some(), "{text}");
            assert_eq!(fast, serde(text), "{text}");
        }
    }

    #[test]
    fn anything_unsure_is_left_to_serde() {
        for text in [
            r#"{"type":"msg","text":"a\"b"}"#,
            r#"{"type":"msg","text":"x","extra":{"a":1}}"#,
            r#"{"type":"msg","text":"x","flag":true}"#,
            r#"{"type":"enter","room":"r","since":1.5}"#,
            r#"{"type":"enter","room":"r","since":01}"#,
            r#"{"type":"enter","room":"r","since":-1}"#,
            r#"{"type":"enter","room":"r","since":18446744073709551616}"#,
            r#"{"type":"msg","text":"x"} x"#,
            r#"{"type":"msg","text":"x",}"#,
            r#"{"type":"msg","text":"x","text":"y"}"#,
            r#"{"type":"part","room":null}"#,
            r#"{"type":"nope"}"#,
            r#"{}"#,
            "{\"type\":\"msg\",\"text\":\"a\tb\"}",
        ] {
            assert_eq!(scan(text), None, "{text}");
        }
    }

    /// Pieces of JSON a client frame is made of, plain and not.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just(",".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just("null".to_owned()),
            Just("nul".to_owned()),
            Just("true".to_owned()),
            prop::sample::select(vec![
                "type", "nick", "to", "text", "rooms", "resume", "room", "since", "epoch", "id",
                "before", "limit", "x", "msg", "join", "enter", "part", "history", "rooms", "ping",
                "pong", "a\\\"b", "a\\u0041", "é",
            ])
            .prop_map(|k| format!("\"{k}\"")),
            "[0-9]{1,21}",
            Just("-1".to_owned()),
            Just("1.5".to_owned()),
            Just("1e3".to_owned()),
            "\"[ -~]{0,6}\"",
        ]
    }

    /// A frame-shaped object: a `type` among members from the pieces
    /// above, mostly in a valid layout, sometimes broken.
    fn object() -> impl Strategy<Value = String> {
        let kind = prop::sample::select(vec![
            "msg", "join", "enter", "part", "history", "rooms", "ping", "pong", "nope",
        ]);
        let key = prop::sample::select(vec![
            "nick", "to", "text", "rooms", "resume", "room", "since", "epoch", "id", "before",
            "limit", "other", "type",
        ]);
        let value = prop_oneof![
            4 => prop::sample::select(vec!["bob", "", "é ✓", "a\\\"b", "x\\n"])
                .prop_map(|v| format!("\"{v}\"")),
            2 => prop::collection::vec("[a-c]{0,3}", 0..3).prop_map(|v| {
                let items: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
                format!("[{}]", items.join(", "))
            }),
            2 => "[0-9]{1,3}",
            1 => Just("null".to_owned()),
            1 => piece(),
        ];
        let tail = prop_oneof![4 => Just(String::new()), 1 => piece()];
        (
            kind,
            prop::collection::vec((key, value, " ?"), 0..5),
            any::<prop::sample::Index>(),
            tail,
        )
            .prop_map(|(kind, members, at, tail)| {
                let mut inner: Vec<String> = members
                    .iter()
                    .map(|(k, v, ws)| format!("{ws}\"{k}\"{ws}:{ws}{v}"))
                    .collect();
                inner.insert(at.index(inner.len() + 1), format!("\"type\":\"{kind}\""));
                format!("{{{}}}{}", inner.join(","), tail)
            })
    }

    /// The agreement tests below prove something only if the objects
    /// they generate are often plain enough to scan.
    #[test]
    fn generated_objects_are_often_scanned() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = object();
        let scanned = (0..2000)
            .filter(|_| {
                let text = strategy.new_tree(&mut runner).unwrap().current();
                scan(&text).is_some()
            })
            .count();
        assert!(scanned >= 100, "only {scanned} of 2000 scanned");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Whatever the scanner accepts, serde_json makes the same frame of.
        #[test]
        fn the_scanner_agrees_with_serde(text in object()) {
            if let Some(frame) = scan(&text) {
                prop_assert_eq!(Some(frame), serde(&text), "{}", text);
            }
        }

        /// Same for arbitrary sequences of pieces.
        #[test]
        fn the_scanner_agrees_on_any_pieces(pieces in prop::collection::vec(piece(), 0..24)) {
            let text = pieces.concat();
            if let Some(frame) = scan(&text) {
                prop_assert_eq!(Some(frame), serde(&text), "{}", text);
            }
        }

        /// Every frame chatproto itself writes is plain enough to scan.
        #[test]
        fn frames_we_write_are_scanned(
            room in proptest::option::of("[a-z]{1,8}"),
            to in prop::collection::vec("[a-z]{1,8}", 0..4),
            text in "[ !#-\\[\\]-~é]{0,40}",
            id in proptest::option::of("[0-9]{1,5}"),
        ) {
            let frame = ClientFrame::Msg { room, to, text, id };
            let json = serde_json::to_string(&frame).unwrap();
            prop_assert_eq!(scan(&json), Some(frame));
        }
    }
}
