// The page: wires the session (protocol state), the connection (socket,
// reconnects) and the views (messages, lists, input) together, and carries
// out what the user types.

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
import { Composer } from './composer.js';
import { Connection, socketUrl } from './connection.js';
import { HistoryLoader } from './history.js';
import { HELP, parseLine } from './input.js';
import { forMe, MessageView } from './messages.js';
import { decode as decodeFrame, LOBBY, nickKey, roomName } from './protocol.js';
import { Session } from './session.js';
import { OnlineList, RoomList, renderServerRooms, unreadWords } from './sidebar.js';
import { Tabs } from './tabs.js';
import { isolated, nickButton } from './text.js';

const $ = (id) => document.getElementById(id);

let session = null;
let conn = null;
let current = null;
let everJoined = false;
/** `/query NICK`: lines typed without recipients go to this nick only. */
let query = null;
/** room -> replayed messages counted since entering it again, until our own presence. */
const catchup = new Map();
/** Rooms whose log said the connection was lost, until it says it is back. */
const toldLost = new Set();
/**
 * Rooms of a session this page resumed when it was loaded (a reload, or
 * a copy of a tab whose session went elsewhere), until our own presence
 * there, which says so instead of "joined".
 */
const reloaded = new Set();
/**
 * room -> what its reconnected line says instead of "nothing missed" (a gap
 * in what was missed, or a history begun anew), until our own presence there.
 */
const gapped = new Map();
/** Who asked for the room list, oldest first: 'cmd' | 'panel'. */
const roomsAsks = [];
/**
 * How long a leaving waits to be said: someone whose connection drops and
 * who comes straight back (a page reloaded, a server restarted, Wi-Fi
 * that blinked) is neither said to have left nor to have come back.
 */
const DEPARTURE_HOLD_MS = 5000;
/**
 * Leavings not said yet: `${room}\n${nickKey}` -> its hold, one for a
 * leaving seen live, one for all of a reconnect's "while you were away:
 * ... left": { room, nicks: Map(key -> nick), timer, say(nicks) }.
 */
const departures = new Map();

const view = new MessageView($('messages'), $('jump'), {
  olderWanted: (room, fromScroll) => backlog.older(room, fromScroll),
  canPage: (room) => Boolean(session?.joined && session.roomState(room)?.entered),
  trimmed: (room) => backlog.trimmed(room),
  notesTrimmed: (room) => backlog.notesTrimmed(room),
});
const backlog = new HistoryLoader(view, () => session, (room, text) => {
  view.toBottom();
  note(room, text, 'notice');
});
const roomList = new RoomList($('rooms'), $('room-input'), {
  select,
  part: (room) => partRoom(room, true),
  unreadChanged: () => updateTitle(),
});
/**
 * This tab answers another that asks whether its token is in use here:
 * not while it shows that the session continued elsewhere (a reload of
 * the tab that holds it must not be turned away by this one).
 */
const tabs = new Tabs((token) => session?.token === token && $('elsewhere').hidden);
const online = new OnlineList($('online'), $('online-count'), $('people'));
const composer = new Composer($('composer'), $('input'), {
  submit: runLine,
  nicks: () => (session && current ? session.roster(current) : []),
  // The line changed: what was said of it (or of the one before) goes,
  // `unavailable` too (the log keeps it).
  typing: () => {
    clearErrors(true);
    checkLength();
  },
  addressed: (names) => online.mark(names),
});

/**
 * A line too long to send is said above the input as it is typed, not
 * only on Enter (as the terminal client does).
 */
function checkLength() {
  const line = $('input').value;
  // Shorter than this, no line can be too long (six bytes a character at
  // most, as an escape, and room for the rest of the frame).
  if (!session || !current || line.length * 6 + 4096 < session.limits.maxFrameBytes) return;
  const cmd = parseLine(line);
  if (cmd.kind !== 'send') return;
  const error = session.tooLong(current, recipients(cmd), cmd.text);
  if (error) showError('msg_too_large', error);
}

/** Whom a line sent goes to: those it names, else the `/query`'s, else everyone. */
function recipients(cmd) {
  return cmd.to.length || !query ? cmd.to : [query];
}

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

function startChat(nick, token = null) {
  stopChat();
  const rooms = savedRooms();
  session = new Session(nick, rooms, {
    send: (f) => conn && conn.send(f),
    emit: (kind, data) => {
      handlers[kind]?.(data);
      if (kind === 'pending' || kind === 'acked' || kind === 'sent') savePendingSoon();
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
  const last = tabSaved.get('rooms') ? tabSaved.get('current') : saved.get('current');
  select(rooms.includes(last) ? last : rooms[0]);
  // Resuming this tab's session after a reload: what it had not had
  // confirmed is sent again (with its ids, so the server drops what it
  // has); a new session starts with none.
  if (token) session.restore(savedPending());
  else tabSaved.set('pending', null);
  conn.start();
}

/**
 * Keep this tab's unconfirmed lines (ids, rooms, recipients and text,
 * and whether each was written to a socket) with its session token, so
 * that a reload does not lose them: a moment
 * after they change (a burst of echoes writes the list once, not once
 * each), and at once when the page goes away.
 */
function savePending() {
  clearTimeout(pendingTimer);
  pendingTimer = null;
  if (!session) return;
  const list = session.pending.map(({ id, room, to, text, line, epoch, after, sent }) => ({ id, room, to, text, line, epoch, after, sent: Boolean(sent) }));
  tabSaved.set('pending', list.length ? JSON.stringify(list) : null);
}

let pendingTimer = null;
const PENDING_SAVE_MS = 250;

function savePendingSoon() {
  pendingTimer ??= setTimeout(savePending, PENDING_SAVE_MS);
}

// A phone may freeze or discard a hidden tab without a pagehide.
window.addEventListener('pagehide', () => {
  if (pendingTimer !== null) savePending();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden' && pendingTimer !== null) savePending();
});

/** The lines [`savePending`] kept, each checked. */
function savedPending() {
  let list = [];
  try {
    list = JSON.parse(tabSaved.get('pending') || '[]');
  } catch {
    list = [];
  }
  const text = (v) => typeof v === 'string';
  return (Array.isArray(list) ? list : []).filter(
    (p) =>
      p &&
      text(p.id) &&
      text(p.text) &&
      text(p.line) &&
      text(p.room) &&
      Array.isArray(p.to) &&
      p.to.every(text) &&
      (p.epoch === null || text(p.epoch)) &&
      Number.isSafeInteger(p.after) &&
      (p.sent === undefined || typeof p.sent === 'boolean'),
  );
}

function stopChat() {
  conn?.stop();
  conn = null;
  session = null;
  // What it kept is as the caller left it (Leave has cleared it).
  clearTimeout(pendingTimer);
  pendingTimer = null;
  for (const r of [...view.rooms.keys()]) forgetRoom(r);
  current = null;
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
  stopChat();
  showJoin('', '');
  showUnsent(unsent);
}

/**
 * A message the server had not confirmed, as a line that sends it again
 * (`#lobby: @bob: hi`, as the terminal client lists them when it leaves):
 * what was typed; when a `/query` chose its recipients, they and a `:`
 * (which ends them, so a text starting with `:` keeps it) before its text
 * (a `//` typed under it was sent as `/`, and is not a command after `@`).
 */
function resendable(p) {
  const typed = p.line.trimStart();
  const named = typed.startsWith('@') || /^\/(msg|m)\s/iu.test(typed);
  const line = p.to.length && !named ? `@${p.to.join(' @')}: ${p.text}` : p.line;
  return { room: p.room, line };
}

/**
 * After Leave, on the join screen: the lines that were not confirmed
 * (none: hidden), each after its room; a click selects the line alone,
 * to copy.
 */
function showUnsent(lines) {
  $('unsent').hidden = lines.length === 0;
  $('unsent-lines').replaceChildren(
    ...lines.map(({ room, line }) => {
      const li = document.createElement('li');
      li.append(`#${room}: `, isolated('span', 'line', line));
      return li;
    }),
  );
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

/** Hold back the leaving of `nicks` from `room`; `say(nicks)` says it. */
function holdDepartures(room, nicks, say) {
  const hold = { room, nicks: new Map(), timer: 0, say };
  for (const nick of nicks) {
    const key = `${room}\n${nickKey(nick)}`;
    // Left again before the last leaving was said: that one first.
    if (departures.has(key)) sayHold(departures.get(key));
    hold.nicks.set(key, nick);
    departures.set(key, hold);
  }
  hold.timer = setTimeout(() => sayHold(hold), DEPARTURE_HOLD_MS);
}

/** Say what `hold` still holds (unless `drop`), and forget it. */
function sayHold(hold, drop = false) {
  clearTimeout(hold.timer);
  for (const key of hold.nicks.keys()) departures.delete(key);
  if (hold.nicks.size && !drop) hold.say([...hold.nicks.values()]);
  hold.nicks.clear();
}

/** `nick` is in `room` again: whether a leaving of theirs was held (now forgotten). */
function cameBack(room, nick) {
  const key = `${room}\n${nickKey(nick)}`;
  const hold = departures.get(key);
  if (!hold) return false;
  departures.delete(key);
  hold.nicks.delete(key);
  if (!hold.nicks.size) clearTimeout(hold.timer);
  return true;
}

/** Say every leaving held (`room`'s only, if given), or with `drop`, forget them. */
function sayDepartures(room = null, drop = false) {
  for (const hold of new Set(departures.values())) {
    if (room === null || hold.room === room) sayHold(hold, drop);
  }
}

function forgetRoom(room) {
  sayDepartures(room, true);
  view.removeRoom(room);
  roomList.remove(room);
  backlog.forget(room);
  catchup.delete(room);
  toldLost.delete(room);
  reloaded.delete(room);
  gapped.delete(room);
  forgetErrorsOf(room);
}

/**
 * Show `room` (null: none), and close the drawer it was chosen in (on a
 * phone it covers the room), unless `keepDrawers`: the drawer is still in
 * use (a room left by its × in the list, the focus on the next one).
 */
function select(room, keepDrawers = false) {
  current = room;
  view.show(room);
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
 * focus on the next room there.
 */
function partRoom(room, fromList = false) {
  if (!session || !session.rooms.has(room)) {
    showError('not_in_room', `you are not in #${room}`);
    return;
  }
  // The current room left, the next one in the list is shown: the one
  // its × gives the focus to (the first room was, wherever the focus
  // went), and by the × the Rooms drawer stays open on it.
  const next = roomList.next(room);
  session.part(room);
  forgetRoom(room);
  if (current === room) select(next, fromList);
  else saveRooms();
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

// ---- lines typed ----------------------------------------------------------

function runLine(line) {
  if (!session) return false;
  const cmd = parseLine(line);
  clearErrors(false);
  // What a command answers goes at the end of the log: show it there, as
  // a message sent is (a reader scrolled up would not see it otherwise).
  if (['rooms', 'who', 'help', 'query', 'clear'].includes(cmd.kind)) view.toBottom();
  switch (cmd.kind) {
    case 'nothing':
      return false;
    case 'invalid':
      showError('input', cmd.message);
      return false;
    case 'send': {
      if (!current) {
        showError('not_in_room', 'you are in no room: /join one first');
        return false;
      }
      const p = session.sendMsg(current, recipients(cmd), cmd.text, line);
      if (p.error) {
        showError('msg_too_large', p.error);
        return false;
      }
      return true;
    }
    case 'join':
      joinRoom(cmd.room);
      return true;
    case 'part':
      if (!cmd.room && !current) {
        showError('not_in_room', 'you are in no room');
        return false;
      }
      partRoom(cmd.room ?? current);
      return true;
    case 'rooms':
      if (!session.listRooms()) {
        showError('offline', 'not connected; try again once reconnected');
        return false;
      }
      roomsAsks.push('cmd');
      return true;
    case 'who': {
      const who = current ? session.roster(current) : [];
      note(current, `${who.length} online in #${current}: ${who.join(', ')}`, 'notice');
      return true;
    }
    case 'history': {
      // Older messages go above, where the reader is; only a reason why
      // none come goes at the end.
      const why = current ? backlog.older(current, false, cmd.count, false, true) : 'you are in no room';
      if (why) {
        view.toBottom();
        note(current, why, 'notice');
      }
      return true;
    }
    case 'query':
      if (cmd.nick) {
        note(current, `lines now go to ${cmd.nick} only; /query alone sends to everyone again`, 'notice');
      } else if (query) {
        note(current, 'lines go to everyone in the room again', 'notice');
      } else {
        note(current, 'usage: /query NICK sends every line to NICK only', 'notice');
      }
      setQuery(cmd.nick);
      return true;
    case 'clear':
      if (current) view.clearShown(current);
      return true;
    case 'help':
      for (const h of HELP) note(current, h, 'notice help');
      return true;
    case 'quit':
      leave();
      return true;
    default:
      return false;
  }
}

// ---- what the server says ---------------------------------------------------

function onText(text) {
  const f = decodeFrame(text);
  if (f) session?.frame(f);
}

const handlers = {
  joined({ nick, resumed, reconnect }) {
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
    } else if (reconnect && !resumed) {
      note(current, 'reconnected as a new session', 'notice');
    }
    // The first connection of this page resumed a session: the page was
    // reloaded (or copied). Each room's own presence is not a fresh join.
    if (resumed && !reconnect) for (const r of session.rooms.keys()) reloaded.add(r);
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
      note(current, 'the nickname is still held (perhaps by this session, on a server that has not yet seen it go); trying again', 'notice');
      conn?.drop('nickname still held');
      return;
    }
    if (!everJoined || nickError) {
      const msg = everJoined ? `You were disconnected and could not rejoin: ${f.message}` : f.message;
      // Lines still unconfirmed are listed there, to send again.
      // Kept in the tab too: a reload here resumes, and sends them if
      // the nickname is free by then.
      const unsent = session.pending.map(resendable);
      savePending();
      stopChat();
      showJoin(f.code, msg);
      showUnsent(unsent);
    } else {
      note(current, `${f.code}: ${f.message}`, 'error', f.code);
    }
  },

  entered({ room, again, gap, gapAfter, newEpoch, behind, seq }) {
    roomList.setEntering(room, false);
    // The seqs above the room's are given again: the lines shown with
    // them stay, without their seq, so the new events are shown too.
    if (behind) view.forgetAbove(room, seq);
    if (again) catchup.set(room, 0);
    // What the reconnected line says instead of "nothing missed".
    if (again && newEpoch) gapped.set(room, `the history of #${room} began anew`);
    else if (again && gap) gapped.set(room, 'history has a gap');
    else gapped.delete(room);
    if (newEpoch) {
      backlog.reset(room);
      const mark = note(room, `the server started #${room}'s history anew: the lines above are from before it`, 'notice gap');
      view.newEpoch(room, mark);
    } else if (gap) {
      const li = note(room, `history has a gap: some messages sent in #${room} while you were away are not shown`, 'notice gap');
      // A cut room shows nothing after its last line kept, the hole
      // included (it lies after what was seen): its newest messages, then
      // older pages from there, show what is missing.
      if (view.isCut(room)) view.offerNewest(room, li);
      else backlog.gap(room, gapAfter, li);
    }
    if (room === current) showOnline();
  },

  roster({ room }) {
    if (room === current) showOnline();
  },

  presence(p) {
    if (p.self && p.online) {
      backlog.settle(p.room);
      // The replay brings messages, not who came and went: what the
      // page showed of that before the reload is gone.
      if (reloaded.delete(p.room)) {
        note(p.room, 'resumed your session; earlier joins and leaves are not shown', 'notice resumed');
        showPresence(p.room, p.nick);
        return;
      }
      if (catchup.has(p.room)) {
        const n = catchup.get(p.room);
        catchup.delete(p.room);
        // Said where the loss was said (the room open then), and in the
        // others only when something was missed there.
        const told = toldLost.delete(p.room);
        // Not "nothing missed" under "history has a gap" (as chatclient),
        // nor under "the server started #room's history anew".
        const gap = gapped.get(p.room);
        gapped.delete(p.room);
        if (n > 0 || told) {
          // A cut room shows none of them (messages.js, `cut`): ↓ does.
          const some = `${n} missed message${n === 1 ? '' : 's'}`;
          const missed = gap
            ? gap
            : n === 0
              ? 'nothing missed'
              : view.isCut(p.room)
                ? `${some}, not shown while you read this far back (↓ shows them)`
                : `${some} above`;
          note(p.room, `reconnected; ${missed}`, 'notice reconnected');
        }
        // No presence of theirs is replayed: say who came and went (who
        // left may be on their way back too: held back like a leaving).
        if (p.away) {
          const { joined, left } = p.away;
          if (joined.length) note(p.room, cameAndWent({ joined, left: [] }), 'notice away');
          if (left.length) {
            holdDepartures(p.room, left, (nicks) => note(p.room, cameAndWent({ joined: [], left: nicks }), 'notice away'));
          }
        }
        showPresence(p.room, p.nick);
        // Its newest, asked for while not connected, can come now.
        view.ready(p.room);
        return;
      }
    }
    if (!p.self && !p.online) {
      // Said in its place (by seq, below notices from before it: a
      // reconnect's) once the hold is over, if still away.
      holdDepartures(p.room, [p.nick], () => view.presence(p, `left #${p.room}`, true));
    } else if (p.self || !cameBack(p.room, p.nick)) {
      view.presence(p, `${p.online ? 'joined' : 'left'} #${p.room}`);
    }
    showPresence(p.room, p.nick);
  },

  message(m) {
    const catching = m.replay && catchup.has(m.room);
    const counted = !m.replay || catching;
    if (!view.message(m, session.nick)) return;
    // Missed: shown now for the first time, and not sent from this page
    // (one of ours sent from another tab or connection is news here).
    if (catching && !m.sentHere) catchup.set(m.room, catchup.get(m.room) + 1);
    if (m.mine && !m.replay) clearErrors(true);
    if (!m.mine && counted && (m.room !== current || document.hidden)) {
      roomList.unread(m.room, 1, forMe(m, session.nick));
    }
  },

  history({ room, events, more, before }) {
    // A page of a room left since (or never shown: a broken server's)
    // has nowhere to go; kept, it would be state of a room not there.
    if (!view.rooms.has(room)) return;
    backlog.answer(room, events, more, before, session.nick);
  },

  rooms({ rooms: list, total }) {
    const who = roomsAsks.shift();
    // A list cut to fit a frame (the first rooms by name) says so.
    const unlisted = total === null ? 0 : Math.max(0, total - list.length);
    renderServerRooms($('server-rooms'), list, (r) => joinRoom(r), unlisted);
    if (who === 'cmd') {
      const text = list.map((r) => `#${r.room} (${r.members})`).join(', ');
      const more = unlisted > 0 ? `; ${unlisted} more not listed (/join ROOM enters any room by name)` : '';
      note(current, `rooms: ${text || 'none'}${more}`, 'notice');
    }
  },

  pending(p) {
    view.pending(p, session.nick);
    if (!session.joined) view.pendingState('waiting for the connection…');
  },

  acked(p) {
    view.acked(p);
  },

  // Written to a socket of a session lost since, and not found in what
  // the new one was shown: it may or may not have arrived. Said in its
  // room (or, left meanwhile, the one shown), with the line to send it
  // again as the join screen lists those not confirmed, and Send again.
  unconfirmed(p) {
    const inRoom = view.rooms.has(p.room);
    const room = inRoom ? p.room : current;
    const what = document.createDocumentFragment();
    const where = inRoom ? '' : ` in #${p.room}`;
    what.append(
      isolated('span', 'text', `not confirmed before the connection was lost${where}: it may or may not have arrived; to send it again:`),
      ' ',
      isolated('span', 'line', resendable(p).line),
    );
    if (inRoom) {
      const again = document.createElement('button');
      again.type = 'button';
      again.className = 'send-again';
      again.textContent = 'Send again';
      again.addEventListener('click', () => {
        if (!session || !view.rooms.has(p.room)) return;
        const sent = session.sendMsg(p.room, p.to, p.text, p.line);
        if (sent.error) {
          showError('msg_too_large', sent.error);
          return;
        }
        // Once: it is pending (or confirmed) below now.
        const done = isolated('span', 'sent-again', 'sent again');
        again.replaceWith(done);
      });
      what.append(' ', again);
    }
    note(room, what, 'notice unconfirmed');
  },

  left({ room }) {
    const next = roomList.next(room);
    forgetRoom(room);
    if (current === room) select(next);
  },

  error(f) {
    // A `history` the server refused: the room's request is over.
    if (!f.id && f.room && f.code === 'not_in_room') backlog.refused(f.room);
    const room = f.room && view.rooms.has(f.room) ? f.room : current;
    const li = note(room, f.message || f.code, 'error', f.code);
    if (li) li.title = f.code;
    // Said once: the log's line waits while the input shows the error.
    const shown = () => view.shown(li);
    showError(f.code, f.message || f.code, li && { li, shown }, room);
    // Last: fitting the input lays the page out, and done while the
    // refused line's pending copy was gone but the error not yet in, it
    // pulled the log up, which then read as the reader scrolling away.
    if (f.failed) composer.restore(f.failed.line);
  },

  notice({ text }) {
    if (!note(current, text, 'notice server')) showError('notice', text);
  },

  // Another tab (a duplicated one shares the token), window or connection
  // resumed this session: it goes on there. Reconnecting by ourselves
  // would take it back, and the other would do the same, for ever; the
  // user chooses with #continue-here. Unsent lines stay pending.
  elsewhere() {
    conn.stop('elsewhere');
    offline('not sent: continue here to send');
    const said = note(current, 'this conversation continued in another tab or window (or on another connection)', 'notice lost', 'resumed_elsewhere');
    if (said) toldLost.add(current);
    showElsewhere(true);
  },
};

function onClose({ wasJoined }) {
  if (!session) return;
  offline('waiting for the connection…');
  if (wasJoined && note(current, 'connection lost; reconnecting…', 'notice lost')) toldLost.add(current);
}

/** The connection is gone; what was not acknowledged waits, saying `why`. */
function offline(why) {
  // Leavings seen before the loss are said before it.
  sayDepartures();
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

/** Names in a line: a few, then how many more. */
const AWAY_NAMES = 10;

/**
 * "while you were away: carol joined; dave, erin left", each name a
 * nickname as in the rest of the log, its direction its own: two names
 * written right to left, and the comma between them, would otherwise
 * read as one run, the names swapped.
 */
function cameAndWent({ joined, left }) {
  const line = document.createElement('span');
  line.className = 'text';
  line.dir = 'auto';
  line.append('while you were away: ');
  const names = (list, verb) => {
    const shown = list.length > AWAY_NAMES ? list.slice(0, AWAY_NAMES - 1) : list;
    shown.forEach((n, i) => line.append(...(i ? [', '] : []), nickButton(n, '', true)));
    if (shown.length < list.length) line.append(` and ${list.length - shown.length} more`);
    line.append(` ${verb}`);
  };
  if (joined.length) names(joined, 'joined');
  if (joined.length && left.length) line.append('; ');
  if (left.length) names(left, 'left');
  return line;
}

function note(room, text, className, code) {
  return room ? view.note(room, text, className, code) : null;
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
