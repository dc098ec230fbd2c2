// The page: wires the session (protocol state), the connection (socket,
// reconnects) and the views (messages, lists, input) together; starts a
// chat and stops it. Joining is join.js's, the rooms entered, left and
// shown are rooms.js's, what the page said of a lost connection is
// lost.js's. What the server says is shown by events.js, what the user
// types is carried out by commands.js.

import { Departures } from './away.js';
import { clearErrors, closeDrawers, focusOnClose, saved, tabSaved, setUpDrawers, showElsewhere, showJoin, showStatus } from './chrome.js';
import { checkLength, runLine } from './commands.js';
import { Composer } from './composer.js';
import { Connection, socketUrl } from './connection.js';
import { serverEvents } from './events.js';
import { HistoryLoader } from './history.js';
import { Joining } from './join.js';
import { LostNotice } from './lost.js';
import { MessageView } from './messages.js';
import { NoRoomLog } from './noroom.js';
import { decode as decodeFrame, roomName } from './protocol.js';
import { Rooms, savedRooms } from './rooms.js';
import { Session } from './session.js';
import { OnlineList, RoomList } from './sidebar.js';
import { Tabs } from './tabs.js';
import { isolated } from './text.js';
import { savedUnread, UnreadKeeper } from './unread.js';
import { PendingKeeper, resendable, savedPending, showUnsent } from './unsent.js';

const $ = (id) => document.getElementById(id);

let session = null;
let conn = null;
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
  select: (room) => rooms.select(room),
  part: (room) => rooms.part(room, true),
  unreadChanged: () => {
    rooms.updateTitle();
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
  nicks: () => (session && rooms.current ? session.roster(rooms.current) : []),
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
    return rooms.current;
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
  sayLost: (text, code) => lost.say(text, code),
  clearShown,
  select: (room, keepDrawers) => rooms.select(room, keepDrawers),
  joinRoom: (room) => rooms.join(room),
  partRoom: (room, fromList) => rooms.part(room, fromList),
  forgetRoom: (room) => rooms.forget(room),
  showOnline: () => rooms.showOnline(),
  showPresence: (room, nick) => rooms.showPresence(room, nick),
  setQuery,
  leave,
  offline,
};
/** What the server says, shown (events.js). */
const events = serverEvents(app);
/** What the page said of a lost connection, and where (lost.js). */
const lost = new LostNotice({ events, current: () => rooms.current, say, sayIn });
/** The rooms this tab is in and the one shown (rooms.js). */
const rooms = new Rooms({
  session: () => session,
  view,
  noRoom,
  roomList,
  online,
  composer,
  backlog,
  departures,
  events,
  lost,
});

// ---- joining and leaving ------------------------------------------------

function startChat(nick, token = null) {
  stopChat();
  const kept = savedRooms();
  session = new Session(nick, kept, {
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
    state: (state, detail) => showStatus(state, detail, joining.everJoined),
  });
  for (const r of kept) rooms.add(r);
  // Resuming after a reload: each room's unread marks as they were, and
  // what its replay brings after where the tab stood there counted too
  // (events.js); the room shown is read (`select`). A new session
  // starts with none.
  if (token) {
    for (const [room, m] of savedUnread()) {
      if (!kept.includes(room)) continue;
      events.keptFrom(room, { epoch: m.epoch, seq: m.seq });
      if (m.n > 0) roomList.unread(room, m.n, m.mention);
    }
  } else {
    marks.forget();
  }
  const last = tabSaved.get('rooms') ? tabSaved.get('current') : saved.get('current');
  rooms.select(kept.includes(last) ? last : kept[0]);
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
  for (const r of [...view.rooms.keys()]) rooms.forget(r);
  marks.cancel();
  rooms.current = null;
  lost.clear();
  noRoom.clear();
  noRoom.show(false);
  rooms.updateTitle();
  setQuery(null);
  $('current-room').textContent = '';
  $('me').textContent = '';
  online.show([], null);
  joining.everJoined = false;
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

// ---- what the server says ---------------------------------------------------

function onText(text) {
  const f = decodeFrame(text);
  if (f) session?.frame(f);
}

/** Joining: a reload resuming, joined, refused and tried again (join.js). */
const joining = new Joining({
  session: () => session,
  conn: () => conn,
  start: startChat,
  stop: stopChat,
  say,
  lost,
  events,
  keeper,
  tabs,
  view,
  roomList,
  composer,
});

const handlers = {
  joined: (data) => joining.joined(data),
  refused: (f) => joining.refused(f),
  ...events.handlers,
};

function onClose({ wasJoined }) {
  if (!session) return;
  offline('waiting for the connection…');
  if (wasJoined) lost.say('connection lost; reconnecting…');
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
  return sayIn(rooms.current, text, className, code);
}

/** `say` in `place`: a room's log, or (`null`) the no-room log. */
function sayIn(place, text, className, code) {
  if (place) return note(place, text, className, code);
  const li = noRoom.note(text, className, code);
  if (!rooms.current) view.toBottom();
  return li;
}

/** `/clear`: the lines shown go, the room's (messages.js) or the no-room log's. */
function clearShown() {
  if (rooms.current) view.clearShown(rooms.current);
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

document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  if (rooms.current) roomList.unread(rooms.current, null);
  rooms.updateTitle();
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
  rooms.join(r.room);
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
joining.resumeAfterReload();
