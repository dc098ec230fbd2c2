// A room log's seqs and its top: a history begun anew or seqs given
// again (`newEpoch`, `forgetAbove`), what `/clear` hid (`clearShown`,
// `unclear`), its oldest seq and oldest lines gone, and the line above
// it that says where its history starts (`setOlder`, `startText`).
// Methods of `MessageView` (messages.js), and the helpers they share.

import { endCut, markCut } from './cut.js';

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

export const logTop = {
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
  },

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
  },

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
  },

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
  },

  /** The smallest seq shown in `room` (or hidden by `/clear`), or null. */
  oldestSeq(room) {
    const r = this.rooms.get(room);
    if (!r) return null;
    const min = Math.min(seqRange(r.seqs).low, r.cleared?.from ?? Infinity);
    return min === Infinity ? null : min;
  },

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
  },

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
  },
};

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
export function startText(room, r) {
  const start = r.olderGone
    ? `Older messages of #${room} are no longer kept`
    : `This is the start of #${room}'s history`;
  r.start.textContent = clearedAtTop(r) ? `${start}; /history shows again what /clear hid.` : `${start}.`;
  r.start.hidden = r.olderState !== 'start' || Boolean(r.floor?.isConnected);
}
