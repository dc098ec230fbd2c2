// What a room's log keeps: its newest lines while its reader follows
// them (`trim`, MAX_SHOWN), and at most MAX_KEPT while it reads older ones
// (`bound`), never the lines in view: where the reader is is measured
// (`where`, `leave`), and lines that go in or out above it leave it in
// place (`keepPlace`). Each takes the MessageView (messages.js) it works
// for.

import { cut } from './cut.js';

/**
 * Lines with a seq a room's log keeps while its reader follows the newest
 * ones: past it the oldest go, TRIM_BY at a time, and "Load older
 * messages" brings them back. A page left open on a busy room for days
 * stays as light as on its first hour. (README.md, "Limits".)
 */
export const MAX_SHOWN = 2000;
const TRIM_BY = 200;
/**
 * Lines a room's log never holds more of, followed or read scrolled up:
 * past it what is farthest from the reader's view goes (see `bound`),
 * never the lines in view. Four times MAX_SHOWN: room to read back
 * through a few thousand lines of a busy room without losing the place,
 * while a tab left scrolled up on it for days stays as light as one that
 * follows it, within a few times. (README.md, "Chatting from a browser".)
 */
export const MAX_KEPT = 4 * MAX_SHOWN;
/** Lines dropped at once past MAX_KEPT: the view is measured once for so many lines of a flood, not for each. */
const DROP_BY = 400;

/**
 * Past MAX_SHOWN lines (every line: notes, and those from before the
 * history began anew, count too), the oldest go, down to MAX_SHOWN -
 * TRIM_BY. When lines with a seq go, what `/clear` hid is forgotten
 * too: it is older than what goes, and paging back from the oldest line
 * kept must pass through what went.
 */
export function trim(view, room, r) {
  const keep = MAX_SHOWN - TRIM_BY;
  let seqs = false;
  // Counted once: counting walks every line, and a log its reader left
  // scrolled up may hold up to MAX_KEPT when the reader comes back down.
  let n = r.events.childElementCount;
  for (; n > keep; n--) {
    const c = r.events.firstElementChild;
    if (c.dataset.seq !== undefined) {
      r.seqs.delete(Number(c.dataset.seq));
      seqs = true;
    }
    c.remove();
  }
  r.plain = n - r.seqs.size;
  view.oldestWent(room, r, seqs);
}

/**
 * Past MAX_KEPT lines (notes too), followed or not, `room`'s log drops
 * what is farthest from what its reader sees, down to MAX_KEPT -
 * DROP_BY: first its oldest lines, down to a screen above the view,
 * which stays where it is (`keepPlace`, as when older lines come), and
 * paged back as after a trim; then its newest, up to a screen below the
 * view, which cuts the room (cut.js) if a message is among them (notes
 * alone just go). `upward`: the lines came as a page
 * of older ones, which a reader near the top is reading back into: the
 * newest go first, unless more lie beyond the top margin than beyond the
 * bottom one. Only a view some thousands of lines tall would lose lines
 * of its margins, and never the lines in view.
 */
export function bound(view, room, r, upward = false) {
  const all = [...r.events.children];
  r.plain = all.length - r.seqs.size;
  if (all.length <= MAX_KEPT) return;
  const lines = r.cut ? all.filter((li) => li !== r.cut.line) : all;
  const n = lines.length;
  const at = where(view, room, r, lines);
  let excess = all.length - (MAX_KEPT - DROP_BY);
  // Lines to drop from the top and from the bottom of `lines`: from
  // each end up to an edge that stays (an index), in this order.
  let top = 0;
  let bottom = 0;
  const downFirst = upward && n - 1 - at.down > at.up;
  const margins = downFirst ? [['down', at.down], ['up', at.up]] : [['up', at.up], ['down', at.down]];
  for (const [side, edge] of [...margins, ['up', at.first], ['down', at.last]]) {
    const free = side === 'up' ? edge - top : n - 1 - edge - bottom;
    const k = Math.max(0, Math.min(excess, free));
    if (side === 'up') top += k;
    else bottom += k;
    excess -= k;
  }
  if (top) {
    // Inside: the top of the log changes too ("Load older messages"
    // where it said its history starts).
    keepPlace(view, room, () => {
      let seqs = false;
      for (const li of lines.slice(0, top)) {
        if (li.dataset.seq !== undefined) {
          r.seqs.delete(Number(li.dataset.seq));
          seqs = true;
        }
        li.remove();
      }
      view.oldestWent(room, r, seqs);
    });
  }
  if (bottom) {
    const gone = lines.slice(n - bottom);
    // Notes alone (no message went): they go, and the room is not cut,
    // whose messages, older and newer, all still go in their place.
    if (r.cut || gone.some((li) => li.dataset.seq !== undefined)) cut(view, room, r, gone);
    else {
      // (A gap's note may have gone with them.)
      for (const li of gone) li.remove();
      view.h.notesTrimmed?.(room);
    }
  }
  r.plain = r.events.childElementCount - r.seqs.size;
}

/**
 * Where the reader of `room` is in `lines` (its log's lines, the cut
 * line left out), as indexes: `first` to `last` are in view (none when
 * `first` is past `last`), `up` and `down` a screen beyond each edge.
 * The room shown is measured (from the layout, once); another is where
 * its reader left it (`span`, from `leave`); one its reader left at its
 * newest line, or never read, is at its newest line.
 */
function where(view, room, r, lines) {
  const n = lines.length;
  const newest = { up: n - 1, first: n - 1, last: n - 1, down: n - 1 };
  if (!view.isCurrent(room)) {
    const s = r.span;
    const first = s ? lines.indexOf(s.first) : -1;
    const last = s ? lines.indexOf(s.last) : -1;
    if (first < 0 || last < 0) return newest;
    return { up: Math.max(0, first - s.up), first, last, down: Math.min(n - 1, last + s.down) };
  }
  const box = view.scroller.getBoundingClientRect();
  const h = box.height;
  if (!h) return newest;
  // The first line `past` holds for (it holds for every one after it).
  const from = (past) => {
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (past(lines[mid].getBoundingClientRect())) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  return {
    up: from((b) => b.bottom > box.top - h),
    first: from((b) => b.bottom > box.top),
    last: from((b) => b.top >= box.bottom) - 1,
    down: from((b) => b.top >= box.bottom + h) - 1,
  };
}

/**
 * What the reader of `room` (shown, scrolled up) leaves in view, for
 * `where` and `show` while another room is shown: its first and last
 * lines in view, how many lines make a screen above and below, and how
 * far the first is from the log's top edge. Null if no line is in view.
 */
export function leave(view, room, r) {
  const lines = [...r.events.children].filter((li) => li !== r.cut?.line);
  const at = where(view, room, r, lines);
  const first = lines[at.first];
  if (!first || at.first > at.last) return null;
  return {
    first,
    last: lines[at.last],
    up: at.first - at.up,
    down: at.down - at.last,
    offset: first.getBoundingClientRect().top - view.scroller.getBoundingClientRect().top,
  };
}

/**
 * Lines go in or out above what the reader of `room` sees (`fn` does
 * it): what is in view stays where it is (or, followed, at the newest).
 */
export function keepPlace(view, room, fn) {
  const cur = view.isCurrent(room);
  const stick = cur && view.stuck;
  const before = view.scroller.scrollHeight;
  fn();
  if (!cur) return;
  if (stick) view.toBottom();
  else view.scroller.scrollTop += view.scroller.scrollHeight - before;
}

