//! How the full-screen client looks: the styles of each part, with colour
//! or (under `NO_COLOR`) with bold, dim and reverse video only, and a
//! colour per nickname.
//!
//! Nick colours come from a palette without red (the error colour), black
//! and white, in two rows of five hues: the first five people get five
//! different hues, the next five the other shade of each, and only then
//! are colours shared. Within that, each nickname starts from the hue its
//! name hashes to, so the same people tend to get the same colours; once
//! given, a nickname keeps its colour for the session. Past
//! [`MAX_COLOURED`] nicknames (or for one longer than a nickname can be),
//! a nickname gets the colour its name hashes to, the same each time, and
//! nothing is kept for it.

use std::collections::HashMap;

use chatproto::{nick_key, MAX_NICK_LEN};
use ratatui::style::{Color, Modifier, Style};

/// The nickname palette: the plain and bright colours but red, black and
/// white; five hues, then the other shade of each (the darker blue, hard
/// to read on black, in the second row).
pub const PALETTE: [Color; 10] = [
    Color::Green,
    Color::Yellow,
    Color::LightBlue,
    Color::Magenta,
    Color::Cyan,
    Color::LightGreen,
    Color::LightYellow,
    Color::Blue,
    Color::LightMagenta,
    Color::LightCyan,
];

/// Hues in a row of [`PALETTE`].
const HUES: usize = 5;

/// The colour of errors, which no nickname gets.
pub const ERROR: Color = Color::Red;

/// Styles, with or without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// Colours allowed (no `NO_COLOR`, not `TERM=dumb`).
    pub color: bool,
}

impl Theme {
    fn dim(self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }

    /// Times, presence, history, messages still being sent.
    pub fn quiet(self) -> Style {
        self.dim()
    }

    /// Errors.
    pub fn error(self) -> Style {
        if self.color {
            Style::default().fg(ERROR)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }

    /// A line that mentions us or is written to us only: its text.
    pub fn mention(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// The time of such a line: a mark in the margin.
    pub fn mention_mark(self) -> Style {
        let s = Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD);
        if self.color {
            s.fg(Color::Yellow)
        } else {
            s
        }
    }

    /// A server notice.
    pub fn notice(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// An action's text (`* alice waves`).
    pub fn action(self) -> Style {
        Style::default().add_modifier(Modifier::ITALIC)
    }

    /// The status bar.
    pub fn bar(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// A room in the status bar that mentions us or wrote to us.
    pub fn bar_alert(self) -> Style {
        let s = self.bar().add_modifier(Modifier::BOLD);
        if self.color {
            s.fg(Color::Yellow)
        } else {
            s.add_modifier(Modifier::UNDERLINED)
        }
    }

    /// The current room in the status bar.
    pub fn bar_current(self) -> Style {
        self.bar().add_modifier(Modifier::BOLD)
    }

    /// The prompt before the line being typed.
    pub fn prompt(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// A hint shown in place of the typed line.
    pub fn hint(self) -> Style {
        self.dim()
    }

    /// A nickname, coloured as `colour` says (bold when it is ours).
    pub fn nick(self, colour: Color, mine: bool) -> Style {
        let s = if self.color {
            Style::default().fg(colour)
        } else {
            Style::default()
        };
        if mine {
            s.add_modifier(Modifier::BOLD)
        } else {
            s
        }
    }
}

/// Nicknames given a colour of their own at most: a server naming ever new
/// ones (each message from another) grew the map without end.
pub const MAX_COLOURED: usize = 1024;

/// A colour per nickname, kept apart. See the [module docs](self).
#[derive(Debug, Default)]
pub struct NickColours {
    by_key: HashMap<String, usize>,
    used: [usize; PALETTE.len()],
}

impl NickColours {
    /// The colour of `nick`, choosing one the first time.
    pub fn colour(&mut self, nick: &str) -> Color {
        // Longer than any nickname (a bad server's): its hashed colour, not
        // even folded first, which would cost that at every draw.
        if nick.chars().nth(MAX_NICK_LEN).is_some() {
            return PALETTE[hash(nick) % HUES];
        }
        let key = nick_key(nick);
        if let Some(&i) = self.by_key.get(&key) {
            return PALETTE[i];
        }
        let preferred = hash(&key) % HUES;
        if self.by_key.len() >= MAX_COLOURED {
            return PALETTE[preferred];
        }
        let least = *self.used.iter().min().unwrap_or(&0);
        // The first row, from the preferred hue on, then the second.
        let i = (0..PALETTE.len())
            .map(|k| (k / HUES) * HUES + (preferred + k) % HUES)
            .find(|&i| self.used[i] == least)
            .unwrap_or(preferred);
        self.used[i] += 1;
        self.by_key.insert(key, i);
        PALETTE[i]
    }

    /// Whether `nick` has a colour yet.
    #[cfg(test)]
    pub fn has(&self, nick: &str) -> bool {
        self.by_key.contains_key(&nick_key(nick))
    }
}

/// FNV-1a: small, and the same on every platform and Rust version.
fn hash(s: &str) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_a_nick_gets_its_hashed_colour_and_nothing_is_kept() {
        let mut c = NickColours::default();
        for i in 0..3 * MAX_COLOURED {
            c.colour(&format!("user{i}"));
        }
        assert_eq!(c.by_key.len(), MAX_COLOURED);
        let late = "Someone-New";
        assert_eq!(c.colour(late), PALETTE[hash(&nick_key(late)) % HUES]);
        assert!(!c.has(late));
        let long = "x".repeat(MAX_NICK_LEN + 1);
        let mut c = NickColours::default();
        assert_eq!(c.colour(&long), PALETTE[hash(&long) % HUES]);
        assert!(!c.has(&long));
        assert!(c.by_key.is_empty());
    }

    #[test]
    fn different_nicks_get_different_colours_until_the_palette_is_used_up() {
        let mut c = NickColours::default();
        let nicks: Vec<String> = (0..PALETTE.len()).map(|i| format!("user{i}")).collect();
        let colours: std::collections::HashSet<Color> = nicks.iter().map(|n| c.colour(n)).collect();
        assert_eq!(colours.len(), PALETTE.len());
        // The first five are five hues: one of each pair of shades.
        let mut c = NickColours::default();
        let first: Vec<Color> = ["ann", "ben", "cat", "dan", "eve"]
            .iter()
            .map(|n| c.colour(n))
            .collect();
        for (a, b) in [
            (Color::Green, Color::LightGreen),
            (Color::Yellow, Color::LightYellow),
            (Color::Blue, Color::LightBlue),
            (Color::Magenta, Color::LightMagenta),
            (Color::Cyan, Color::LightCyan),
        ] {
            assert_eq!(
                first.iter().filter(|&&x| x == a || x == b).count(),
                1,
                "{first:?}"
            );
        }
        // Stable, and the same person whatever the case.
        assert_eq!(c.colour("user3"), c.colour("USER3"));
        assert!(!PALETTE.contains(&ERROR));
        assert!(!PALETTE.contains(&Color::LightRed));
    }

    #[test]
    fn no_colour_means_no_colour() {
        let plain = Theme { color: false };
        for s in [
            plain.nick(Color::Green, false),
            plain.error(),
            plain.bar_alert(),
            plain.mention_mark(),
        ] {
            assert_eq!(s.fg, None, "{s:?}");
            assert_eq!(s.bg, None, "{s:?}");
        }
        assert_ne!(plain.error(), Style::default(), "errors still stand out");
    }
}
