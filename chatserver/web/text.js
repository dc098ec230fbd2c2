// Turning untrusted strings into DOM nodes, and the small formatting rules
// (nick colours, times) every part of the page shares.
//
// Nothing here ever parses HTML: text becomes text nodes, so markup in a
// message is shown as typed. Characters that could hide or reorder what is
// shown (controls, tabs, bidi overrides, zero-width characters) are shown
// as a visible escape, `\u{202e}` or `\t`, by the rule chatproto's
// escape_control uses for the terminal (chatproto/src/sanitize.rs), so the
// page and the terminal clients show the same text the same way. Only a
// newline stays as it is in the page: a line break (Shift+Enter types one).

import { nickKey } from './protocol.js';

// chatproto::is_unsafe_char: C0 and C1 controls (Rust's char::is_control),
// DEL, bidi controls, zero-width characters and line separators, blank
// fillers, the interlinear annotation marks and the noncharacters (the
// last two code points of each plane too).
const UNSAFE =
  /[\u0000-\u001f\u007f-\u009f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\u3164\ufdd0-\ufdef\ufeff\uffa0\ufff9-\ufffb\ufffe\uffff\u{1fffe}\u{1ffff}\u{2fffe}\u{2ffff}\u{3fffe}\u{3ffff}\u{4fffe}\u{4ffff}\u{5fffe}\u{5ffff}\u{6fffe}\u{6ffff}\u{7fffe}\u{7ffff}\u{8fffe}\u{8ffff}\u{9fffe}\u{9ffff}\u{afffe}\u{affff}\u{bfffe}\u{bffff}\u{cfffe}\u{cffff}\u{dfffe}\u{dffff}\u{efffe}\u{effff}\u{ffffe}\u{fffff}\u{10fffe}\u{10ffff}]/u;
const WHITE_SPACE = /\p{White_Space}/u; // Rust's char::is_whitespace
const SHORT_ESCAPES = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

/** Whether `c` (one code point) is unsafe to show raw (chatproto::is_unsafe_char). */
export function isUnsafeChar(c) {
  return UNSAFE.test(c);
}

/**
 * Whether `chars[i]` is a zero-width joiner or non-joiner inside a word,
 * as chatproto's is_joiner_in_word decides: between two visible
 * characters (not white space, not unsafe), at least one of them outside
 * ASCII. Emoji sequences (👨‍👩‍👧), Persian (می‌خواهم) and the Indic
 * scripts are written with it there; anywhere else it only hides a
 * difference, and is escaped.
 */
function isJoinerInWord(chars, i) {
  const c = chars[i];
  if ((c !== '\u200c' && c !== '\u200d') || i === 0 || i + 1 >= chars.length) return false;
  const before = chars[i - 1];
  const after = chars[i + 1];
  const visible = (x) => !WHITE_SPACE.test(x) && !isUnsafeChar(x);
  const ascii = (x) => x.codePointAt(0) < 0x80;
  return visible(before) && visible(after) && !(ascii(before) && ascii(after));
}

/** The escape shown for the unsafe character `c`: `\t`, or `\u{1b}` style. */
function escapeOf(c) {
  return SHORT_ESCAPES[c] ?? `\\u{${c.codePointAt(0).toString(16)}}`;
}

/**
 * `text` split into runs: `{ text }` shown as it is, `{ escaped, c }` for
 * each unsafe character. With `keepNewlines`, a newline is text.
 */
function runs(text, keepNewlines) {
  const chars = Array.from(text);
  const out = [];
  let run = '';
  chars.forEach((c, i) => {
    const shown = (keepNewlines && c === '\n') || !isUnsafeChar(c) || isJoinerInWord(chars, i);
    if (shown) {
      run += c;
      return;
    }
    if (run) out.push({ text: run });
    run = '';
    out.push({ escaped: escapeOf(c), c });
  });
  if (run) out.push({ text: run });
  return out;
}

/**
 * `text` with each unsafe character replaced by a visible escape: the
 * same string chatproto::escape_control gives.
 */
export function escapeControl(text) {
  if (!UNSAFE.test(text)) return text;
  return runs(text, false)
    .map((r) => r.text ?? r.escaped)
    .join('');
}

/**
 * A fragment showing `text` safely: plain runs as text nodes, each unsafe
 * character as `<span class="ctl">\t</span>` or `\u{..}`, so it stands
 * out; a newline is a line break.
 */
export function safeText(text) {
  const frag = document.createDocumentFragment();
  if (!UNSAFE.test(text)) {
    frag.append(document.createTextNode(text));
    return frag;
  }
  for (const r of runs(text, true)) {
    if (r.text !== undefined) {
      frag.append(document.createTextNode(r.text));
      continue;
    }
    const span = document.createElement('span');
    span.className = 'ctl';
    span.textContent = r.escaped;
    span.title = `control character U+${r.c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    frag.append(span);
  }
  return frag;
}

/** An element holding `text` safely, its direction isolated from the UI around it. */
export function isolated(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  el.dir = 'auto';
  el.append(safeText(text));
  return el;
}

const NICK_COLOURS = 12;

/** One of the `.nc0`..`.nc11` classes: the same for a nick everywhere and always. */
export function nickClass(nick) {
  // FNV-1a over the nick's key, so that `Alice` and `alice`, `Straße` and
  // `STRASSE` (one person) get one colour; for an ASCII nick the key is
  // its lower case, as the terminal client hashes.
  let hash = 0x811c9dc5;
  for (const b of new TextEncoder().encode(nickKey(nick))) {
    hash ^= b;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `nc${hash % NICK_COLOURS}`;
}

/**
 * A clickable nickname: a button that addresses `nick` when pressed. In
 * the message log (`inLog`) it is no Tab stop of its own, or Tab would
 * pass every message: the log is one stop, and the keyboard reaches a
 * nick in the online list, by @ and Tab in the input, or by /msg.
 */
export function nickButton(nick, extraClass, inLog) {
  const b = document.createElement('button');
  b.type = 'button';
  if (inLog) b.tabIndex = -1;
  b.className = `nick ${nickClass(nick)}${extraClass ? ' ' + extraClass : ''}`;
  b.dataset.nick = nick;
  b.title = `write to ${escapeControl(nick)} privately`;
  const bdi = document.createElement('bdi');
  bdi.append(safeText(nick));
  b.append(bdi);
  return b;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });

/**
 * The time column of a line the server has not stamped yet (one waiting
 * to be sent): as wide as a time of today's, which it holds unseen, and
 * showing `…`, so that the line starts where those stamped do.
 */
export function unstampedTime() {
  const el = document.createElement('span');
  el.className = 'unstamped';
  el.setAttribute('aria-hidden', 'true');
  el.textContent = timeFmt.format(new Date());
  return el;
}

/** A `<time>` for server time `ts` (Unix ms), in local time; the date too when not today. */
export function timeElement(ts) {
  const el = document.createElement('time');
  if (typeof ts !== 'number' || !Number.isFinite(ts)) return el;
  const d = new Date(ts);
  el.dateTime = d.toISOString();
  el.title = fullFmt.format(d);
  const today = new Date();
  el.textContent =
    d.toDateString() === today.toDateString()
      ? timeFmt.format(d)
      : `${dayFmt.format(d)} ${timeFmt.format(d)}`;
  return el;
}

/**
 * What a line of the log says after its time, in one box: lines wrap
 * under it, not under the time.
 */
export function body(...parts) {
  const span = document.createElement('span');
  span.className = 'body';
  span.append(...parts);
  return span;
}
