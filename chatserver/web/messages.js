// The message list: one log per room inside #messages (only the current
// one shown), each event placed by its seq so that nothing appears twice
// or out of order, whatever order replays, live frames and history pages
// arrive in. It also keeps the reader's place: following new messages at
// the bottom, staying put when older ones load above. How many lines a
// log keeps, and where its reader is in it, is keep.js's; what a room
// cut while read far back shows of that, cut.js's.

import { nickKey } from './protocol.js';
import { endCut, markCut, offerNewest, waiting } from './cut.js';
import { bound, keepPlace, leave, MAX_KEPT, MAX_SHOWN, trim } from './keep.js';
import { body, isolated, nickButton, timeElement, unstampedTime } from './text.js';

export { MAX_KEPT, MAX_SHOWN };

const NEAR = 48; // px from an edge that still counts as at it

/**
 * The lowest and highest of the seqs in `seqs` (a map keyed by seq), in
 * one pass; Infinity and -Infinity when it is empty. Not a spread into
 * Math.min: one argument a line is thousands (and a log that kept every
 * line, as one left scrolled up did, overflowed the stack at some 150,000).
 */
function seqRange(seqs) {
  let low = Infinity;
  let high = -Infinity;
  for (const s of seqs.keys()) {
    if (s < low) low = s;
    if (s > high) high = s;
  }
  return { low, high };
}

/**
 * ` → bob, carol`: a private or group message's recipients, each a
 * nickname set apart from the line's direction (a name written right to
 * left, and the comma after it, would otherwise run into the next).
 */
function recipients(to) {
  const span = document.createElement('span');
  span.className = 'to';
  span.append(' → ');
  to.forEach((n, i) => {
    if (i) span.append(', ');
    span.append(nickButton(n, '', true));
  });
  return span;
}

export class MessageView {
  /**
   * `handlers`: `olderWanted(room)` when the top of the log is reached
   * (and when a cut room, emptied, wants its newest page: see
   * `toNewest`), `canPage(room)` whether a page of `room` can be asked
   * for now (connected and in it; always, if not given), `trimmed(room)`
   * when its oldest lines went (see MAX_SHOWN and MAX_KEPT),
   * `notesTrimmed(room)` when only lines without a seq did (or its
   * newest went: a gap's note may have gone with them), `typeHere()`
   * the focus to the message input (false if it cannot take it).
   */
  constructor(scroller, jumpButton, handlers) {
    this.scroller = scroller;
    this.jump = jumpButton;
    this.h = handlers;
    /**
     * room -> { section, events, pending, older, start, seqs: Map<seq, li>,
     * plain (lines without a seq, at most: exact whenever they are
     * counted), stick, top, span (where its reader left it: see `leave`),
     * cleared: { from, to } | null (the seqs `/clear` hid),
     * cut: { after, high, line, news, waiting } | null (see cut.js,
     * `toNewest`) }
     */
    this.rooms = new Map();
    this.current = null;
    // Whether the reader follows the newest messages: kept when the log
    // is resized (an error line appears, the keyboard opens on a phone).
    this.stuck = true;
    this.lastTop = 0;
    // The log's height when a scroll event or a resize was last seen: a
    // scroll event that comes with a new height is the browser moving the
    // log to fit (taller, the error line and the input shrinking as a line
    // is sent), not the reader scrolling.
    this.lastHeight = scroller.clientHeight;
    // Lines going in are a page of older ones (see `above`).
    this.paging = false;
    // A frame asked for to scroll (or show the jump button) once for all
    // the lines put in since: reading the layout after each line of a
    // burst cost a whole layout each, and froze the page for seconds.
    this.frame = 0;
    // Lines came below while the reader read older ones: the jump button
    // says "New messages", else only "Newest".
    this.newBelow = false;
    scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    new ResizeObserver(() => {
      this.lastHeight = scroller.clientHeight;
      if (this.stuck) this.toBottom();
      else this.updateJump();
    }).observe(scroller);
    jumpButton.addEventListener('click', () => this.toNewest());
  }

  addRoom(room) {
    if (this.rooms.has(room)) return this.rooms.get(room);
    const section = document.createElement('section');
    section.className = 'room-log';
    section.dataset.room = room;
    section.setAttribute('aria-label', `#${room}`);
    section.hidden = true;
    const top = document.createElement('div');
    top.className = 'log-top';
    const older = document.createElement('button');
    older.type = 'button';
    older.className = 'load-older';
    older.textContent = 'Load older messages';
    older.addEventListener('click', () => this.h.olderWanted(room));
    const start = document.createElement('p');
    start.className = 'log-start';
    start.textContent = `This is the start of #${room}'s history.`;
    start.hidden = true;
    top.append(older, start);
    const events = document.createElement('ol');
    events.className = 'events';
    const pending = document.createElement('ol');
    pending.className = 'pending-list';
    pending.setAttribute('aria-label', 'not sent yet');
    section.append(top, events, pending);
    this.scroller.append(section);
    const r = {
      section,
      events,
      pending,
      older,
      start,
      /** The server keeps nothing older than the top: `start` says so. */
      olderGone: false,
      /** Its older pages: 'more', 'loading', 'start' or 'none' (see `setOlder`). */
      olderState: 'none',
      /** The line that says its history began anew, the new one below it. */
      floor: null,
      seqs: new Map(),
      plain: 0,
      stick: true,
      top: 0,
      span: null,
      cleared: null,
      cut: null,
    };
    this.rooms.set(room, r);
    return r;
  }

  removeRoom(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    r.section.remove();
    this.rooms.delete(room);
    if (this.current === room) this.current = null;
  }

  /** Show `room`'s log, where the reader left it. */
  show(room) {
    const old = this.current && this.rooms.get(this.current);
    if (old) {
      old.stick = this.stuck;
      old.top = this.scroller.scrollTop;
      old.span = old.stick ? null : leave(this, this.current, old);
      if (old.cut) old.cut.news = this.newBelow;
      old.section.hidden = true;
    }
    this.current = room;
    const r = this.rooms.get(room);
    // A cut room's new messages are nowhere in its log: the jump button
    // says they came, as it did when the reader left, or came since.
    this.newBelow = Boolean(r?.cut?.news);
    if (!r) return;
    r.section.hidden = false;
    if (r.stick) this.toBottom();
    else {
      this.scroller.scrollTop = r.top;
      // Lines that went from above it meanwhile (MAX_KEPT) moved what
      // was in view: back to where the reader left its first line.
      const first = r.span?.first;
      if (first?.isConnected) {
        this.scroller.scrollTop += first.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top - r.span.offset;
      }
      this.lastTop = this.scroller.scrollTop;
      this.stuck = this.atBottom();
    }
    this.updateJump();
  }

  /**
   * `room`'s history was reset (a server that keeps it only in memory
   * started again): its seqs start over. What is shown stays, as lines
   * without a seq (`old`), above `mark` (the line that says so), and the
   * new history goes below it.
   */
  newEpoch(room, mark) {
    const r = this.rooms.get(room);
    if (!r) return;
    for (const li of r.seqs.values()) {
      delete li.dataset.seq;
      li.classList.add('old');
    }
    r.plain += r.seqs.size;
    r.seqs.clear();
    r.cleared = null;
    // A cut room's seqs start over too: what the new history brings goes
    // below the line that says it began anew, with no hole to fill. Its
    // cut line is no longer one (no way to the newest, which are gone
    // with the old history): it says what became of them.
    if (r.cut) endCut(room, r);
    if (mark) r.floor = mark;
    startText(room, r);
  }

  /**
   * `room`'s seqs above `seq` are given again (a server that lost its last
   * ones): the lines shown with them stay, as lines without a seq (`old`),
   * so that the events now numbered so are shown as well.
   */
  forgetAbove(room, seq) {
    const r = this.rooms.get(room);
    if (!r) return;
    for (const [s, li] of [...r.seqs]) {
      if (s <= seq) continue;
      delete li.dataset.seq;
      li.classList.add('old');
      r.seqs.delete(s);
      r.plain += 1;
    }
    // Those seqs are new events now: counted again, in a cut room.
    if (r.cut) {
      r.cut.after = Math.min(r.cut.after, seq);
      r.cut.high = Math.min(r.cut.high, seq);
    }
    // What `/clear` hid above it is not what those seqs are now.
    if (r.cleared && r.cleared.to > seq) {
      r.cleared = r.cleared.from > seq ? null : { from: r.cleared.from, to: seq };
    }
  }

  /**
   * `/clear`: the lines shown in `room` go. The range of their seqs is
   * kept (not the lines), so that a replay does not bring them back, and
   * older history is still paged from where it was.
   */
  clearShown(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    if (r.seqs.size || r.cut) {
      // A cut room's: what came after the lines kept too, which were
      // counted and not shown (the next events then go on from there).
      const { low, high } = seqRange(r.seqs);
      const from = Math.min(low, r.cleared?.from ?? Infinity, r.cut ? r.cut.after + 1 : Infinity);
      const to = Math.max(high, r.cleared?.to ?? -Infinity, r.cut?.high ?? -Infinity);
      r.cleared = { from, to };
    }
    r.cut = null;
    markCut(r);
    r.events.replaceChildren();
    r.seqs.clear();
    r.plain = 0;
    startText(room, r);
    if (this.isCurrent(room)) this.toBottom();
  }

  /**
   * A typed `/history` shows again what `/clear` hid: true if it hid
   * something and nothing older is shown, so that paging from the oldest
   * line shown goes through what was hidden (as chatclient's does).
   */
  unclear(room) {
    const r = this.rooms.get(room);
    if (!r || !clearedAtTop(r)) return false;
    r.cleared = null;
    startText(room, r);
    return true;
  }

  /** The smallest seq shown in `room` (or hidden by `/clear`), or null. */
  oldestSeq(room) {
    const r = this.rooms.get(room);
    if (!r) return null;
    const min = Math.min(seqRange(r.seqs).low, r.cleared?.from ?? Infinity);
    return min === Infinity ? null : min;
  }

  /**
   * The oldest lines of `room`'s log went (`seqs`: some with a seq): the
   * pages asked from there on are for the handlers to settle.
   */
  oldestWent(room, r, seqs) {
    if (!seqs) {
      // (The mark of a history begun anew may have gone.)
      startText(room, r);
      this.h.notesTrimmed?.(room);
      return;
    }
    r.cleared = null;
    startText(room, r);
    this.h.trimmed?.(room);
  }

  /** A button at the end of `li` (a line of `room`'s log) that shows the room's newest messages (`toNewest`). */
  offerNewest(room, li) {
    offerNewest(this, room, li);
  }

  /**
   * To the newest line of `room` (the room shown by default). A cut
   * room's log is emptied first and paged again from its newest messages,
   * as after a trim (`trimmed`, then `olderWanted`, which asks for the
   * page below the newest seq seen): taken up where it was cut, it would
   * show a hole, and what came meanwhile is in that page or comes after it.
   * Not connected (the handlers' `canPage(room)` false), what it shows
   * stays until the room can be paged again (`ready`).
   */
  toNewest(room = this.current) {
    const r = room !== null && this.rooms.get(room);
    if (r?.cut && this.h.canPage && !this.h.canPage(room)) {
      // Nothing can be asked now (not connected): what is shown stays,
      // its cut line says the newest show once reconnected (`ready`).
      waiting(room, r);
    } else if (r?.cut) {
      r.cut = null;
      markCut(r);
      r.events.replaceChildren();
      r.seqs.clear();
      r.plain = 0;
      r.cleared = null;
      startText(room, r);
      if (!this.isCurrent(room)) r.stick = true;
      this.h.trimmed?.(room);
      this.h.olderWanted(room);
    }
    if (this.isCurrent(room)) this.toBottom();
  }

  /**
   * `room` can be paged again (entered after a reconnect): newest
   * messages asked for meanwhile (`toNewest`) are shown now.
   */
  ready(room) {
    if (this.rooms.get(room)?.cut?.waiting) this.toNewest(room);
  }

  /** Whether `room`'s reader follows its newest lines (here, or when it last looked). */
  following(room, r) {
    return this.isCurrent(room) ? this.stuck : r.stick;
  }

  /** The smallest seq shown above `after`, or null. */
  firstSeqAbove(room, after) {
    const r = this.rooms.get(room);
    let best = null;
    if (r) for (const s of r.seqs.keys()) if (s > after && (best === null || s < best)) best = s;
    return best;
  }

  /** The line of `room`'s log with seq `seq`, or null. */
  line(room, seq) {
    return this.rooms.get(room)?.seqs.get(seq) ?? null;
  }

  /** Whether more history can be asked for (the button), or the start was reached. */
  /**
   * The top of `room`'s log: `state` of its older pages ('more',
   * 'loading', 'start', 'none'); `olderGone`: the server no longer keeps
   * what is older than its start (it says so, not "the start").
   */
  setOlder(room, state, olderGone = false) {
    const r = this.rooms.get(room);
    if (!r) return;
    r.olderGone = olderGone;
    const gone = state !== 'more' && state !== 'loading';
    // Tabbed to, the button asks for a page by itself (it comes into
    // view): disabled, it dropped the focus to the page's body, so it is
    // only marked busy (a click then asks for nothing), and when it goes
    // the focus goes to the log.
    if (gone && document.activeElement === r.older) this.scroller.focus({ preventScroll: true });
    r.older.hidden = gone;
    r.older.setAttribute('aria-disabled', String(state === 'loading'));
    r.older.textContent = state === 'loading' ? 'Loading…' : 'Load older messages';
    r.olderState = state;
    startText(room, r);
  }

  /** A message; false if its seq is already shown. */
  message(m, me) {
    const li = document.createElement('li');
    li.className = 'msg';
    if (m.mine) li.classList.add('mine');
    if (m.replay) li.classList.add('replay');
    li.dataset.seq = String(m.seq);
    li.dataset.room = m.room;
    li.dataset.from = m.from;
    if (m.id) li.dataset.id = m.id;
    li.append(timeElement(m.ts));
    const head = document.createElement('span');
    head.className = 'head';
    // "/me waves" is an action (PROTOCOL.md 5.3): "* alice waves".
    const action = /^\/me\s+\S/.test(m.text);
    if (action) {
      li.classList.add('action');
      head.append('* ');
    }
    head.append(nickButton(m.from, 'from', true));
    if (m.to.length) {
      li.classList.add('private');
      li.dataset.to = m.to.join(',');
      head.append(recipients(m.to));
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = m.to.length === 1 ? 'private' : 'group';
      head.append(' ', tag);
    }
    li.append(body(head, ' ', isolated('span', 'text', action ? m.text.slice(4).trimStart() : m.text)));
    if (forMe(m, me)) li.classList.add('mention');
    return this.place(m.room, m.seq, li, false, m.sentHere);
  }

  /**
   * A presence line ("bob joined #rust"); false if already shown. `late`:
   * said after a hold (a leaving), so notices put after the line before it
   * came first, and it goes below them.
   */
  presence(p, words, late = false) {
    const li = document.createElement('li');
    li.className = 'presence';
    li.dataset.seq = String(p.seq);
    li.dataset.room = p.room;
    li.dataset.nick = p.nick;
    li.dataset.status = p.online ? 'online' : 'offline';
    li.append(timeElement(p.ts), body(nickButton(p.nick, '', true), ` ${words}`));
    return this.place(p.room, p.seq, li, late);
  }

  /**
   * A line with no seq (notice, error, local help), at the end of `room`'s
   * log (in a cut room, below its cut line: see cut.js): `text`, or an
   * element holding it (nicknames and all).
   */
  note(room, text, className, code) {
    const r = this.rooms.get(room);
    if (!r) return null;
    const li = document.createElement('li');
    li.className = className;
    if (code) li.dataset.code = code;
    li.append(timeElement(Date.now()), body(typeof text === 'string' ? isolated('span', 'text', text) : text));
    r.events.append(li);
    r.plain += 1;
    if (this.following(room, r) && r.events.childElementCount > MAX_SHOWN) trim(this, room, r);
    else if (r.seqs.size + r.plain > MAX_KEPT) bound(this, room, r);
    if (this.isCurrent(room)) this.settle(true);
    return li;
  }

  /**
   * A line of the log hidden a while came back (an error said by the
   * input first): in view, as a new line is, if the reader follows.
   */
  shown(li) {
    const room = li.closest('.room-log')?.dataset.room;
    if (room !== undefined && this.isCurrent(room)) this.settle(true);
  }

  /** A message sent and not yet echoed, shown below the log until it is. */
  pending(p, me) {
    const r = this.rooms.get(p.room);
    if (!r) return;
    const li = document.createElement('li');
    li.className = 'msg pending';
    li.dataset.id = p.id;
    li.dataset.room = p.room;
    const head = document.createElement('span');
    head.className = 'head';
    head.append(nickButton(me, 'from', true));
    if (p.to.length) head.append(recipients(p.to));
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'sending…';
    li.append(unstampedTime(), body(head, ' ', isolated('span', 'text', p.text), ' ', state));
    r.pending.append(li);
    if (this.isCurrent(p.room)) {
      // Its echo must show: a cut room goes to its newest messages.
      if (r.cut) this.toNewest(p.room);
      this.stuck = true;
      this.settle();
    }
  }

  acked(p) {
    const r = this.rooms.get(p.room);
    r?.pending.querySelector(`li[data-id="${CSS.escape(p.id)}"]`)?.remove();
  }

  /** Mark pending messages as waiting for the connection, or sending again. */
  pendingState(text) {
    for (const r of this.rooms.values()) {
      for (const s of r.pending.querySelectorAll('.state')) s.textContent = text;
    }
  }

  /**
   * Insert a batch (a history page) above what the reader sees without
   * moving it: `fn` does the inserting. The log (a live region) does not
   * say its lines: the reader asked for them and reads them where they
   * go, and what a page brought is said by a note where it matters
   * (`/history`'s, a gap's). Each goes in `aria-live="off"`, a region of
   * its own that says nothing (see `place`). Not `aria-busy` on the log
   * around the batch: set and cleared in one task it never reached the
   * accessibility tree, and no later task or frame is sure to come after
   * the tree went out (Chromium sends it at most every 150 ms), while
   * meanwhile a new line said in the room would be silenced too.
   */
  above(room, fn) {
    this.paging = true;
    try {
      keepPlace(this, room, fn);
    } finally {
      this.paging = false;
    }
    // Checked once for the page: the reader, at its top, reads on into it.
    const r = this.rooms.get(room);
    if (r && r.seqs.size + r.plain > MAX_KEPT) bound(this, room, r, true);
  }

  /**
   * Put `li` in `room`'s log in seq order; false (and nothing done) if the
   * seq is there. `afterNotes`: below the notices (lines without a seq)
   * that follow the line before it, not above them. `own`: the echo of a
   * line this page sent, shown even in a cut room (below its cut line).
   */
  place(room, seq, li, afterNotes = false, own = false) {
    const r = this.rooms.get(room);
    if (!r || r.seqs.has(seq)) return false;
    if (r.cleared && seq >= r.cleared.from && seq <= r.cleared.to) return false;
    if (r.cut && seq > r.cut.after) {
      // Not shown in a cut room (see cut.js): counted, once, as new below.
      if (seq <= r.cut.high) return false;
      r.cut.high = seq;
      if (own) {
        // The reader's own line, shown as sending until now: it stays in
        // sight, below the cut line as a note is, without its seq (the
        // newest messages bring it again), and it is no news.
        delete li.dataset.seq;
        r.events.append(li);
        r.plain += 1;
        if (r.seqs.size + r.plain > MAX_KEPT) bound(this, room, r);
        if (this.isCurrent(room)) this.settle();
        return true;
      }
      if (this.isCurrent(room)) this.settle(true);
      else r.cut.news = true;
      return true;
    }
    // Usually the newest: scan back from the end to the last smaller seq;
    // lines without a seq (notices) stay where they were put.
    let after = null;
    let maxSeen = -1;
    for (let c = r.events.lastElementChild; c; c = c.previousElementSibling) {
      if (c.dataset.seq === undefined) continue;
      const s = Number(c.dataset.seq);
      if (maxSeen < 0) maxSeen = s;
      if (s < seq) {
        after = c;
        break;
      }
    }
    if (afterNotes && after) {
      while (after.nextElementSibling && after.nextElementSibling.dataset.seq === undefined) {
        after = after.nextElementSibling;
      }
    }
    // A line of an older page (see `above`) is not said by the log.
    if (this.paging) li.setAttribute('aria-live', 'off');
    // (In a cut room, the newest line it may show goes above its cut
    // line, and what was said below that.)
    if (maxSeen < seq) (r.cut ? r.cut.line.before(li) : r.events.append(li));
    else if (after) after.after(li);
    else if (r.floor?.isConnected) r.floor.after(li);
    else r.events.prepend(li);
    r.seqs.set(seq, li);
    // Only while the reader follows the newest lines (here, or when it
    // last looked at this room): one reading older ones keeps them, up to
    // MAX_KEPT (a page of older ones is checked once it is in: `above`).
    // (Counting children walks them all: only when trimming may follow.)
    if (maxSeen < seq && this.following(room, r) && r.events.childElementCount > MAX_SHOWN) {
      trim(this, room, r);
    } else if (!this.paging && r.seqs.size + r.plain > MAX_KEPT) bound(this, room, r);
    if (this.isCurrent(room)) this.settle(maxSeen < seq);
    return true;
  }

  /** Move a notice right after the last line with a seq at most `seq`. */
  moveNote(room, li, seq) {
    const r = this.rooms.get(room);
    if (!r) return;
    let after = null;
    for (const [s, el] of r.seqs) {
      if (el.isConnected && s <= seq && (!after || s > after[0])) after = [s, el];
    }
    if (after) after[1].after(li);
    else r.events.prepend(li);
  }

  /** Whether the log shown is taller than its place (it can scroll). */
  overflows() {
    return this.scroller.scrollHeight > this.scroller.clientHeight;
  }

  isCurrent(room) {
    return room === this.current;
  }

  /** Whether `room` is cut (see `cut`): its last line is not its newest, and events after it are not shown. */
  isCut(room) {
    return Boolean(this.rooms.get(room)?.cut);
  }

  /** Whether the room shown is cut. */
  cutHere() {
    return this.current !== null && this.isCut(this.current);
  }

  /** At the newest line: never in a cut room, whose bottom is not that. */
  atBottom() {
    if (this.cutHere()) return false;
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR;
  }

  /**
   * Before the next paint, once however many lines came: to the newest
   * line if the reader follows them, else the jump button updated.
   */
  settle(below = false) {
    if (below && !this.stuck) this.newBelow = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.stuck) this.toBottom();
      else this.updateJump();
    });
  }

  /**
   * To the bottom of the log shown, following its newest lines; in a cut
   * room only to its bottom, where the jump button still offers the
   * newest (`toNewest`).
   */
  toBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.lastTop = this.scroller.scrollTop;
    if (this.cutHere()) {
      this.stuck = false;
      this.updateJump();
      return;
    }
    this.stuck = true;
    this.newBelow = false;
    this.showJump(false);
  }

  updateJump() {
    this.showJump(!this.atBottom());
    this.jump.textContent = this.newBelow ? '↓ New messages' : '↓ Newest';
  }

  /**
   * The jump button shown or hidden. Hidden with the focus on it (it was
   * pressed, or the log scrolled down to the newest under it), the focus
   * would drop to the page's body: reached from the keyboard, it goes to
   * the message input, to type on; clicked or tapped, to the log, whose
   * newest lines a phone's keyboard would cover.
   */
  showJump(shown) {
    if (!shown && !this.jump.hidden && document.activeElement === this.jump) {
      const typing = this.jump.matches(':focus-visible') && this.h.typeHere?.();
      if (!typing) this.scroller.focus({ preventScroll: true });
    }
    this.jump.hidden = !shown;
  }

  onScroll() {
    // Only the reader scrolling up lets go of the bottom: a scroll event
    // that reports a layout change (the log got shorter) does not.
    const top = this.scroller.scrollTop;
    const resized = this.scroller.clientHeight !== this.lastHeight;
    this.lastHeight = this.scroller.clientHeight;
    // Moved to fit, the log neither lets go of the bottom nor takes it:
    // the resize observer, called after this, keeps a log that follows
    // at its newest line.
    if (!resized && top < this.lastTop) this.stuck = this.atBottom();
    else if (!resized && this.atBottom()) this.stuck = true;
    this.lastTop = top;
    this.updateJump();
    if (this.current && this.scroller.scrollTop < NEAR) this.h.olderWanted(this.current, true);
  }
}

/** Whether `/clear` hid the oldest lines of a room's log `r` holds (none older is shown). */
function clearedAtTop(r) {
  if (!r.cleared) return false;
  for (const s of r.seqs.keys()) if (s < r.cleared.from) return false;
  return true;
}

/**
 * The line above a room's log once its start is reached (or where the
 * server's kept history starts, older messages deleted), which says when
 * `/clear` hid what follows it. Not above lines from before the history
 * began anew: the start of the new one is where the line that says so
 * is (`floor`), which says it there.
 */
function startText(room, r) {
  const start = r.olderGone
    ? `Older messages of #${room} are no longer kept`
    : `This is the start of #${room}'s history`;
  r.start.textContent = clearedAtTop(r) ? `${start}; /history shows again what /clear hid.` : `${start}.`;
  r.start.hidden = r.olderState !== 'start' || Boolean(r.floor?.isConnected);
}

/**
 * Whether someone else's message `m` is for `me` in particular: written to
 * them only (or to a group with them), or naming them.
 */
export function forMe(m, me) {
  return !m.mine && Boolean(me) && (m.to.length > 0 || mentions(m.text, me));
}

/**
 * Whether `text` names `nick` as a word of its own, in any spelling of
 * the same person (nickKey: `hi bob`, `BOB: look`, `@Bob`, `STRASSE` for
 * Straße), not `bobby`, nor `bob_b` or `bob-b` (other nicknames: `_` and
 * `-` join a word), nor `bob` with an accent on its last letter.
 */
function mentions(text, nick) {
  if (!nick) return false;
  const t = nickKey(text);
  const n = nickKey(nick);
  const word = /[\p{L}\p{M}\p{N}_-]/u;
  for (let i = t.indexOf(n); i >= 0; i = t.indexOf(n, i + 1)) {
    const before = i > 0 ? t[i - 1] : '';
    const after = t[i + n.length] ?? '';
    if (!word.test(before) && !word.test(after)) return true;
  }
  return false;
}
