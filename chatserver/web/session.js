// The client's side of the protocol, with no DOM and no socket: joining and
// resuming, the rooms and who is in them, message ids, and what to send
// again after a reconnect, so that nothing is lost, shown twice or
// reordered. It follows chatproto's sans-IO client core
// (chatproto/src/client/) step by step. What was sent and is not
// confirmed yet is outbox.js's; a room's record is roomstate.js's.
//
// It outlives connections: call connected() on each new socket, frame()
// for each frame, disconnected() when it closes. Frames to send go to
// `send(frame)` (which drops them while offline); what to show goes to
// `emit(kind, data)`.

import { outbox } from './outbox.js';
import * as P from './protocol.js';
import { crowding, newRoom, rosterChange } from './roomstate.js';

/** The error codes with which the server closes the connection. */
const FATAL = new Set([
  'frame_too_large',
  'empty_frame',
  'server_full',
  'rate_limited',
  'slow_consumer',
  'timeout',
  'resumed_elsewhere',
]);

/** A few random characters, so ids differ between two pages of one nickname. */
function randomPrefix() {
  const bytes = new Uint8Array(6);
  crypto.getRandomValues(bytes);
  return 'w' + Array.from(bytes, (b) => b.toString(36).padStart(2, '0')).join('') + '-';
}

export class Session {
  constructor(nick, rooms, { send, emit, token = null }) {
    this.nick = nick;
    this.send = send;
    this.emit = emit;
    this.phase = 'offline'; // 'offline' | 'joining' | 'joined'
    this.connections = 0;
    /** The session to resume (from a page reloaded), then the current one. */
    this.token = token;
    this.limits = {
      maxFrameBytes: P.DEFAULT_MAX_FRAME_BYTES,
      maxRecipients: 64,
      presenceFanoutMax: P.PRESENCE_FANOUT_MAX,
    };
    /**
     * room -> { epoch, lastSeq, oldest, roster: Map<key, nick>, entered,
     * crowded, away: { roster: Map<key, nick>, crowded } | null, from:
     * { since, epoch } | null (where to enter it if not seen yet) }
     */
    this.rooms = new Map();
    for (const r of rooms) this.rooms.set(r, newRoom());
    this.entering = new Set();
    /**
     * Messages not yet acknowledged, in the order sent: { id, room, to,
     * text, line, epoch, after, sent }, `epoch` and `after` the room's
     * epoch and last seq when it was typed, `sent` once written to a
     * socket.
     */
    this.pending = [];
    /** Rooms whose pending messages wait for the end of the replay (fresh session). */
    this.held = new Set();
    /**
     * room -> its state: rooms left while messages to them waited for an
     * answer; the `part` goes once each is answered (resent after a
     * reconnect into a room already left, one would be refused although
     * it had arrived), and a reconnect meanwhile enters them again.
     */
    this.parting = new Map();
    /** A `welcome` is being handled: the rooms are entered in its order. */
    this.welcoming = false;
    /**
     * The fatal error the server sent on the last joined connection, if
     * it did: a resume's `closed_for` saying the same is not told again.
     */
    this.fatalHeard = null;
    this.idPrefix = randomPrefix();
    this.nextId = 0;
  }

  get joined() {
    return this.phase === 'joined';
  }

  /** Who is in `room`, sorted. */
  roster(room) {
    const r = this.rooms.get(room);
    if (!r) return [];
    return [...r.roster.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map((e) => e[1]);
  }

  roomState(room) {
    return this.rooms.get(room);
  }

  isMe(nick) {
    return P.nickKey(nick) === P.nickKey(this.nick);
  }

  /** A socket is open: join, resuming the session if there is one. */
  connected() {
    this.phase = 'joining';
    this.connections += 1;
    this.entering.clear();
    for (const r of this.parting.values()) {
      r.entered = false;
      r.recovered = false;
      r.roster.clear();
    }
    for (const r of this.rooms.values()) {
      // Who was in the room when the connection went, to tell what
      // changed once it is entered again (kept from the first loss until
      // it is: a reconnect that fails halfway does not move it).
      if (r.entered && !r.away) r.away = { roster: new Map(r.roster), crowded: r.crowded };
      r.entered = false;
      r.recovered = false;
      r.roster.clear();
    }
    // Join into no room, then enter each with `since`, so that each room
    // replays what was missed instead of its newest 50.
    this.send(P.join(this.nick, [], this.token));
  }

  /** The socket closed. What was not acknowledged is kept, to send again. */
  disconnected() {
    this.phase = 'offline';
    this.held.clear();
    this.rejoinedAt = null;
    // Pending across the loss: it may wait for its people after the
    // reconnect; one that waited goes again, as another, on the next
    // connection (its id would be refused again).
    for (const p of [...this.pending]) {
      if (p.absent) this.renew(p);
      else if (p.to.length) p.offline = true;
    }
    // Left, with nothing waiting any more: the next connection does not
    // enter them (a new connection is in no room until it enters).
    for (const room of [...this.parting.keys()]) {
      if (!this.pending.some((p) => p.room === room)) this.parting.delete(room);
    }
  }

  /**
   * Enter `room` (remembered across reconnects). While a room left is
   * still waiting for its `part` (see `parting`), the server counts it:
   * a new room's `enter`, and what is typed into it, wait for that part
   * (`waits`), or at the server's rooms per client it is refused.
   */
  enter(room) {
    // Left, its `part` waiting for its messages' answers: it goes now,
    // and the room is entered anew (its replay shows its newest messages,
    // as for any room entered: what the page showed of it went at the part).
    const wasParting = this.parting.delete(room);
    if (wasParting && this.joined) this.send(P.part(room));
    // (One just left frees its own place: it does not wait.)
    if (!this.rooms.has(room)) this.rooms.set(room, { ...newRoom(), waits: !wasParting && this.parting.size > 0 });
    if (this.joined && !this.rooms.get(room).waits) this.enterNow(room);
    this.enterWaiting();
  }

  /**
   * Leave `room`. Messages sent to it and not answered yet are answered
   * first: the `part` goes after the last of them (see `parting`).
   */
  part(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.rooms.delete(room);
    // Never entered: nothing to leave, and what was typed into it since
    // waited for the entering.
    if (r.waits) return this.giveUpUnentered(room);
    // Its entering stays in `entering`: a refusal of it must still
    // release what was held for it.
    if (this.pending.some((p) => p.room === room)) this.parting.set(room, r);
    else if (this.joined) this.send(P.part(room));
  }

  /** Ask for a page of `room`'s history; false when not joined. */
  history(room, before, limit) {
    if (!this.joined) return false;
    this.send(P.history(room, before, limit));
    return true;
  }

  listRooms() {
    if (!this.joined) return false;
    this.send(P.rooms());
    return true;
  }

  /** A frame from the server, as protocol.decode gives it. */
  frame(f) {
    switch (f.type) {
      case 'ping':
        this.send(P.pong());
        break;
      case 'welcome':
        // One per connection, answering its join: another (a broken
        // server's) would enter every room and resend every message again.
        if (this.phase === 'joining') this.welcome(f);
        break;
      case 'online': {
        // Only `entered` continuations matter: the join enters no room.
        const r = f.room && this.rooms.get(f.room);
        if (r) {
          for (const n of f.nicks) P.admit(r.roster, n);
          crowding(r, this.limits.presenceFanoutMax);
          this.emit('roster', { room: f.room });
          this.sendToThoseBack(f.room);
        }
        break;
      }
      case 'entered':
        this.entered(f);
        break;
      case 'presence':
        this.presence(f);
        break;
      case 'msg': {
        const m = this.message(f, true);
        if (m) this.emit('message', m);
        break;
      }
      case 'history': {
        // Where the room's kept history starts now: retention may have
        // moved it since `entered` said.
        const r = this.rooms.get(f.room);
        if (r && f.oldest !== null) r.oldest = Math.max(r.oldest, f.oldest);
        this.emit('history', {
          room: f.room,
          events: f.events.map((e) => this.message(e, false)).filter(Boolean),
          more: f.more,
          before: f.before ?? (f.more && f.events.length ? f.events[0].seq : null),
        });
        break;
      }
      case 'rooms':
        this.emit('rooms', { rooms: f.rooms, total: f.total });
        break;
      case 'error':
        this.error(f);
        break;
      case 'notice':
        this.emit('notice', { text: f.text });
        break;
      default:
        break;
    }
  }

  welcome(f) {
    this.phase = 'joined';
    this.nick = f.nick;
    this.limits = {
      maxFrameBytes: f.maxFrameBytes,
      maxRecipients: f.maxRecipients,
      presenceFanoutMax: f.presenceFanoutMax,
    };
    // A fresh session remembers none of our ids.
    if (!f.resumed) this.token = null;
    if (f.session) this.token = f.session;
    // Why the server closed the connection before, unless its `error`
    // said it then (the socket of a page closed for reading too slowly
    // often takes nothing more).
    const heard = this.fatalHeard;
    this.fatalHeard = null;
    const closedFor = f.resumed && f.closedFor && f.closedFor !== heard ? f.closedFor : null;
    this.emit('joined', { nick: f.nick, resumed: f.resumed, reconnect: this.connections > 1, closedFor });
    this.rejoinedAt = this.connections > 1 ? Date.now() : null;
    // Waiting messages the new limit no longer takes: sent, each would
    // close the connection, on every reconnect. (Their answers enter
    // nothing yet: the rooms are entered below, in their order.)
    this.welcoming = true;
    for (const p of [...this.pending]) {
      const message = this.tooLong(p.room, p.to, p.text, p.id);
      if (!message) continue;
      this.ack(p.id);
      this.emit('error', { type: 'error', code: 'msg_too_large', message, id: p.id, room: p.room, failed: p });
    }
    this.welcoming = false;
    // Those left while messages to them waited, first: the messages are
    // sent there again, the `part` once they are answered (one whose
    // messages were all given up is left as it is).
    for (const room of [...this.parting.keys()]) {
      if (!this.pending.some((p) => p.room === room)) this.parting.delete(room);
    }
    for (const [room, r] of this.parting) {
      this.entering.add(room);
      this.send(P.enter(room, r.lastSeq, r.epoch));
    }
    // With no room left waiting for its part, none waits to be entered;
    // while one is, those asked for meanwhile wait still, and so does a
    // room never entered yet (asked for offline, or before a reload): at
    // the server's rooms per client it would be refused, or crowd out
    // the room left.
    const waiting = this.parting.size > 0;
    for (const r of this.rooms.values()) r.waits = waiting && (r.waits || r.epoch == null);
    // A new session: a room not seen yet (after a reload) is entered
    // from where it stood when a room line still pending was sent.
    if (!f.resumed) for (const [room, r] of this.rooms) r.from = r.epoch == null ? this.pendingFrom(room) : null;
    for (const [room, r] of this.rooms) if (!r.waits) this.enterNow(room);
    // A resumed session has our ids: the server drops a resend it already
    // has (`duplicate`). A fresh one does not, so a message that reached it
    // before the connection dropped is recognised in the room's replay by
    // its content: resend only after that replay (up to our own presence),
    // and only what that replay shows did not arrive (see `release`).
    // Such a message stays `unchecked` until its room's replay is: a
    // connection lost before that replay came, and resumed, must look for
    // it there again (resent, its id unknown to this session, it would
    // be delivered twice). Only what was sent can be in a replay.
    if (!f.resumed) for (const p of this.pending) if (p.sent) p.unchecked = true;
    this.held.clear();
    for (const p of this.pending) {
      if (p.unchecked && (this.rooms.has(p.room) || this.parting.has(p.room))) this.held.add(p.room);
    }
    for (const p of this.pending) {
      if (!this.held.has(p.room) && !this.rooms.get(p.room)?.waits) this.sendPending(p);
    }
  }

  /**
   * Once no room left waits for its `part`, enter the rooms whose `enter`
   * waited for that (in the order asked for), and send what was typed
   * into them.
   */
  enterWaiting() {
    if (!this.joined || this.welcoming || this.parting.size > 0) return;
    const waiting = [...this.rooms].filter(([, r]) => r.waits).map(([room]) => room);
    for (const room of waiting) {
      this.rooms.get(room).waits = false;
      this.enterNow(room);
    }
    // Not a line sent to the room on this connection before it was asked
    // for (it waits for its answer: `not_in_room`).
    for (const p of this.pending) {
      if (waiting.includes(p.room) && !this.held.has(p.room) && p.on !== this.connections) this.sendPending(p);
    }
  }

  enterNow(room) {
    const r = this.rooms.get(room) || newRoom();
    this.rooms.set(room, r);
    this.entering.add(room);
    // Not seen yet, lines pending: from where they were sent (`welcome`).
    const from = r.epoch == null ? r.from : null;
    r.from = null;
    this.send(from ? P.enter(room, from.since, from.epoch) : P.enter(room, r.lastSeq, r.epoch));
  }

  entered(f) {
    this.entering.delete(f.room);
    const r = this.rooms.get(f.room);
    const parting = this.parting.get(f.room);
    if (!r && parting) {
      // Left, its `part` waiting: in step quietly (its messages' copies in
      // the replay must be told apart from new ones).
      if (parting.epoch !== f.epoch) parting.lastSeq = 0;
      else if (f.seq < parting.lastSeq) parting.lastSeq = f.seq;
      this.pendingAt(f.room, parting.epoch, f);
      parting.epoch = f.epoch;
      parting.entered = true;
      parting.recovered = Boolean(f.recovered);
      return;
    }
    // Parted before this answer arrived: it must not bring the room back.
    if (!r) return;
    const again = r.epoch != null;
    const newEpoch = again && r.epoch !== f.epoch;
    // A new epoch lost what came before; otherwise nothing can be missing
    // if nothing was said since.
    const gap =
      again && !f.recovered && (newEpoch || f.seq > r.lastSeq || f.oldest > r.lastSeq + 1);
    const gapAfter = r.lastSeq;
    // The same history, but the room is behind what was seen here (a
    // server that lost its last seqs, presence only, gives them again:
    // PROTOCOL.md §5.8): its events after f.seq are new ones, not copies.
    const behind = again && !newEpoch && f.seq < r.lastSeq;
    if (r.epoch !== f.epoch) r.lastSeq = 0;
    else if (behind) r.lastSeq = f.seq;
    this.pendingAt(f.room, r.epoch, f);
    r.epoch = f.epoch;
    r.oldest = f.oldest;
    r.seq = f.seq;
    r.entered = true;
    // Whether its replay holds every message said since what was seen here.
    r.recovered = Boolean(f.recovered);
    r.roster = new Map();
    for (const n of f.online) P.admit(r.roster, n);
    r.crowded = false;
    crowding(r, this.limits.presenceFanoutMax);
    if (!again) r.away = null;
    this.emit('entered', { room: f.room, again, gap, gapAfter, newEpoch, behind, seq: f.seq, oldest: f.oldest });
  }

  presence(f) {
    this.presenceEvent(f);
    // The replay is over (after the presence is told: what it gives up
    // is said below the room's reconnected line).
    if (f.online && this.isMe(f.nick)) this.release(f.room);
  }

  presenceEvent(f) {
    const self = this.isMe(f.nick);
    const r = this.rooms.get(f.room);
    // Before its `entered`: the end of an earlier stay (a room left and
    // entered again at once hears its own leaving first).
    if (!r || !r.entered || f.seq <= r.lastSeq) return;
    r.lastSeq = f.seq;
    // Our own arrival ends the room's `online` list: who came and went
    // while we were away is known now. Not in a crowded room (see
    // crowding): its list before may have fallen behind, and the server
    // tells nobody there who comes and goes, away or not.
    let away = null;
    if (f.online && self && r.away) {
      if (!r.away.crowded && !r.crowded) away = rosterChange(r.away.roster, r.roster, (n) => this.isMe(n));
      r.away = null;
    }
    if (f.online) P.admit(r.roster, f.nick);
    else r.roster.delete(P.nickKey(f.nick));
    crowding(r, this.limits.presenceFanoutMax);
    this.emit('presence', { ...f, self, away });
    // Someone back whom a message typed while offline waits for.
    if (f.online) this.sendToThoseBack(f.room);
  }

  /**
   * A `msg` as an event, once: null if already seen. Live ones advance the
   * room's last seq. `mine`: sent by this session; `sentHere`: a line
   * this page sent (the echo of one it had pending).
   */
  message(f, live) {
    let sentHere = false;
    if (f.id) sentHere = this.ack(f.id);
    const fromMe = this.isMe(f.from);
    // A fresh session cannot match ids: see `foundInReplay`.
    if (!sentHere && f.replay && live && fromMe && this.held.has(f.room)) sentHere = this.foundInReplay(f);
    if (live) {
      const r = this.rooms.get(f.room);
      const parting = this.parting.get(f.room);
      if (!r && parting) parting.lastSeq = Math.max(parting.lastSeq, f.seq);
      if (!r || !r.entered || f.seq <= r.lastSeq) return null;
      r.lastSeq = f.seq;
    }
    return { ...f, mine: fromMe, sentHere, live };
  }

  error(f) {
    // A newer connection resumed this session with our token: the session
    // goes on there, and this side must not take it back by itself
    // (PROTOCOL.md 5.1), or two copies would take it from each other.
    if (f.code === 'resumed_elsewhere') {
      this.emit('elsewhere', f);
      return;
    }
    if (this.phase === 'joining') {
      this.emit('refused', f);
      return;
    }
    if (FATAL.has(f.code)) this.fatalHeard = f.code;
    let failed = null;
    if (f.id) {
      failed = this.pending.find((p) => p.id === f.id) || null;
      // Typed while offline, to people not back yet: it waits for them.
      if (this.waitForAbsent(failed, f)) return;
      this.ack(f.id);
      // Delivered before the connection dropped; its copy came (or comes)
      // with the replay.
      if (f.code === 'duplicate') return;
    }
    // Refused, the room is not entered: its name or the cap, or (with no
    // message id) a server whose shared log has no room for it now.
    const refused = ['room_invalid', 'too_many_rooms'].includes(f.code) || (f.code === 'unavailable' && !f.id);
    // An error with a message's id answers that message, never an
    // `enter` of the room it names.
    if (f.room && !f.id && this.entering.delete(f.room) && refused) {
      // (A room the user left meanwhile is gone from the page already.)
      if (this.rooms.delete(f.room)) this.emit('left', { room: f.room });
      this.parting.delete(f.room);
      // No replay is coming: what was held goes now.
      this.release(f.room);
      this.enterWaiting();
    }
    this.emit('error', { ...f, failed });
  }
}

// What was sent and not confirmed yet: outbox.js.
Object.assign(Session.prototype, outbox);
