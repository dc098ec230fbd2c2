//! Every line of `nick_vectors.txt` checked against chatproto's nickname rule, the
//! vectors quoted in PROTOCOL.md section 3 checked to be lines of that file,
//! its look-alike table checked against the code, and properties of the
//! Unicode rule over random input.

use chatproto::{
    nick_key, nick_skeleton, normalize_nick, validate_nick, NickError, NickRule, MAX_NICK_LEN,
};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

const FILE: &str = include_str!("nick_vectors.txt");
const PROTOCOL: &str = include_str!("../../PROTOCOL.md");

/// The input with every `\u{HEX}` replaced by its character. No other
/// escape exists, so a lone backslash is a mistake in the file.
fn unescape(field: &str, line: usize) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let close = tail.find('}');
        let hex = close
            .filter(|_| tail.starts_with("\\u{"))
            .map(|close| &tail[3..close]);
        let c = hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .unwrap_or_else(|| panic!("line {line}: bad escape in {field:?}"));
        out.push(c);
        rest = &tail[close.unwrap_or_default() + 1..];
    }
    out.push_str(rest);
    out
}

/// The reason names of the vectors file.
fn reason(e: &NickError) -> &'static str {
    match e {
        NickError::Empty => "empty",
        NickError::TooLong(_) => "too_long",
        NickError::BadChar(_) => "bad_char",
        NickError::Reserved(_) => "reserved",
        NickError::Invisible(_) => "invisible",
        NickError::Unassigned(_) => "unassigned",
        NickError::Compatibility { .. } => "compatibility",
        NickError::NotAllowed(_) => "not_allowed",
        NickError::Restricted(_) => "restricted",
        NickError::LeadingMark(_) => "leading_mark",
        NickError::TooManyMarks => "too_many_marks",
        NickError::MixedScript(_) => "mixed_script",
        _ => "unknown",
    }
}

struct Vector {
    line: usize,
    kind: &'static str,
    a: String,
    b: String,
}

fn vectors() -> Vec<Vector> {
    FILE.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, text)| {
            let line = n + 1;
            let f: Vec<&str> = text.split('\t').collect();
            assert_eq!(f.len(), 3, "line {line}: {text:?}");
            // Spaces are written \u{20}, so the fields can be quoted in
            // PROTOCOL.md aligned with spaces.
            assert!(!text.contains(' '), "line {line}: a literal space");
            Vector {
                line,
                kind: f[0],
                a: unescape(f[1], line),
                b: unescape(f[2], line),
            }
        })
        .collect()
}

fn check(v: &Vector) {
    let (line, a, b) = (v.line, &v.a, &v.b);
    let rule = if v.kind.ends_with("-ascii") {
        NickRule::Ascii
    } else {
        NickRule::Unicode
    };
    match v.kind {
        "accept" | "accept-ascii" => {
            assert!(b.nfc().eq(b.chars()), "line {line}: {b:?} is not NFC");
            assert_eq!(
                normalize_nick(a, rule).as_ref(),
                Ok(b),
                "line {line}: {a:?}"
            );
            // What the server stores is accepted again as it is.
            assert_eq!(normalize_nick(b, rule).as_ref(), Ok(b), "line {line}");
        }
        "refuse" | "refuse-ascii" => {
            let got = normalize_nick(a, rule);
            assert_eq!(
                got.as_ref().map_err(reason),
                Err(b.as_str()),
                "line {line}: {a:?} gave {got:?}"
            );
        }
        "same" => assert_eq!(nick_key(a), nick_key(b), "line {line}: {a:?} {b:?}"),
        "collide" => assert!(
            nick_key(a) == nick_key(b) || nick_skeleton(a) == nick_skeleton(b),
            "line {line}: {a:?} {b:?} neither same key nor same skeleton"
        ),
        "distinct" => {
            assert_ne!(nick_key(a), nick_key(b), "line {line}: same key");
            assert_ne!(
                nick_skeleton(a),
                nick_skeleton(b),
                "line {line}: {a:?} {b:?} same skeleton"
            );
        }
        kind => panic!("line {line}: unknown kind {kind}"),
    }
}

#[test]
fn every_vector_holds() {
    let vs = vectors();
    for v in &vs {
        check(v);
    }
    let count = |kind: &str| vs.iter().filter(|v| v.kind == kind).count();
    for kind in ["accept", "refuse", "same", "collide", "distinct"] {
        assert!(count(kind) >= 5, "only {} {kind} vectors", count(kind));
    }
    for kind in ["accept-ascii", "refuse-ascii"] {
        assert!(count(kind) >= 2, "only {} {kind} vectors", count(kind));
    }
}

#[test]
fn every_refusal_reason_has_a_vector() {
    let vs = vectors();
    for reason in [
        "empty",
        "too_long",
        "bad_char",
        "reserved",
        "invisible",
        "unassigned",
        "compatibility",
        "not_allowed",
        "restricted",
        "leading_mark",
        "too_many_marks",
        "mixed_script",
    ] {
        assert!(
            vs.iter()
                .any(|v| v.kind.starts_with("refuse") && v.b == reason),
            "no vector refuses for {reason}"
        );
    }
}

/// Section 3 of PROTOCOL.md quotes vectors in a `text` block, fields
/// aligned with spaces: each must be a line of the file.
#[test]
fn protocol_quotes_real_vectors() {
    let start = PROTOCOL.find("\n## 3. ").expect("section 3");
    let section = &PROTOCOL[start..];
    let section = &section[..section.find("\n## 4. ").expect("section 4")];
    let block = section.split("```text\n").nth(1).expect("a text block");
    let block = &block[..block.find("```").expect("end of block")];
    let lines: Vec<Vec<&str>> = FILE.lines().map(|l| l.split('\t').collect()).collect();
    let mut quoted = 0;
    for row in block.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert!(lines.contains(&fields), "PROTOCOL.md quotes {row:?}");
        quoted += 1;
    }
    assert!(quoted >= 20, "only {quoted} vectors quoted");
}

/// The table of look-alikes in PROTOCOL.md section 3: each nickname has
/// the skeleton shown, and each name it refuses collides with it (the
/// same skeleton, or the same person).
#[test]
fn protocol_look_alike_table_is_right() {
    let start = PROTOCOL.find("\n## 3. ").expect("section 3");
    let section = &PROTOCOL[start..];
    let section = &section[..section.find("\n## 4. ").expect("section 4")];
    let head = "| nickname | skeleton | refused while it is online |";
    let table = &section[section.find(head).expect("the look-alike table")..];
    let mut rows = 0;
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        // `\|` is a pipe inside a cell.
        let row = row.replace("\\|", "\u{1}");
        let cells: Vec<String> = row.split('|').map(|c| c.replace('\u{1}', "|")).collect();
        let quoted = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let (nick, skeleton) = (&quoted(&cells[1])[0], &quoted(&cells[2])[0]);
        assert_eq!(&nick_skeleton(nick), skeleton, "{nick}");
        let refused = quoted(&cells[3]);
        assert!(!refused.is_empty(), "{nick}: nothing refused");
        for other in refused {
            assert!(
                nick_skeleton(&other) == *skeleton || nick_key(&other) == nick_key(nick),
                "{nick} does not collide with {other}"
            );
        }
        rows += 1;
    }
    assert!(rows >= 10, "only {rows} rows");
}

/// The iota subscript folds with its capital forms when nothing follows it
/// (what `key_ignores_case` leaves out is only a mark after it).
#[test]
fn iota_subscript_folds_with_its_capitals() {
    let key = nick_key("\u{1fa0}"); // ᾠ
    assert_eq!(key, nick_key("\u{1f68}\u{399}")); // ὨΙ, its upper case
    assert_eq!(key, nick_key("\u{1fa8}")); // ᾨ, its title case
    assert_eq!(key, nick_key("\u{3c9}\u{313}\u{345}")); // decomposed
}

/// The skeleton of the ASCII-only protocol: lowercase, then `rn` → `m`,
/// `vv` → `w`, `0` → `o`, `1` `i` `|` → `l`, `5` → `s`.
fn old_table(nick: &str) -> String {
    let lower = nick.to_ascii_lowercase();
    let mut out = String::new();
    let mut rest = lower.as_str();
    while let Some(c) = rest.chars().next() {
        let (push, len) = if rest.starts_with("rn") {
            ('m', 2)
        } else if rest.starts_with("vv") {
            ('w', 2)
        } else {
            let mapped = match c {
                '0' => 'o',
                '1' | 'i' | '|' => 'l',
                '5' => 's',
                c => c,
            };
            (mapped, c.len_utf8())
        };
        out.push(push);
        rest = &rest[len..];
    }
    out
}

/// A letter whose skeleton folds again collides with what it looks like:
/// the small Cherokee `ꮍ` folds to `Ꮍ`, whose skeleton is `Y`, and `y`
/// was a third skeleton (found by `skeleton_is_a_fixed_point`).
#[test]
fn a_skeleton_that_folds_again_is_folded() {
    assert_eq!(nick_skeleton("\u{ab8d}"), nick_skeleton("y"));
    assert_eq!(nick_skeleton("\u{13bd}"), nick_skeleton("Y"));
    assert_eq!(nick_skeleton("\u{ab8d}ob"), nick_skeleton("yob"));
}

/// Characters that exercise the rule: ASCII, accented and combining Latin,
/// other scripts, confusables, invisibles and symbols.
fn interesting() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('!', '~'),
        2 => proptest::sample::select(
            "éèëÉłŁßẞıİσςΣдДоОаАрɑ小明たター민ᄆ\u{1175}ΩΒ٥৪ｌＡﬁ²"
                .chars()
                .collect::<Vec<_>>()
        ),
        2 => proptest::sample::select(vec![
            '\u{300}', '\u{301}', '\u{307}', '\u{308}', '\u{323}', '\u{34f}', '\u{200b}',
            '\u{200d}', '\u{202e}', '\u{3164}', '\u{fe0f}', ' ', '\u{a0}', '\u{1f600}',
        ]),
        1 => any::<char>(),
    ]
}

proptest! {
    /// Normalizing is total and idempotent, keeps to the limits, and what it
    /// gives has the key and skeleton of what was typed.
    #[test]
    fn normalizing_is_idempotent(chars in proptest::collection::vec(interesting(), 0..40)) {
        let typed: String = chars.into_iter().collect();
        if let Ok(nick) = normalize_nick(&typed, NickRule::Unicode) {
            prop_assert!(nick.nfc().eq(nick.chars()));
            prop_assert!((1..=MAX_NICK_LEN).contains(&nick.chars().count()));
            prop_assert_eq!(normalize_nick(&nick, NickRule::Unicode), Ok(nick.clone()));
            prop_assert_eq!(nick_key(&nick), nick_key(&typed));
            prop_assert_eq!(nick_skeleton(&nick), nick_skeleton(&typed));
            let decomposed: String = nick.nfd().collect();
            prop_assert_eq!(nick_key(&decomposed), nick_key(&nick));
        }
        // The ASCII rule is a subset of the Unicode rule.
        if validate_nick(&typed).is_ok() {
            prop_assert_eq!(normalize_nick(&typed, NickRule::Ascii), Ok(typed.clone()));
            prop_assert_eq!(normalize_nick(&typed, NickRule::Unicode), Ok(typed.clone()));
        }
    }

    /// A skeleton is its own skeleton.
    #[test]
    fn skeleton_is_a_fixed_point(chars in proptest::collection::vec(interesting(), 0..20)) {
        let skeleton = nick_skeleton(&chars.into_iter().collect::<String>());
        prop_assert_eq!(nick_skeleton(&skeleton), skeleton);
    }

    /// Valid ASCII nicknames collide as they did under the table of the
    /// ASCII-only protocol, plus `` ` `` with `'`: UTS #39 turns those into
    /// `'` and `%` into `°/₀`, which no other ASCII character gives.
    #[test]
    fn ascii_skeleton_is_the_old_table(nick in "[!-~&&[^@:,\"\\\\]]{0,20}") {
        let uts39 = nick.replace('`', "'").replace('%', "°/₀");
        prop_assert_eq!(nick_skeleton(&nick), old_table(&uts39));
    }

    /// A key ignores case: a string of characters the rule accepts and its
    /// upper- and lower-case forms are the same person, except through
    /// dotless ı (documented). Characters the rule refuses are left out:
    /// the folding table is older than the standard library's, so a few
    /// new scripts' case pairs (refused) fold apart. Greek letters with an
    /// iota subscript (U+0345 in their decomposition) are left out too:
    /// upper-casing turns the subscript into a capital iota, a letter of
    /// its own, so a mark typed after it moves from the vowel to the iota
    /// (`ᾢ` becomes `ὨῚ`): another text, not the same one in capitals.
    #[test]
    fn key_ignores_case(chars in proptest::collection::vec(interesting(), 1..20)) {
        let accepted = |c: char| {
            ('\u{300}'..='\u{36F}').contains(&c)
                || normalize_nick(&c.to_string(), NickRule::Unicode).is_ok()
        };
        let subscript = |c: char| c.to_string().nfd().any(|d| d == '\u{345}');
        let nick: String = chars
            .into_iter()
            .filter(|&c| c != 'ı' && accepted(c) && !subscript(c))
            .collect();
        let upper = nick.to_uppercase();
        prop_assert_eq!(nick_key(&nick.to_lowercase()), nick_key(&upper));
        prop_assert_eq!(nick_key(&nick_key(&nick)), nick_key(&nick));
    }
}

/// A name typed as two words is told about its space in words; other
/// invisible characters are named by code point (they cannot be shown).
#[test]
fn a_space_is_said_to_be_one_and_other_invisible_characters_by_code() {
    for rule in [NickRule::Ascii, NickRule::Unicode] {
        let space = normalize_nick("bob smith", rule).unwrap_err().to_string();
        assert!(
            space.starts_with("the nickname contains a space"),
            "{space}"
        );
        assert!(!space.contains("U+"), "{space}");
    }
    let zwsp = normalize_nick("bob\u{200b}", NickRule::Unicode).unwrap_err();
    assert!(zwsp.to_string().contains("U+200B"), "{zwsp}");
    let tab = normalize_nick("bob\tsmith", NickRule::Ascii).unwrap_err();
    assert!(tab.to_string().contains("U+0009"), "{tab}");
}
