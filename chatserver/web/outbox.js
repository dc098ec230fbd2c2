// The messages this page sent and the server has not confirmed: their ids,
// where each room stood when each was typed, sending them (again) after a
// reconnect or a reload, and giving up, as `unconfirmed`, those whose fate
// a new session cannot learn. Methods of `Session` (session.js), kept here
// apart from joining, rooms and events; they use its state (`pending`,
// `held`, `parting`, `rooms`) and its `send` and `emit`.

import * as P from './protocol.js';
import { newRoom } from './roomstate.js';

/**
 * How long after a reconnect a private or group message typed while
 * offline (or pending across the loss) that is refused `unknown_nick`
 * waits for the people it names to be online in its room, before the
 * refusal is said: after a server's restart they may be back a second
 * later. As chatclient's ABSENT_WINDOW_MS.
 */
export const ABSENT_WINDOW_MS = 10000;
/** Times one such message is sent again, at most (a list behind the server's). */
const ABSENT_RESENDS = 2;

export const outbox = {
  /**
   * Take back `items` ({ id, room, to, text, line, epoch, after, sent }),
   * the messages this session had not had acknowledged when the page was
   * reloaded: pending again, sent once joined (a resumed session drops
   * what it has by id; a new one, as after any loss, gives up those it
   * cannot find: see `release`). One for a room left meanwhile makes the
   * next connection enter it again to send it, then leave (see `parting`).
   */
  restore(items) {
    for (const { id, room, to, text, line, epoch, after, sent = true, unchecked = false } of items) {
      if (this.pending.some((p) => p.id === id) || P.roomName(room).room !== room) continue;
      if (!this.rooms.has(room) && !this.parting.has(room)) {
        this.parting.set(room, { ...newRoom(), epoch, lastSeq: after });
      }
      // Kept without `sent` (by an older page): it may have gone.
      const p = { id, room, to, text, line, epoch, after, sent, unchecked };
      this.pending.push(p);
      this.emit('pending', p);
    }
  },

  /**
   * Send `text` to `to` (empty: everyone) in `room`. Returns the pending
   * entry, or `{ error }` when the message could never be sent.
   */
  sendMsg(room, to, text, line) {
    text = P.wellFormed(text);
    if (to.length > this.limits.maxRecipients) {
      return { error: `a message may name at most ${this.limits.maxRecipients} recipients` };
    }
    this.nextId += 1;
    // Where the room stood when it was typed: it can only have been
    // stamped after that (see `message`).
    const r = this.rooms.get(room);
    const p = { id: `${this.idPrefix}${this.nextId}`, room, to, text, line, epoch: r?.epoch ?? null, after: r?.lastSeq ?? 0 };
    // Typed while offline: it may wait for its people (see `waitForAbsent`).
    if (!this.joined && to.length) p.offline = true;
    // A frame over the limit would close the connection, and then be sent
    // again on every reconnect: refuse it here.
    const error = this.tooLong(room, to, text, p.id);
    if (error) return { error };
    this.pending.push(p);
    this.emit('pending', p);
    // Behind the held ones while its room's replay runs, and after its
    // `enter` if that waits.
    if (this.joined && !this.held.has(room) && !r?.waits) this.sendPending(p);
    return p;
  },

  /**
   * Send pending message `p`. The first time, it is noted as sent
   * (emitted: `sent`), and where its room stood then if it was not known
   * when it was typed: a fresh session's replay can hold it only after
   * that.
   */
  sendPending(p) {
    // The connection it last went on: not sent twice on one. Sent on
    // this session, its id is the session's: nothing to look for in a
    // replay any more.
    p.on = this.connections;
    p.unchecked = false;
    if (!p.sent) {
      p.sent = true;
      const r = this.rooms.get(p.room) ?? this.parting.get(p.room);
      if (p.epoch === null && r?.epoch != null) {
        p.epoch = r.epoch;
        p.after = r.lastSeq;
      }
      this.emit('sent', p);
    }
    this.send(P.msg(p.room, p.to, p.text, p.id));
  },

  /**
   * Why `text` to `to` in `room` is too long to send (with an id like
   * `id`, this session's next by default), or null if it fits.
   */
  tooLong(room, to, text, id = `${this.idPrefix}${this.nextId + 1}`) {
    // The text as the frame carries it (JSON-escaped), against what is
    // left of the frame limit around its stamped copy as the server
    // replays it (PROTOCOL.md 5.3: `from`, `seq`, `ts`, the id and
    // `"replay":true`), the seq counted at its widest: at most 19 bytes
    // short of the server's own bound, as chatclient counts it.
    const bytes = P.utf8Length(JSON.stringify(P.wellFormed(text))) - 2;
    const around = P.utf8Length(
      `{"type":"msg","room":${JSON.stringify(room)},"seq":18446744073709551615,` +
        `"from":${JSON.stringify(this.nick)},"to":${JSON.stringify(to)},"text":"",` +
        `"ts":9999999999999,"id":${JSON.stringify(id)},"replay":true}`,
    );
    const max = this.limits.maxFrameBytes - P.STAMP_MARGIN - around;
    // Grouped as chatclient writes them (64,879).
    const n = (x) => x.toLocaleString('en-US');
    return bytes > max ? `the message is too long (${n(bytes)} bytes; the server takes at most ${n(max)})` : null;
  },

  /**
   * `room`, whose `enter` waited, is left before it went: what was typed
   * into it and waited for the entering is given up (a line that went
   * before, to a room not entered, waits for the server's answer), and
   * nothing is held for its replay any more.
   */
  giveUpUnentered(room) {
    this.held.delete(room);
    for (const p of this.pending.filter((p) => p.room === room && !p.sent)) {
      this.ack(p.id);
      const message = `your message was not sent: you left #${room} before it was entered`;
      this.emit('error', { type: 'error', code: 'not_in_room', message, id: p.id, room, failed: p });
    }
  },

  /**
   * The replay of `room` is over (or none is coming: the room was
   * refused): send what was held for it. Of the messages written to an
   * earlier session's socket and not found in the replay, only those the
   * replay shows did not arrive go again: a message to the room, in a
   * replay that holds everything said there since (`recovered`, the same
   * history). The others' fate cannot be learnt (PROTOCOL.md 5.6 hides an
   * earlier session's private and group messages; a replay short of its
   * seq, or a history begun anew, may lack a room message that others
   * got): each is given up (`unconfirmed`), for the person to send again
   * or not, rather than delivered twice.
   */
  release(room) {
    if (!this.held.delete(room)) return;
    const r = this.rooms.get(room) ?? this.parting.get(room);
    for (const p of this.pending.filter((p) => p.room === room)) {
      const absent = p.to.length === 0 && r?.recovered && p.epoch === r.epoch;
      if (!p.unchecked || absent) this.sendPending(p);
      else this.unconfirmed(p);
    }
    this.partWhenAnswered(room);
  },

  /**
   * Give up pending `p`, which an earlier session's connection took and
   * which may or may not have arrived: gone from `pending` (emitted:
   * `acked`), and emitted as `unconfirmed`, never sent again by itself.
   */
  unconfirmed(p) {
    this.pending.splice(this.pending.indexOf(p), 1);
    this.emit('acked', p);
    this.emit('unconfirmed', p);
  },

  /** Send the `part` of `room`, left while messages to it waited, once none does. */
  partWhenAnswered(room) {
    // The parting rooms first: every answer to a message comes here, and
    // almost no room is being left.
    const r = this.parting.get(room);
    if (!r || !this.joined || this.held.has(room) || this.pending.some((p) => p.room === room)) return;
    this.parting.delete(room);
    // Not entered (refused) on this connection: not in it, nothing to leave.
    if (r.entered || this.entering.has(room)) this.send(P.part(room));
    this.enterWaiting();
  },

  /**
   * Where to enter `room`, not seen on this page yet (it was reloaded),
   * so that its replay tells whether the room lines an earlier session's
   * socket took arrived: from where the room stood when the first of them
   * (of the newest history they went in) was sent. The replay then holds
   * all said since, `recovered`, and one absent from it did not arrive
   * (see `release`); entered afresh, the room's newest messages could not
   * say. Null when no such line waits.
   */
  pendingFrom(room) {
    const sent = this.pending.filter((p) => p.room === room && p.sent && p.to.length === 0 && p.epoch != null);
    if (!sent.length) return null;
    const { epoch } = sent[sent.length - 1];
    const since = Math.min(...sent.filter((p) => p.epoch === epoch).map((p) => p.after));
    return { since, epoch };
  },

  /**
   * `room`, seen at epoch `was`, is entered (`f`): where its pending
   * messages may be stored now. A message sent in this history after a
   * later seq than the room's (behind, or found so after a reload, whose
   * rooms start unseen) may be stored above f.seq; one sent before the
   * history began anew (a new epoch) anywhere in the new one.
   */
  pendingAt(room, was, f) {
    for (const p of this.pending) {
      if (p.room !== room) continue;
      if (p.epoch === f.epoch && p.after > f.seq) p.after = f.seq;
      else if (p.sent && was != null && was !== f.epoch && p.epoch === was) {
        p.epoch = f.epoch;
        p.after = 0;
      }
    }
  },

  /**
   * `f`, one of our own messages in its room's replay while the room
   * holds what an earlier session sent (`held`): whether it is one of
   * those pending, found by its content (acknowledged if so).
   */
  foundInReplay(f) {
    // A fresh session cannot match ids: match by content, in the replay
    // that comes before the held messages are sent again.
    // Only a copy stamped after it was typed (same history, a later
    // seq) can be it: a line taken back after a reload meets the room's
    // newest messages, where an older "ok" of ours would otherwise pass
    // for it.
    const epoch = (this.rooms.get(f.room) ?? this.parting.get(f.room))?.epoch;
    const p = this.pending.find(
      (p) =>
        p.unchecked &&
        p.room === f.room &&
        p.text === f.text &&
        sameNicks(p.to, f.to ?? []) &&
        (p.epoch === null || (p.epoch === epoch && f.seq > p.after)),
    );
    return p ? this.ack(p.id) : false;
  },

  /**
   * `f`, an `unknown_nick` refusing pending `p`: whether `p` waits for
   * its people instead (typed while offline or pending across the loss,
   * refused within ABSENT_WINDOW_MS of the reconnect). It stays pending,
   * and goes again, with a new id, once everyone it names is online in
   * its room (`sendToThoseBack`); past the window it is refused as `f`
   * said (`absentDue`).
   */
  waitForAbsent(p, f) {
    if (f.code !== 'unknown_nick' || !p?.offline || this.rejoinedAt == null) return false;
    const until = this.rejoinedAt + ABSENT_WINDOW_MS;
    if (Date.now() >= until || (p.resends ?? 0) >= ABSENT_RESENDS) return false;
    p.absent = { until, error: f };
    clearTimeout(this.absentTimer);
    this.absentTimer = setTimeout(() => this.absentDue(), Math.max(0, until - Date.now()) + 1);
    this.sendToThoseBack(p.room);
    return true;
  },

  /** Send again the messages to `room` waiting for people who are all online there now. */
  sendToThoseBack(room) {
    const r = this.rooms.get(room);
    if (!this.joined || !r?.entered || this.held.has(room)) return;
    for (const p of this.pending.filter((p) => p.absent && p.room === room)) {
      if (p.to.every((n) => r.roster.has(P.nickKey(n)))) this.renew(p);
    }
  },

  /**
   * Pending `p`, refused, goes again as a new message (the server refuses
   * its id again): acknowledged, and sent (or kept to send) as another.
   */
  renew(p) {
    // The new copy first: acknowledged first, the old one would let the
    // `part` of a room left meanwhile go before it (no message pending).
    const q = this.sendMsg(p.room, p.to, p.text, p.line);
    this.ack(p.id);
    if (q.error) {
      this.emit('error', { type: 'error', code: 'msg_too_large', message: q.error, id: p.id, room: p.room, failed: p });
      return;
    }
    q.offline = true;
    q.resends = (p.resends ?? 0) + 1;
  },

  /** The waiting window ended: what still waits for its people is refused as the server said. */
  absentDue() {
    const now = Date.now();
    for (const p of this.pending.filter((p) => p.absent && now >= p.absent.until)) {
      this.ack(p.id);
      this.emit('error', { ...p.absent.error, failed: p });
    }
    const next = this.pending.filter((p) => p.absent).map((p) => p.absent.until);
    clearTimeout(this.absentTimer);
    if (next.length) this.absentTimer = setTimeout(() => this.absentDue(), Math.max(0, Math.min(...next) - now) + 1);
  },

  /** Forget pending message `id`; true if it was pending. */
  ack(id) {
    const i = this.pending.findIndex((p) => p.id === id);
    if (i < 0) return false;
    const [p] = this.pending.splice(i, 1);
    this.emit('acked', p);
    this.partWhenAnswered(p.room);
    return true;
  },
};

/** Whether two recipient lists name the same people (as the server folds nicknames). */
function sameNicks(a, b) {
  const keys = (l) => [...new Set(l.map(P.nickKey))].sort().join('\n');
  return keys(a) === keys(b);
}
