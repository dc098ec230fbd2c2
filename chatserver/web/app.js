// The page: wires the session (protocol state), the connection (socket,
// reconnects) and the views (messages, lists, input) together; joins and
// leaves, enters and leaves rooms. What the server says is shown by
// events.js, what the user types is carried out by commands.js.

import { Departures } from './away.js';
import {
  clearErrors,
  closeDrawers,
  errorsFollow,
  forgetErrorsOf,
  focusOnClose,
  saved,
  tabSaved,
  setTitle,
  setUpDrawers,
  showChat,
  showElsewhere,
  showError,
  showJoin,
  showStatus,
} from './chrome.js';
import { checkLength, runLine } from './commands.js';
import { Composer } from './composer.js';
import { Connection, socketUrl } from './connection.js';
import { serverEvents } from './events.js';
import { HistoryLoader } from './history.js';
import { MessageView } from './messages.js';
import { NoRoomLog } from './noroom.js';
import { decode as decodeFrame, LOBBY, nickKey, roomName } from './protocol.js';
import { Session } from './session.js';
import { OnlineList, RoomList, unreadWords } from './sidebar.js';
import { Tabs } from './tabs.js';
import { isolated } from './text.js';
import { savedUnread, UnreadKeeper } from './unread.js';
import { PendingKeeper, resendable, savedPending, showUnsent } from './unsent.js';

const $ = (id) => document.getElementById(id);

let session = null;
let conn = null;
let current = null;
let everJoined = false;
/** `/query NICK`: lines typed without recipients go to this nick only. */
let query = null;
/** Who asked for the room list, oldest first: 'cmd' | 'panel'. */
const roomsAsks = [];
/** Leavings not said yet (away.js). */
const departures = new Departures();

const view = new MessageView($('messages'), $('jump'), {
  olderWanted: (room, fromScroll) => backlog.older(room, fromScroll),
  canPage: (room) => Boolean(session?.joined && session.roomState(room)?.entered),
  trimmed: (room) => backlog.trimmed(room),
  notesTrimmed: (room) => backlog.notesTrimmed(room),
  typeHere: () => {
    $('input').focus({ preventScroll: true });
    return document.activeElement === $('input');
  },
});
/** What is said while in no room (noroom.js). */
const noRoom = new NoRoomLog($('messages'));
const backlog = new HistoryLoader(view, () => session, (room, text) => {
  view.toBottom();
  note(room, text, 'notice');
});
const roomList = new RoomList($('rooms'), $('room-input'), {
  select,
  part: (room) => partRoom(room, true),
  unreadChanged: () => {
    updateTitle();
    marks.soon();
  },
});
/**
 * This tab answers another that asks whether its token is in use here:
 * not while it shows that the session continued elsewhere (a reload of
 * the tab that holds it must not be turned away by this one).
 */
const tabs = new Tabs((token) => session?.token === token && $('elsewhere').hidden);
const online = new OnlineList($('online'), $('online-count'), $('people'));
const composer = new Composer($('composer'), $('input'), {
  submit: (line) => runLine(app, line),
  nicks: () => (session && current ? session.roster(current) : []),
  // The line changed: what was said of it (or of the one before) goes,
  // `unavailable` too (the log keeps it).
  typing: () => {
    clearErrors(true);
    checkLength(app);
  },
  addressed: (names) => online.mark(names),
});

/**
 * The page's state and actions, for what is carried out elsewhere
 * (commands.js, events.js): read when used, as they change.
 */
const app = {
  get session() {
    return session;
  },
  get conn() {
    return conn;
  },
  get current() {
    return current;
  },
  get query() {
    return query;
  },
  view,
  backlog,
  roomList,
  composer,
  departures,
  roomsAsks,
  note,
  say,
  sayLost,
  clearShown,
  select,
  joinRoom,
  partRoom,
  forgetRoom,
  showOnline,
  showPresence,
  setQuery,
  leave,
  offline,
};
/** What the server says, shown (events.js). */
const events = serverEvents(app);

// ---- joining and leaving ------------------------------------------------

/** A reload resumes the tab's session: how many tries are left for it. */
let resumeTries = 0;

/**
 * Reconnects in a row that found the nickname still held: in a cluster,
 * by this session on a server that died (the others free its names within
 * seconds; a connection the server merely has not seen go is taken over
 * by the resume); as chatclient, the fifth such answer means someone else
 * has it.
 */
let heldTries = 0;
const HELD_TRIES = 4;

/**
 * What the page said of the connection lost (`{ text, code }`, see
 * `sayLost`), until it is back: said again where the reader goes
 * meanwhile to or from no room (`select`). `null` while connected.
 */
let lostSaid = null;

/**
 * Where the page said the loss and has to say the return, `null` for the
 * no-room log, a room's name for a room entered since, until the
 * connection is back: a room whose log said it as it happened says it
 * is back in its own way (events.js), and nothing else would here.
 */
const lostTold = new Set();

function startChat(nick, token = null) {
  stopChat();
  const rooms = savedRooms();
  session = new Session(nick, rooms, {
    send: (f) => conn && conn.send(f),
    emit: (kind, data) => {
      handlers[kind]?.(data);
      if (kind === 'pending' || kind === 'acked' || kind === 'sent') keeper.soon();
      // The room's last seq moved (what a reload counts as news from).
      if (kind === 'message' || kind === 'presence') marks.soon();
    },
    token,
  });
  conn = new Connection(socketUrl(), {
    open: () => session.connected(),
    message: onText,
    close: onClose,
    state: (state, detail) => showStatus(state, detail, everJoined),
  });
  for (const r of rooms) addRoom(r);
  // Resuming after a reload: each room's unread marks as they were, and
  // what its replay brings after where the tab stood there counted too
  // (events.js); the room shown is read (`select`). A new session
  // starts with none.
  if (token) {
    for (const [room, m] of savedUnread()) {
      if (!rooms.includes(room)) continue;
      events.keptFrom(room, { epoch: m.epoch, seq: m.seq });
      if (m.n > 0) roomList.unread(room, m.n, m.mention);
    }
  } else {
    marks.forget();
  }
  const last = tabSaved.get('rooms') ? tabSaved.get('current') : saved.get('current');
  select(rooms.includes(last) ? last : rooms[0]);
  // Resuming this tab's session after a reload: what it had not had
  // confirmed is sent again (with its ids, so the server drops what it
  // has); a new session starts with none.
  if (token) session.restore(savedPending());
  else tabSaved.set('pending', null);
  conn.start();
}

/** This tab's unconfirmed lines, kept across a reload (unsent.js). */
const keeper = new PendingKeeper(() => session);

/**
 * This tab's unread marks, kept across a reload (unread.js): each room's
 * count and `!`, and where the tab stood there (a room not entered since
 * the page was loaded stands where it stood before).
 */
const marks = new UnreadKeeper(() => {
  if (!session) return null;
  const all = {};
  for (const [room, r] of session.rooms) {
    const u = roomList.unreadOf(room);
    if (!u) continue;
    const at = r.epoch != null ? { epoch: r.epoch, seq: r.lastSeq } : events.since(room) ?? { epoch: null, seq: 0 };
    all[room] = { ...at, n: u.n, mention: u.mention };
  }
  return all;
});

function stopChat() {
  conn?.stop();
  conn = null;
  session = null;
  // What it kept is as the caller left it (Leave has cleared it).
  keeper.cancel();
  for (const r of [...view.rooms.keys()]) forgetRoom(r);
  marks.cancel();
  current = null;
  lostSaid = null;
  lostTold.clear();
  noRoom.clear();
  noRoom.show(false);
  updateTitle();
  setQuery(null);
  $('current-room').textContent = '';
  $('me').textContent = '';
  online.show([], null);
  everJoined = false;
  clearErrors(true);
  // The room box too: its refusal was this chat's, not the next one's.
  $('room-input').value = '';
  roomError(null);
  showElsewhere(false);
}

$('join-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const nick = $('nick').value.trim();
  if (!nick) {
    showJoin('nick_invalid', 'Type a nickname first.');
    return;
  }
  saved.set('nick', nick);
  $('join-error').hidden = true;
  startChat(nick);
});

$('leave').addEventListener('click', leave);

function leave() {
  const unsent = session ? session.pending.map(resendable) : [];
  tabSaved.set('resume', null);
  tabSaved.set('pending', null);
  marks.forget();
  stopChat();
  showJoin('', '');
  showUnsent(unsent);
}

// ---- rooms ----------------------------------------------------------------

// A tab's rooms are its own: kept in the tab (a reload comes back to
// them, whatever another tab of this browser entered or left since) and,
// for a new tab, in the browser (the last rooms used anywhere).
function savedRooms() {
  let list = [];
  try {
    list = JSON.parse(tabSaved.get('rooms') || saved.get('rooms') || '[]');
  } catch {
    list = [];
  }
  const rooms = [];
  for (const raw of Array.isArray(list) ? list : []) {
    const r = typeof raw === 'string' ? roomName(raw).room : null;
    if (r && !rooms.includes(r)) rooms.push(r);
  }
  return rooms.length ? rooms : [LOBBY];
}

function saveRooms() {
  if (!session) return;
  // The list in its own order; the room being read apart, so that a
  // reload comes back to it without moving it to the top.
  const rooms = JSON.stringify([...session.rooms.keys()]);
  for (const store of [tabSaved, saved]) {
    store.set('rooms', rooms);
    store.set('current', current ?? '');
  }
}

function addRoom(room) {
  view.addRoom(room);
  roomList.add(room);
  roomList.setEntering(room, true);
  backlog.add(room);
}

function forgetRoom(room) {
  departures.say(room, true);
  view.removeRoom(room);
  roomList.remove(room);
  backlog.forget(room);
  events.forget(room);
  lostTold.delete(room);
  forgetErrorsOf(room);
}

/**
 * Show `room` (null: none), and close the drawer it was chosen in (on a
 * phone it covers the room), unless `keepDrawers`: the drawer is still in
 * use (a room left by its × in the list, the focus on the next one).
 */
function select(room, keepDrawers = false) {
  const was = current;
  current = room;
  view.show(room);
  noRoom.show(!room);
  // The connection lost: said where the reader goes, to or from no room
  // (all rooms left, or one entered, meanwhile), and there, once back,
  // that it is back. (Between rooms, each room's log says what it missed.)
  if (lostSaid && (!room || !was) && !lostTold.has(room) && !(room && events.toldLost(room))) {
    say(lostSaid.text, 'notice lost', lostSaid.code);
    lostTold.add(room);
  }
  if (room) backlog.fill(room);
  roomList.setCurrent(room);
  if (room) roomList.unread(room, null);
  errorsFollow(room);
  $('current-room').textContent = room ? `#${room}` : '';
  composer.hint(room ? `Message #${room}` : 'Join a room to write: /join ROOM');
  showOnline();
  updateTitle();
  saveRooms();
  if (!keepDrawers) closeDrawers();
}

function joinRoom(room) {
  if (!session.rooms.has(room)) {
    session.enter(room);
    addRoom(room);
  }
  select(room);
}

/**
 * Leave `room`; `fromList`: by its × in the room list, which has put the
 * focus on the next room there. False when not in it (said above the
 * input, whose `/part` line stays to be corrected).
 */
function partRoom(room, fromList = false) {
  if (!session || !session.rooms.has(room)) {
    showError('not_in_room', `you are not in #${room}`);
    return false;
  }
  // The current room left, the next one in the list is shown: the one
  // its × gives the focus to (the first room was, wherever the focus
  // went), and by the × the Rooms drawer stays open on it.
  const next = roomList.next(room);
  session.part(room);
  forgetRoom(room);
  if (current === room) select(next, fromList);
  else saveRooms();
  return true;
}

function showOnline() {
  const nicks = session && current ? session.roster(current) : [];
  online.show(nicks, session?.nick);
}

/**
 * `nick` came to or left `room`: in the room shown, their row alone
 * changes, as the session's roster now has them or not (a join in a room
 * of 10,000 went through every name, sorted anew).
 */
function showPresence(room, nick) {
  if (room !== current || !session) return;
  const now = session.roomState(room)?.roster.get(nickKey(nick));
  if (now === undefined) online.drop(nick);
  else online.put(now);
}

// ---- what the server says ---------------------------------------------------

function onText(text) {
  const f = decodeFrame(text);
  if (f) session?.frame(f);
}

/** Why the server closes a connection with the fatal error `code`, in the reader's words. */
function closedBecause(code) {
  switch (code) {
    case 'slow_consumer':
      return 'this page did not read its messages fast enough';
    case 'rate_limited':
      return 'this page sent too much too fast';
    case 'timeout':
      return 'it heard nothing from this page in time';
    case 'frame_too_large':
    case 'empty_frame':
      return 'this page sent a frame it could not read';
    default:
      return 'it closed it with an error';
  }
}

const handlers = {
  joined({ nick, resumed, reconnect, closedFor }) {
    conn.markJoined();
    resumeTries = 0;
    heldTries = 0;
    // A reload of this tab resumes this session.
    tabSaved.set('resume', JSON.stringify({ nick, token: session.token }));
    $('me').textContent = nick;
    $('nick').value = nick;
    if (!everJoined) {
      everJoined = true;
      // In: what the join screen listed to send again is over (kept
      // until now, in case this join failed too).
      showUnsent([]);
      showChat();
      composer.fit();
      $('input').focus();
    } else if (reconnect) {
      // Said where the loss was said (a room's log that said it as it
      // happened says what it missed, events.js), and a new session
      // where the reader is too.
      const places = new Set(lostTold);
      if (!resumed) places.add(current);
      for (const place of places) {
        if (resumed) sayIn(place, 'reconnected', 'notice reconnected');
        else sayIn(place, 'reconnected as a new session', 'notice');
      }
    }
    if (reconnect) {
      lostSaid = null;
      lostTold.clear();
    }
    // The server had closed the last connection with an error that did
    // not arrive then (a page too slow to read takes nothing more).
    if (closedFor) say(`the server had closed the connection: ${closedBecause(closedFor)} (${closedFor})`, 'notice lost', closedFor);
    // The first connection of this page resumed a session: the page was
    // reloaded (or copied). Each room's own presence is not a fresh join.
    if (resumed && !reconnect) for (const r of session.rooms.keys()) events.resumed(r);
    // What the bar said of the lost connection ("you did not answer a
    // ping in time") is over: the log keeps it.
    if (reconnect) clearErrors(true);
    for (const r of session.rooms.keys()) roomList.setEntering(r, true);
    view.pendingState('sending…');
  },

  refused(f) {
    const nickError = f.code === 'nick_taken' || f.code === 'nick_invalid';
    // Reloaded: the server may not have seen the old page's socket close
    // yet, and still holds the nickname for it. Try again shortly.
    if (!everJoined && f.code === 'nick_taken' && resumeTries > 0) {
      resumeTries -= 1;
      const { nick, token } = { nick: session.nick, token: session.token };
      stopChat();
      setTimeout(() => startChat(nick, token), 500);
      return;
    }
    // Back after a loss: the nickname may still be held by this session
    // on a cluster's server that died. Drop this socket; the connection
    // tries again with its backoff.
    if (everJoined && f.code === 'nick_taken' && heldTries < HELD_TRIES) {
      heldTries += 1;
      say('the nickname is still held (perhaps by this session, on a server that has not yet seen it go); trying again', 'notice');
      conn?.drop('nickname still held');
      return;
    }
    if (!everJoined || nickError) {
      const msg = everJoined ? `You were disconnected and could not rejoin: ${f.message}` : f.message;
      // Lines still unconfirmed are listed there, to send again.
      // Kept in the tab too: a reload here resumes, and sends them if
      // the nickname is free by then.
      const unsent = session.pending.map(resendable);
      keeper.save();
      stopChat();
      showJoin(f.code, msg);
      showUnsent(unsent);
    } else {
      say(`${f.code}: ${f.message}`, 'error', f.code);
    }
  },

  ...events.handlers,
};

function onClose({ wasJoined }) {
  if (!session) return;
  offline('waiting for the connection…');
  if (wasJoined) sayLost('connection lost; reconnecting…');
}

/**
 * The connection is lost: said with `code` where the reader sees it (the
 * room shown, or the no-room log), which says so again once it is back.
 */
function sayLost(text, code) {
  lostSaid = { text, code };
  lostTold.clear();
  say(text, 'notice lost', code);
  if (current) events.lost(current);
  else lostTold.add(null);
}

/** The connection is gone; what was not acknowledged waits, saying `why`. */
function offline(why) {
  // Leavings seen before the loss are said before it.
  departures.say();
  session.disconnected();
  for (const r of session.rooms.keys()) roomList.setEntering(r, true);
  backlog.disconnected();
  roomsAsks.length = 0;
  if (session.pending.length) view.pendingState(why);
}

$('retry').addEventListener('click', () => conn?.retryNow());
window.addEventListener('online', () => conn?.retryNow());
// Take the conversation back: resume here, which closes the other copy.
$('continue-here').addEventListener('click', () => {
  if (!conn) return;
  showElsewhere(false);
  conn.start();
  $('input').focus();
});

// ---- small pieces -------------------------------------------------------------

function note(room, text, className, code) {
  return room ? view.note(room, text, className, code) : null;
}

/**
 * A command's answer, or what the page says of the connection, said where
 * the reader sees it: at the end of the room shown, or in no room, of the
 * no-room log (noroom.js). `text` and `code` as for `note`.
 */
function say(text, className, code) {
  return sayIn(current, text, className, code);
}

/** `say` in `place`: a room's log, or (`null`) the no-room log. */
function sayIn(place, text, className, code) {
  if (place) return note(place, text, className, code);
  const li = noRoom.note(text, className, code);
  if (!current) view.toBottom();
  return li;
}

/** `/clear`: the lines shown go, the room's (messages.js) or the no-room log's. */
function clearShown() {
  if (current) view.clearShown(current);
  else noRoom.clear();
}

/** Lines typed without recipients go to `nick` only (null: to the room); the input says so. */
function setQuery(nick) {
  query = nick;
  const shown = $('query-to');
  shown.hidden = !nick;
  shown.replaceChildren();
  if (nick) shown.append('→ ', isolated('bdi', '', nick), ' only');
  $('input').setAttribute('aria-describedby', nick ? 'query-to composer-help' : 'composer-help');
}

/**
 * The unread count in the title and, for a phone, whose room list is
 * behind ☰, on that button (`!` when one of them is for the reader).
 */
function updateTitle() {
  const { n, mention } = roomList.totalUnread();
  setTitle(n, current);
  const badge = $('rooms-unread');
  badge.hidden = n === 0;
  badge.textContent = n ? `${n}${mention ? '!' : ''}` : '';
  badge.classList.toggle('mention', mention);
  $('rooms-toggle').setAttribute('aria-label', `Rooms${unreadWords(n, mention)}`);
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  if (current) roomList.unread(current, null);
  updateTitle();
  conn?.probe();
});

// A nickname anywhere in the log or the online list addresses it;
// Shift/Ctrl/Cmd-click, or the `+` beside it in the list, adds it to
// those addressed.
for (const id of ['messages', 'online']) {
  $(id).addEventListener('click', (e) => {
    const b = e.target.closest('button.nick, button.add');
    if (!b || !b.dataset.nick) return;
    const plus = b.classList.contains('add');
    // A name is tapped to write to them: the drawer goes first (the
    // message box behind it takes no focus). A `+` builds a group one
    // name at a time: the People drawer stays open for the next.
    if (!plus) closeDrawers();
    composer.address(b.dataset.nick, plus || e.shiftKey || e.ctrlKey || e.metaKey);
    // Behind the open drawer the message box took no focus, and the `+`
    // is gone with its row marked: the focus stays on that name, and
    // goes to the message box when the drawer closes, to type on.
    if (plus && document.activeElement !== $('input')) {
      b.closest('li').querySelector('button.nick').focus();
      focusOnClose($('input'));
    }
  });
}

$('room-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!session) return;
  const r = roomName($('room-input').value.trim());
  // Said by the name, not above the message box: on a phone the open
  // drawer covers that.
  roomError(r.error);
  if (r.error) return;
  $('room-input').value = '';
  joinRoom(r.room);
  $('input').focus();
});

$('room-input').addEventListener('input', () => roomError(null));

function roomError(message) {
  const p = $('room-error');
  p.hidden = !message;
  p.dataset.code = message ? 'room_invalid' : '';
  p.replaceChildren(isolated('span', 'text', message || ''));
}

/**
 * Ask for the room list for the panel, unless an ask for it is on its
 * way (its answer fills the panel): the server counts each as one of the
 * largest frames against its byte allowance, and a burst of clicks would
 * be read slower and slower, then closed.
 */
function askRoomsForPanel() {
  if (roomsAsks.includes('panel')) return;
  if (session?.listRooms()) roomsAsks.push('panel');
}

$('server-rooms-panel').addEventListener('toggle', (e) => {
  if (e.target.open) askRoomsForPanel();
});
$('server-rooms-refresh').addEventListener('click', askRoomsForPanel);

setUpDrawers();
$('nick').value = saved.get('nick') || '';
showJoin('', '');
if ($('nick').value) $('join').focus();
resumeAfterReload();

/**
 * This tab had joined before a reload: join again, resuming its session.
 * A duplicated tab has the same token as the tab it was copied from: if
 * that one is still open, start afresh here instead of taking its session.
 */
async function resumeAfterReload() {
  let was = null;
  try {
    was = JSON.parse(tabSaved.get('resume') || 'null');
  } catch {
    was = null;
  }
  if (!was || typeof was.nick !== 'string' || !was.nick) return;
  const token = typeof was.token === 'string' ? was.token : null;
  const held = token !== null && (await tabs.heldElsewhere(token));
  if (session) return; // joined by hand meanwhile
  if (held) {
    // Its lines are that tab's, which sends them: not this copy's.
    tabSaved.set('resume', null);
    tabSaved.set('pending', null);
    // Not a name to join with: the other tab has it (or the last one any
    // tab used, which may be another's too).
    $('nick').value = '';
    showJoin('in_another_tab', `${was.nick} is open in another tab or window of this browser: go on there, or join here with another nickname.`);
    $('nick').select();
    return;
  }
  resumeTries = 3;
  startChat(was.nick, token);
}
