// The page around the conversation: what is remembered between visits,
// the connection status, the error line by the input, the join screen,
// the drawers of a narrow screen and the window title.

import { isolated } from './text.js';

const $ = (id) => document.getElementById(id);

/** localStorage under `chat.`, where it works (private modes may refuse). */
export const saved = {
  get(key) {
    try {
      return localStorage.getItem(`chat.${key}`);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      localStorage.setItem(`chat.${key}`, value);
    } catch {
      // Remembering is a convenience.
    }
  },
};

/**
 * sessionStorage under `chat.`: this tab's own, kept across a reload and
 * forgotten with the tab (the session token: another tab is another session).
 */
export const tabSaved = {
  get(key) {
    try {
      return sessionStorage.getItem(`chat.${key}`);
    } catch {
      return null;
    }
  },
  set(key, value) {
    try {
      if (value === null) sessionStorage.removeItem(`chat.${key}`);
      else sessionStorage.setItem(`chat.${key}`, value);
    } catch {
      // Remembering is a convenience.
    }
  },
};

/**
 * Writes something of the tab's to `tabSaved` a moment after it changes
 * (a burst of changes writes it once, not once each), and at once when
 * the page goes away. A subclass gives `write()`.
 */
export class TabKeeper {
  constructor(ms) {
    this.ms = ms;
    this.timer = null;
    // A phone may freeze or discard a hidden tab without a pagehide.
    window.addEventListener('pagehide', () => {
      if (this.timer !== null) this.save();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden' && this.timer !== null) this.save();
    });
  }

  /** Keep it now. */
  save() {
    this.cancel();
    this.write();
  }

  /** Keep it in a moment. */
  soon() {
    this.timer ??= setTimeout(() => this.save(), this.ms);
  }

  /** Keep nothing more (what is kept stays as it is). */
  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}

const STATUS_TEXT = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'disconnected',
  elsewhere: 'continued elsewhere',
};

/**
 * Show the connection's state: `#status` says it in a word (and
 * `data-state`), `#status-detail` when the next attempt is; before the
 * first join the join screen says it too.
 */
export function showStatus(state, detail, joinedOnce) {
  const s = $('status');
  s.textContent = STATUS_TEXT[state];
  s.dataset.state = state;
  $('status-detail').textContent = detail;
  $('retry').hidden = state !== 'reconnecting';
  document.body.dataset.connection = state;
  // Away from the server, the list is who was online when it left.
  const away = joinedOnce && state !== 'connected';
  $('people-heading').firstChild.textContent = away ? 'Was online ' : 'Online ';
  let joinText = '';
  if (!joinedOnce && state === 'reconnecting') joinText = `cannot reach the server; ${detail}`;
  else if (!joinedOnce && state !== 'offline') joinText = STATUS_TEXT[state];
  $('join-status').textContent = joinText;
}

/**
 * Another tab, window or connection continues the conversation (the
 * server said `resumed_elsewhere`): `#elsewhere`, with its button, above
 * the input, and the input out of use meanwhile (what it holds stays).
 */
export function showElsewhere(on) {
  const notice = $('elsewhere');
  const hadFocus = $('composer').contains(document.activeElement);
  notice.hidden = !on;
  $('input').disabled = on;
  $('send').disabled = on;
  // A disabled input loses the focus: the notice takes it, not its
  // button, which an Enter meant for a message would press.
  if (on && hadFocus) notice.focus();
}

/**
 * The log's line for the error shown by the input, if it has one: `{ li,
 * shown }`. It is out of sight while that error shows, so that the error
 * is seen once (on a phone the two were one above the other), and comes
 * back into sight when the error goes (`shown()` then) to keep the
 * record. It stays in the accessibility tree meanwhile (`.said-above`
 * only clips it): `hidden`, then shown again, it was a line new to the
 * log, a live region, and a screen reader said it a second time.
 *
 * Heard once, too: the error above the input is an alert, and the line
 * is `aria-live="off"`, a region of its own that says nothing, so the
 * log (polite) does not say it as well when it comes. It stays so: a
 * region turned from off to polite is said as a new one (Chromium's
 * LIVE_REGION_CREATED), which would say it when it comes back into sight.
 */
let logged = null;

/**
 * The error by the input when it was said in a room (a line refused
 * there): `{ room, code, message, inLog }`. It is that room's: put away
 * (`away`, with the input's line then) while another room is shown, and
 * shown again on coming back if the input still holds that line. An
 * error of no room (a command mistyped, the connection) stays.
 */
let ofRoom = null;
let away = null;

/**
 * The latest error, shown by the input (`#errors`, one `.error[data-code]`);
 * `inLog`: its line in the log (see `logged`), or null; `room`: the room
 * it was said in, or null (see `ofRoom`).
 */
export function showError(code, message, inLog = null, room = null) {
  backToLog();
  away = null;
  ofRoom = room ? { room, code, message, inLog } : null;
  const p = document.createElement('p');
  p.className = code === 'unavailable' ? 'error unavailable' : 'error';
  p.dataset.code = code;
  if (code === 'unavailable') {
    const strong = document.createElement('strong');
    strong.textContent = 'Not sent: ';
    p.append(strong);
  }
  p.append(isolated('span', 'text', message));
  $('errors').replaceChildren(p);
  if (inLog) {
    inLog.li.classList.add('said-above');
    inLog.li.setAttribute('aria-live', 'off');
    logged = inLog;
  }
}

/**
 * Clear the error by the input; `all`: even `unavailable`, which a line
 * sent leaves until it gets through (or is refused in its turn).
 */
export function clearErrors(all) {
  const errors = $('errors');
  if (all || !errors.querySelector('.unavailable')) {
    errors.replaceChildren();
    backToLog();
    ofRoom = null;
    away = null;
  }
}

/**
 * `room` is shown now: an error said in another room goes from by the
 * input (its line in the log comes back into sight there), and one put
 * away from `room` comes back if the input holds the line it had then.
 */
export function errorsFollow(room) {
  const line = $('input').value;
  if (ofRoom && ofRoom.room !== room) {
    const put = { ...ofRoom, line };
    clearErrors(true);
    away = put;
  } else if (away && away.room === room) {
    const { code, message, inLog, line: then } = away;
    away = null;
    if (line === then) showError(code, message, inLog, room);
  }
}

/** `room` was left: its error goes, shown or put away. */
export function forgetErrorsOf(room) {
  if (ofRoom?.room === room) clearErrors(true);
  if (away?.room === room) away = null;
}

/** The error by the input went: its line in the log shows again. */
function backToLog() {
  if (!logged) return;
  const { li, shown } = logged;
  logged = null;
  li.classList.remove('said-above');
  shown();
}

/** Back to the join screen, with why (`#join-error[data-code]`) if anything went wrong. */
export function showJoin(code, message) {
  $('chat').hidden = true;
  $('join-screen').hidden = false;
  $('leave').hidden = true;
  const err = $('join-error');
  err.hidden = !message;
  err.dataset.code = code || '';
  err.replaceChildren(isolated('span', 'text', message || ''));
  $('nick').focus();
}

/** The join succeeded: show the conversation. */
export function showChat() {
  $('join-screen').hidden = true;
  $('chat').hidden = false;
  $('leave').hidden = false;
}

export function setTitle(unread, room) {
  document.title = `${unread ? `(${unread}) ` : ''}${room ? `#${room} – ` : ''}chat`;
}

/** Each drawer, the button that opens it, and its own Close button. */
const DRAWERS = [
  ['sidebar', 'rooms-toggle', 'rooms-close'],
  ['people', 'people-toggle', 'people-close'],
];

/** Where the lists are drawers (style.css says the same width). */
const NARROW = window.matchMedia('(max-width: 760px)');

/**
 * A closed drawer is out of reach (`inert`): Tab does not stop in it,
 * whatever its own styles show. On a wide screen the lists are columns,
 * always there. Behind an open one, the scrim dims the page, and the page
 * there (the top bar, the conversation) is out of reach as well: the
 * keyboard stays in the drawer as a finger does (what that page says
 * meanwhile is said again beside it: echoBehind).
 */
function syncDrawers() {
  let open = false;
  for (const [id] of DRAWERS) {
    const closed = !$(id).classList.contains('open');
    $(id).inert = NARROW.matches && closed;
    open ||= NARROW.matches && !closed;
  }
  $('scrim').classList.toggle('open', open);
  document.querySelector('.topbar').inert = open;
  $('conversation').inert = open;
  // The page speaks for itself again.
  if (!open) {
    $('behind').replaceChildren();
    $('behind-alert').replaceChildren();
  }
}

/** Lines kept in #behind or #behind-alert: the newest, said already. */
const BEHIND_KEPT = 10;

/** Say each of `texts` in live region `region`, as a line of its own. */
function sayIn(region, texts) {
  for (const t of texts) {
    const p = document.createElement('p');
    p.textContent = t;
    region.append(p);
  }
  while (region.childElementCount > BEHIND_KEPT) region.firstElementChild.remove();
}

/** What `el` shows, as one line. */
const shownText = (el) => el.innerText.replace(/\s+/g, ' ').trim();

/**
 * Behind an open drawer the page is inert, and so out of the
 * accessibility tree with its live regions: the connection's state
 * (`#status`), the log, the error by the input and the notice that the
 * conversation continued elsewhere would go unheard until the drawer
 * closes ('reconnecting…' among them). What each would say meanwhile is
 * said again in #behind (polite) or #behind-alert, beside the drawers and
 * never inert; while the page is in reach they say nothing, not to say
 * it twice.
 */
function echoBehind() {
  const status = $('status');
  const errors = $('errors');
  const elsewhere = $('elsewhere');
  const log = $('messages');
  // A status says a change (it is set again, the same, as the next
  // attempt nears).
  let lastStatus = status.textContent;
  const echo = new MutationObserver((records) => {
    const changed = status.textContent !== lastStatus;
    lastStatus = status.textContent;
    // In reach, the page says it itself (the top bar and the
    // conversation are inert together).
    if (!$('conversation').inert) return;
    const polite = [];
    const assertive = [];
    if (changed && lastStatus) polite.push(lastStatus);
    if (records.some((r) => errors.contains(r.target) && r.addedNodes.length)) {
      if (shownText(errors)) assertive.push(shownText(errors));
    }
    if (records.some((r) => r.target === elsewhere) && !elsewhere.hidden) {
      assertive.push(shownText(elsewhere));
    }
    // The log's new lines: those added at the end of the room shown, not
    // a page of older ones put above (nor another room's, unseen).
    const added = new Set(
      records.filter((r) => log.contains(r.target)).flatMap((r) => [...r.addedNodes]),
    );
    for (const n of added) {
      if (!(n instanceof Element) || !n.matches('.events > li, .pending-list > li')) continue;
      // Nor a line the log itself does not say (a refused line's
      // error: echoed once, from above the input).
      if (!n.checkVisibility() || n.getAttribute('aria-live') === 'off') continue;
      let later = n.nextElementSibling;
      while (later && added.has(later)) later = later.nextElementSibling;
      if (!later) polite.push(shownText(n));
    }
    sayIn($('behind'), polite);
    sayIn($('behind-alert'), assertive);
  });
  echo.observe(status, { childList: true, characterData: true, subtree: true });
  echo.observe(errors, { childList: true, subtree: true });
  echo.observe(elsewhere, { attributes: true, attributeFilter: ['hidden'] });
  echo.observe(log, { childList: true, subtree: true });
}

/**
 * Where the focus goes when the open drawer closes, instead of the
 * button that opened it (see `focusOnClose`); null: that button.
 */
let closedTo = null;

/**
 * The drawer open now gives the focus to `el` when it closes, however it
 * is closed: the message input, once a `+` in the People drawer has put
 * a name in the line, which is then typed on.
 */
export function focusOnClose(el) {
  closedTo = el;
}

/**
 * Close the drawers. When the focus was inside one (Esc, its Close, a
 * room chosen in it), it goes back to the button that opened it, not to
 * the page (once the top bar it is in is in reach again); or where
 * `focusOnClose` said, the focus in the drawer or not (a tap beside it
 * took it away).
 */
export function closeDrawers() {
  let back = null;
  for (const [id, button] of DRAWERS) {
    const drawer = $(id);
    const wasOpen = drawer.classList.contains('open');
    const hadFocus = drawer.contains(document.activeElement);
    drawer.classList.remove('open');
    $(button).setAttribute('aria-expanded', 'false');
    if (wasOpen && NARROW.matches && (hadFocus || closedTo)) back = closedTo ?? $(button);
  }
  closedTo = null;
  syncDrawers();
  back?.focus();
}

/**
 * Open drawer `id` and move the focus into it: the current room, or its
 * first control after Close (which is there to leave it; a long online
 * list's is its Tab stop, the name last focused or the first in view), or
 * Close in a drawer with nothing else (no room, nobody online).
 */
function openDrawer(id, button, close) {
  closedTo = null;
  const drawer = $(id);
  drawer.classList.add('open');
  $(button).setAttribute('aria-expanded', 'true');
  syncDrawers();
  const target =
    drawer.querySelector('[aria-current="true"]') ??
    drawer.querySelector(
      'button:not([disabled]):not(.drawer-close):not([tabindex="-1"]), input, summary, [tabindex="0"]',
    ) ??
    $(close);
  target.focus();
}

/** On a narrow screen the room list and the online list are drawers. */
export function setUpDrawers() {
  for (const [id, button, close] of DRAWERS) {
    $(button).addEventListener('click', () => {
      const open = !$(id).classList.contains('open');
      closeDrawers();
      if (open) openDrawer(id, button, close);
    });
    // The page behind an open drawer, its button with it, is out of
    // reach: without Esc (a phone's screen reader), this closes it.
    $(close).addEventListener('click', closeDrawers);
  }
  NARROW.addEventListener('change', syncDrawers);
  syncDrawers();
  echoBehind();
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') closeDrawers();
  });
  // A tap outside an open drawer closes it: on a phone, a tap on the
  // scrim that dims the page behind it. A target no longer in the page
  // was taken out by its own click (a room's ×, gone with its room): it
  // was inside, but closest() cannot tell any more.
  document.addEventListener('click', (e) => {
    if (!e.target.isConnected) return;
    if (!e.target.closest('.drawer, .drawer-toggle')) closeDrawers();
  });
}
