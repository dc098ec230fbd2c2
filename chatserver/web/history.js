// Older messages: asking for a page when the reader reaches the top of a
// room's log (or types /history), and filling the hole a reconnect left
// when the server could not replay everything missed (`recovered: false`).
// Each room has at most one request of each kind in flight; the server
// answers a connection's requests in order, so answers are matched to
// requests by arrival.

export const PAGE = 50;

/** Empty pages asked for again without a click (each looked at the server's bound of messages). */
export const EMPTY_PAGES_IN_A_ROW = 8;

export class HistoryLoader {
  /**
   * `session()` gives the current Session (or null); `view` is the
   * MessageView; `told(room, text)` shows the answer to a typed /history
   * at the end of the log, as other commands' answers are.
   */
  constructor(view, session, told = () => {}) {
    this.view = view;
    this.session = session;
    this.told = told;
    /**
     * room -> kinds of the requests in flight, oldest first ('older' |
     * 'typed' | 'gap' | 'dropped': an older page a later one replaced,
     * its answer not shown).
     */
    this.asks = new Map();
    /** room -> 'more' | 'loading' | 'start' | 'none' (not known yet) */
    this.state = new Map();
    /** room -> { after, note, button, before, busy }: a hole in the log after `after`. */
    this.gaps = new Map();
    /** room -> where the last page said the next older one starts. */
    this.cursor = new Map();
    /** room -> empty pages in a row since the reader last asked. */
    this.empties = new Map();
    /** room -> answers still to come that were asked before a trim. */
    this.stale = new Map();
    /**
     * Rooms whose older page on its way was asked with nothing of the
     * room shown (after `/clear`): it brings the newest messages, not
     * older ones, and `/history` says so.
     */
    this.newest = new Set();
    /**
     * Rooms whose log reaches the start of what this reader may see (a
     * page said nothing is older, or the room's kept history is all
     * shown): what comes later only adds below, so it stays so (lines
     * shown above a history that begins with joins and leaves do not
     * make it "more" again) until the oldest lines go or the history
     * begins anew.
     */
    this.reached = new Set();
  }

  /** A room was added: nothing known until it is entered. */
  add(room) {
    this.set(room, 'none');
  }

  forget(room) {
    this.asks.delete(room);
    this.state.delete(room);
    this.gaps.delete(room);
    this.cursor.delete(room);
    this.empties.delete(room);
    this.reached.delete(room);
    this.newest.delete(room);
  }

  /** The room's history was begun anew (a new epoch): seqs start over. */
  reset(room) {
    this.dropGap(room);
    this.cursor.delete(room);
    this.empties.delete(room);
    this.stale.delete(room);
    this.reached.delete(room);
  }

  /**
   * The oldest lines of `room`'s log went (too many): older pages start
   * again from the oldest line kept, and a hole whose note went with them
   * is left to those pages.
   */
  trimmed(room) {
    const g = this.gaps.get(room);
    if (g && !g.note.isConnected) this.dropGap(room);
    this.cursor.delete(room);
    this.empties.delete(room);
    this.reached.delete(room);
    // Pages asked before the trim would land above a hole: not shown.
    const asked = this.asks.get(room)?.length ?? 0;
    if (asked) this.stale.set(room, asked);
    this.set(room, 'more');
  }

  /** The connection dropped: what was asked will not be answered. */
  disconnected() {
    for (const [room, state] of this.state) if (state === 'loading') this.set(room, 'more');
    this.asks.clear();
    this.stale.clear();
    this.newest.clear();
    for (const g of this.gaps.values()) busy(g, false);
  }

  /** Entered and replayed: can older history be asked for? */
  settle(room) {
    const r = this.session()?.roomState(room);
    if (!r) return;
    const oldest = this.view.oldestSeq(room) ?? r.seq + 1;
    if (r.seq === 0 || oldest <= Math.max(r.oldest, 1)) this.reached.add(room);
    this.set(room, this.reached.has(room) ? 'start' : 'more');
    this.fill(room);
  }

  /**
   * A log too short to scroll cannot ask for older pages by scrolling,
   * and "Load older messages" would offer what may not exist (the seqs
   * below the oldest line shown may all be joins and leaves): while
   * `room` is shown, one page is asked now, as a scroll to the top would.
   */
  fill(room) {
    if (this.state.get(room) === 'more' && this.view.isCurrent(room) && !this.view.overflows()) {
      this.older(room, true);
    }
  }

  /**
   * Ask for the `limit` messages before the oldest one shown. From a
   * scroll, only when more are known to exist; returns a line to show
   * when there is nothing to ask for. `typed`: asked by /history, whose
   * answer is also told at the end of the log.
   */
  older(room, fromScroll, limit = PAGE, again = false, typed = false) {
    if (!again) this.empties.delete(room);
    const session = this.session();
    if (!session?.joined) return fromScroll ? null : 'not connected; try again once reconnected';
    const state = this.state.get(room);
    // What /clear hid is paged again, from the oldest line shown.
    const unclear = typed && this.view.unclear(room);
    if (state === 'loading' && typed && !unclear) {
      // A page asked by a scroll is on its way: it is the one typed for,
      // told at the end of the log when it comes.
      const q = this.queue(room);
      const i = q.lastIndexOf('older');
      if (i >= 0) q[i] = 'typed';
      return i >= 0 ? null : `older messages of #${room} are on their way`;
    }
    if ((state === 'loading' && !unclear) || (fromScroll && state !== 'more')) return null;
    if (unclear) {
      this.cursor.delete(room);
      this.reached.delete(room);
      // A page on its way (asked by a scroll, or by the log filling) was
      // asked from where the log was: not shown, this one replaces it.
      const q = this.queue(room);
      for (const [i, k] of q.entries()) if (k === 'older' || k === 'typed') q[i] = 'dropped';
    }
    const r = session.roomState(room);
    // Nothing shown (all of it hidden by /clear, say): from the newest event
    // seen, not from where the room was entered (messages came since).
    const newest = Math.max(r.seq, r.lastSeq) + 1;
    const before = Math.min(this.view.oldestSeq(room) ?? newest, this.cursor.get(room) ?? Infinity);
    if (this.reached.has(room) || before <= Math.max(r.oldest, 1)) {
      this.reached.add(room);
      this.set(room, 'start');
      return fromScroll ? null : this.noOlder(room);
    }
    if (session.history(room, before, limit)) {
      if (this.view.oldestSeq(room) === null) this.newest.add(room);
      else this.newest.delete(room);
      this.queue(room).push(typed ? 'typed' : 'older');
      this.set(room, 'loading');
    }
    return null;
  }

  /** Mark a hole after seq `after`, with `note` (a log line) offering to fill it. */
  gap(room, after, note) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'load-gap';
    button.textContent = 'Load missed messages';
    button.addEventListener('click', () => this.fillGap(room));
    (note.querySelector('.body') ?? note).append(' ', button);
    this.gaps.set(room, { after, note, button });
  }

  /** Notes went from the top of `room`'s log (too many lines): a hole whose note went is left. */
  notesTrimmed(room) {
    const g = this.gaps.get(room);
    if (g && !g.note.isConnected) this.dropGap(room);
  }

  dropGap(room) {
    this.gaps.delete(room);
  }

  /** Ask for the page just below the oldest message shown after the hole. */
  fillGap(room) {
    const g = this.gaps.get(room);
    const session = this.session();
    if (!g || g.busy || !session?.joined) return;
    const before = g.before ?? this.view.firstSeqAbove(room, g.after) ?? session.roomState(room).seq + 1;
    if (session.history(room, before, PAGE)) {
      this.queue(room).push('gap');
      busy(g, true);
    }
  }

  /**
   * A `history` answer: show its messages (in seq order) and settle what
   * it answered. `before` (with `more`) is where the next older page
   * starts: a page may stop short of messages this reader may see, even
   * empty, and still have more.
   */
  answer(room, events, more, before, me) {
    const kind = this.queue(room).shift() || 'older';
    if (this.takeStale(room)) {
      const g = this.gaps.get(room);
      if (kind === 'gap' && g) busy(g, false);
      return;
    }
    if (kind === 'dropped') return;
    let first = null;
    this.view.above(room, () => {
      for (const m of events) if (this.view.message(m, me) && first === null) first = m.seq;
    });
    if (kind === 'older' || kind === 'typed') {
      const typed = kind === 'typed';
      const newest = this.newest.delete(room);
      const further = more && before != null;
      if (further) this.cursor.set(room, Math.min(before, this.cursor.get(room) ?? Infinity));
      if (!more) this.reached.add(room);
      this.set(room, further ? 'more' : 'start');
      // A stretch of messages to others shows nothing: go on a few pages
      // without waiting for a click (the reader asked for messages).
      if (further && events.length === 0) {
        const n = (this.empties.get(room) ?? 0) + 1;
        this.empties.set(room, n);
        if (n < EMPTY_PAGES_IN_A_ROW) {
          const why = this.older(room, false, PAGE, true, typed);
          // Asked: that page's answer tells. Not asked: say why, or
          // what this one brought.
          if (this.state.get(room) === 'loading') return;
          if (typed && why) {
            this.told(room, why);
            return;
          }
        }
      }
      // What /history brought is above, where the reader at the end of
      // the log does not look: the end says so (as chatclient does).
      // Asked with nothing of the room shown (after `/clear`), they are
      // its newest, as chatclient says.
      if (typed) {
        const n = events.length;
        const what = newest
          ? `the newest ${n === 1 ? 'message' : `${n} messages`} of #${room}`
          : `${n === 1 ? '1 older message' : `${n} older messages`} of #${room} shown above`;
        const end = this.olderGone(room) ? 'older ones are no longer kept' : 'that is all';
        this.told(
          room,
          n === 0
            ? further
              ? `no older messages for you in this stretch of #${room}; /history looks further back`
              : this.noOlder(room)
            : `${what}; ${further ? '/history shows more' : end}`,
        );
      }
      return;
    }
    const g = this.gaps.get(room);
    if (!g) return;
    const low = more && before != null ? before : events.length ? events[0].seq : Infinity;
    // Still on the button (Enter or Space, or a click), the reader waits
    // for what it brings; elsewhere (typing, say), the focus is left.
    const waiting = document.activeElement === g.button;
    if (low <= g.after + 1 || !more || before == null) {
      this.gaps.delete(room);
      g.button.remove();
      g.note.classList.add('closed');
      g.note.querySelector('.text').textContent =
        low <= g.after + 1
          ? 'history had a gap: the missed messages are now shown'
          : 'history has a gap: some missed messages are no longer kept by the server';
      // The button went with the focus on it: the focus goes to the
      // first message it brought, where the reader asked to read on
      // from (the log, as "Load older messages" leaves it, would start
      // them from the top of the room; the input, from the bottom), or,
      // none new, to the line that says how the gap ended.
      if (waiting) focusLine((first !== null && this.view.line(room, first)) || g.note);
    } else {
      // Still a hole, now just above what this page brought: the note is
      // moved, which took the focus off its button.
      g.before = low;
      this.view.moveNote(room, g.note, g.after);
      busy(g, false);
      if (waiting) g.button.focus({ preventScroll: true });
    }
  }

  /** The server refused a `history` of `room` (`not_in_room`). */
  refused(room) {
    const q = this.asks.get(room);
    if (!q?.length) return;
    const kind = q.shift();
    this.takeStale(room);
    if (kind === 'older' || kind === 'typed') this.set(room, 'more');
    else if (kind === 'gap' && this.gaps.has(room)) busy(this.gaps.get(room), false);
  }

  /** Whether the answer now due was asked before a trim (and count it). */
  takeStale(room) {
    const n = this.stale.get(room) ?? 0;
    if (n > 1) this.stale.set(room, n - 1);
    else this.stale.delete(room);
    return n > 0;
  }

  set(room, state) {
    this.state.set(room, state);
    this.view.setOlder(room, state, this.olderGone(room));
  }

  /**
   * Whether the server keeps nothing of `room` below where its history
   * was begun: its kept history starts above the room's first seq, so
   * older messages were deleted (retention), not absent.
   */
  olderGone(room) {
    return (this.session()?.roomState(room)?.oldest ?? 0) > 1;
  }

  /** What a /history that finds nothing older says. */
  noOlder(room) {
    return this.olderGone(room) ? `older messages of #${room} are no longer kept` : `no older messages in #${room}`;
  }

  queue(room) {
    if (!this.asks.has(room)) this.asks.set(room, []);
    return this.asks.get(room);
  }
}

/**
 * A hole's button while its page is asked for: marked busy, not disabled
 * (a disabled button drops the focus to the page's body, as "Load older
 * messages" did), and a click then asks for nothing.
 */
function busy(g, on) {
  g.busy = on;
  g.button.setAttribute('aria-disabled', String(on));
}

/**
 * The focus on a line of the log, which takes it until it leaves (a
 * click on the line later does not), brought into view if it is not:
 * only as far as needed, so a view read from moves no more than that.
 */
function focusLine(li) {
  li.tabIndex = -1;
  li.addEventListener('blur', () => li.removeAttribute('tabindex'), { once: true });
  li.focus({ preventScroll: true });
  li.scrollIntoView({ block: 'nearest' });
}
