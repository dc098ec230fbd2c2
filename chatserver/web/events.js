// What the server says, shown: each event of the session (session.js)
// put in the room logs, the lists and the sidebar, and what a room's log
// says of a reconnect (how many messages it missed, who came and went).
// Joining, and a join refused, are join.js's. `app` is the page's state
// and actions (app.js).

import { cameAndWent } from './away.js';
import { clearErrors, showElsewhere, showError } from './chrome.js';
import { forMe } from './lines.js';
import { renderServerRooms } from './sidebar.js';
import { isolated } from './text.js';
import { resendable } from './unsent.js';

const $ = (id) => document.getElementById(id);

/**
 * The handlers of the session's events but `joined` and `refused`
 * (`handlers`), and what the rest of the page tells them of a room:
 * `lost` (its log said the connection was lost), `resumed` (a reload
 * resumed the session there), `keptFrom` (where the tab stood in it
 * before it was loaded, unread.js), `forget` (it was left); `since`
 * gives that place back while the room's replay goes on.
 */
export function serverEvents(app) {
  const { view, backlog, roomList, composer, departures, roomsAsks, note } = app;
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
  /**
   * room -> { epoch, seq }: where this tab stood in it before the page
   * was loaded (a reload), until our own presence there ends its replay:
   * a message it replays above that (or of another history) came
   * meanwhile, unread here as it would have been had the page stayed.
   */
  const kept = new Map();
  const cameMeanwhile = (m) => {
    const k = kept.get(m.room);
    const epoch = app.session?.roomState(m.room)?.epoch;
    return Boolean(k) && k.epoch !== null && epoch != null && (epoch !== k.epoch || m.seq > k.seq);
  };

  const handlers = {
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
      if (room === app.current) app.showOnline();
    },

    roster({ room }) {
      if (room === app.current) app.showOnline();
    },

    presence(p) {
      if (p.self && p.online) {
        backlog.settle(p.room);
        kept.delete(p.room);
        // The replay brings messages, not who came and went: what the
        // page showed of that before the reload is gone.
        if (reloaded.delete(p.room)) {
          note(p.room, 'resumed your session; earlier joins and leaves are not shown', 'notice resumed');
          app.showPresence(p.room, p.nick);
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
              departures.hold(p.room, left, (nicks) => note(p.room, cameAndWent({ joined: [], left: nicks }), 'notice away'));
            }
          }
          app.showPresence(p.room, p.nick);
          // Its newest, asked for while not connected, can come now.
          view.ready(p.room);
          return;
        }
      }
      if (!p.self && !p.online) {
        // Said in its place (by seq, below notices from before it: a
        // reconnect's) once the hold is over, if still away.
        departures.hold(p.room, [p.nick], () => view.presence(p, `left #${p.room}`, true));
      } else if (p.self || !departures.cameBack(p.room, p.nick)) {
        view.presence(p, `${p.online ? 'joined' : 'left'} #${p.room}`);
      }
      app.showPresence(p.room, p.nick);
    },

    message(m) {
      const catching = m.replay && catchup.has(m.room);
      const counted = !m.replay || catching || cameMeanwhile(m);
      if (!view.message(m, app.session.nick)) return;
      // Missed: shown now for the first time, and not sent from this page
      // (one of ours sent from another tab or connection is news here).
      if (catching && !m.sentHere) catchup.set(m.room, catchup.get(m.room) + 1);
      if (m.mine && !m.replay) clearErrors(true);
      if (!m.mine && counted && (m.room !== app.current || document.hidden)) {
        roomList.unread(m.room, 1, forMe(m, app.session.nick));
      }
    },

    history({ room, events, more, before }) {
      // A page of a room left since (or never shown: a broken server's)
      // has nowhere to go; kept, it would be state of a room not there.
      if (!view.rooms.has(room)) return;
      backlog.answer(room, events, more, before, app.session.nick);
    },

    rooms({ rooms: list, total }) {
      const who = roomsAsks.shift();
      // A list cut to fit a frame (the first rooms by name) says so.
      const unlisted = total === null ? 0 : Math.max(0, total - list.length);
      renderServerRooms($('server-rooms'), list, (r) => app.joinRoom(r), unlisted);
      if (who === 'cmd') {
        const text = list.map((r) => `#${r.room} (${r.members})`).join(', ');
        const more = unlisted > 0 ? `; ${unlisted} more not listed (/join ROOM enters any room by name)` : '';
        app.say(`rooms: ${text || 'none'}${more}`, 'notice');
      }
    },

    pending(p) {
      view.pending(p, app.session.nick);
      if (!app.session.joined) view.pendingState('waiting for the connection…');
    },

    acked(p) {
      view.acked(p);
    },

    // Written to a socket of a session lost since, and not found in what
    // the new one was shown: it may or may not have arrived. Said in its
    // room (or, left meanwhile, the one shown), with the line to send it
    // again as the join screen lists those not confirmed, and Send again
    // (in no room, in the no-room log).
    unconfirmed(p) {
      const inRoom = view.rooms.has(p.room);
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
          if (!app.session || !view.rooms.has(p.room)) return;
          const sent = app.session.sendMsg(p.room, p.to, p.text, p.line);
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
      // Out of sight (another room, or the page hidden), its room is
      // marked unread as for a message, and for the reader: no one else
      // can send it again. In no room, the no-room log says it.
      const room = inRoom ? p.room : app.current;
      if (!room) app.say(what, 'notice unconfirmed');
      else if (note(room, what, 'notice unconfirmed') && (room !== app.current || document.hidden)) {
        roomList.unread(room, 1, true);
      }
    },

    left({ room }) {
      const next = roomList.next(room);
      app.forgetRoom(room);
      if (app.current === room) app.select(next);
    },

    error(f) {
      // A `history` the server refused: the room's request is over.
      if (!f.id && f.room && f.code === 'not_in_room') backlog.refused(f.room);
      const room = f.room && view.rooms.has(f.room) ? f.room : app.current;
      // In no room, in the no-room log.
      // A refused line the input cannot take back (it holds another: the
      // refusals of several lines sent together) is said with its error,
      // or its text would be lost.
      const line = f.failed && f.failed.line;
      const said = f.message || f.code;
      const text = line && !composer.canRestore() ? `${said}; your line: ${line}` : said;
      const li = room ? note(room, text, 'error', f.code) : app.say(text, 'error', f.code);
      if (li) li.title = f.code;
      // Said once: the log's line waits while the input shows the error.
      const shown = () => view.shown(li);
      showError(f.code, text, li && { li, shown }, room);
      // Last: fitting the input lays the page out, and done while the
      // refused line's pending copy was gone but the error not yet in, it
      // pulled the log up, which then read as the reader scrolling away.
      if (f.failed) composer.restore(f.failed.line);
    },

    notice({ text }) {
      app.say(text, 'notice server');
    },

    // Another tab (a duplicated one shares the token), window or connection
    // resumed this session: it goes on there. Reconnecting by ourselves
    // would take it back, and the other would do the same, for ever; the
    // user chooses with #continue-here. Unsent lines stay pending.
    elsewhere() {
      app.conn.stop('elsewhere');
      app.offline('not sent: continue here to send');
      app.sayLost('this conversation continued in another tab or window (or on another connection)', 'resumed_elsewhere');
      showElsewhere(true);
    },
  };

  return {
    handlers,
    lost: (room) => toldLost.add(room),
    /** Whether `room`'s log said the connection lost, and will say it is back. */
    toldLost: (room) => toldLost.has(room),
    resumed: (room) => reloaded.add(room),
    keptFrom: (room, at) => kept.set(room, at),
    since: (room) => kept.get(room) ?? null,
    forget(room) {
      kept.delete(room);
      catchup.delete(room);
      toldLost.delete(room);
      reloaded.delete(room);
      gapped.delete(room);
    },
  };
}
