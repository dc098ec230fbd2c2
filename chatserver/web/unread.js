// Each room's unread count and `!`, kept in the tab (sessionStorage, with
// its session token) across a reload, with where the tab stood in the
// room: its history's epoch and the last seq it had. A reload shows them
// again, and a message its replay brings above that seq is news that came
// meanwhile, counted as such (events.js).

import { TabKeeper, tabSaved } from './chrome.js';

const KEY = 'unread';
const SAVE_MS = 250;

/**
 * Keeps this tab's unread marks a moment after they change (a burst of
 * messages writes them once, not once each), and at once when the page
 * goes away. `marks()` gives them now, `{ room: { epoch, seq, n,
 * mention } }`, or null when there is no chat (then nothing is written).
 */
export class UnreadKeeper extends TabKeeper {
  constructor(marks) {
    super(SAVE_MS);
    this.marks = marks;
  }

  write() {
    const marks = this.marks();
    if (marks) tabSaved.set(KEY, JSON.stringify(marks));
  }

  /** Forget what is kept (a new chat, or Leave). */
  forget() {
    this.cancel();
    tabSaved.set(KEY, null);
  }
}

/**
 * The marks an [`UnreadKeeper`] kept, each checked: room -> { epoch (null
 * if the room was not entered yet), seq, n, mention }.
 */
export function savedUnread() {
  let kept = null;
  try {
    kept = JSON.parse(tabSaved.get(KEY) || 'null');
  } catch {
    kept = null;
  }
  const marks = new Map();
  if (!kept || typeof kept !== 'object' || Array.isArray(kept)) return marks;
  const count = (x) => Number.isSafeInteger(x) && x >= 0;
  for (const [room, m] of Object.entries(kept)) {
    if (!m || typeof m !== 'object') continue;
    const epoch = typeof m.epoch === 'string' ? m.epoch : null;
    if (!count(m.seq) || !count(m.n)) continue;
    marks.set(room, { epoch, seq: m.seq, n: m.n, mention: m.mention === true });
  }
  return marks;
}
