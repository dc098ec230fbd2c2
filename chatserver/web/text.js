// Turning untrusted strings into DOM nodes, and the small formatting rules
// (nick colours, times) every part of the page shares.
//
// Nothing here ever parses HTML: text becomes text nodes, so markup in a
// message is shown as typed. Characters that could hide or reorder what is
// shown (controls, bidi overrides, zero-width characters) are shown as a
// visible escape, `\u{202e}`, as chatproto::escape_control does for the
// terminal. Newlines and tabs stay: the page shows them as they are.

// chatproto::is_unsafe_char, less '\n' and '\t' (safe in a page).
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'gu');

/** `text` with each unsafe character replaced by a visible escape. */
export function escapeControl(text) {
  return text.replace(UNSAFE_ALL, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}

/**
 * A fragment showing `text` safely: plain runs as text nodes, each unsafe
 * character as `<span class="ctl">\u{..}</span>`, so it stands out.
 */
export function safeText(text) {
  const frag = document.createDocumentFragment();
  if (!UNSAFE.test(text)) {
    frag.append(document.createTextNode(text));
    return frag;
  }
  let run = '';
  for (const c of text) {
    if (UNSAFE.test(c)) {
      if (run) frag.append(document.createTextNode(run));
      run = '';
      const span = document.createElement('span');
      span.className = 'ctl';
      span.textContent = escapeControl(c);
      span.title = `control character U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
      frag.append(span);
    } else {
      run += c;
    }
  }
  if (run) frag.append(document.createTextNode(run));
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
  // FNV-1a over the lower-cased nick, as the terminal client does, so
  // `Alice` and `alice` (one person) get one colour.
  let hash = 0x811c9dc5;
  for (const b of new TextEncoder().encode(nick.toLowerCase())) {
    hash ^= b;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `nc${hash % NICK_COLOURS}`;
}

/** A clickable nickname: a button that addresses `nick` when pressed. */
export function nickButton(nick, extraClass) {
  const b = document.createElement('button');
  b.type = 'button';
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
