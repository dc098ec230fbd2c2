// The message list: one log per room inside #messages (only the current
// one shown), each event placed by its seq so that nothing appears twice
// or out of order, whatever order replays, live frames and history pages
// arrive in. It also keeps the reader's place: following new messages at
// the bottom, staying put when older ones load above. How many lines a
// log keeps, and where its reader is in it, is keep.js's; what a room
// cut while read far back shows of that, cut.js's. Its lines are made by
// lines.js; its seqs and its top are logtop.js's; following the newest
// lines, and the jump button to them, follow.js's.

import { markCut, offerNewest, waiting } from './cut.js';
import { follow } from './follow.js';
import { bound, keepPlace, leave, MAX_KEPT, MAX_SHOWN, trim } from './keep.js';
import { lines } from './lines.js';
import { logTop, startText } from './logtop.js';
import { body, isolated, timeElement } from './text.js';

export { MAX_KEPT, MAX_SHOWN };

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
}

// A log's lines made: lines.js; its seqs and its top: logtop.js; where
// its reader is: follow.js.
Object.assign(MessageView.prototype, lines, logTop, follow);
