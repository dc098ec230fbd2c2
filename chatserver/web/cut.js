// A room cut while its reader reads far back (keep.js's `bound` let its
// newest lines go): the line at the bottom of its log that says so and
// offers its newest messages (`cut`, `offerNewest`), what that line says
// while they cannot be asked for (`waiting`), and once the room's
// history began anew without them (`endCut`). Each takes the MessageView
// (messages.js) it works for, or the room's state `r` there.

import { body, isolated, timeElement } from './text.js';

/**
 * The newest lines of `room`'s log (`gone`, below what its reader sees)
 * go: the room is cut. A line at its bottom says so and offers the
 * newest messages; until the reader goes there (`toNewest`), an event
 * after the lines kept is counted (as new below, and by the caller as
 * unread) but not shown (`place`): shown, it would sit below a hole.
 * Notes said meanwhile go below that line (`note`), and so does the
 * echo of a line the reader sent (`place`); cut again, the line stays
 * above those left.
 */
export function cut(view, room, r, gone) {
  let low = Infinity;
  let high = -Infinity;
  for (const li of gone) {
    if (li.dataset.seq !== undefined) {
      const s = Number(li.dataset.seq);
      r.seqs.delete(s);
      low = Math.min(low, s);
      high = Math.max(high, s);
    }
    li.remove();
  }
  // Cut again, its line stays where it is: notes said since are below
  // it (`note`), and stay there.
  const again = r.cut !== null;
  r.cut ??= { after: Infinity, high: -Infinity, line: cutLine(view, room), news: false };
  let kept = null;
  const last = again ? r.cut.line.previousElementSibling : r.events.lastElementChild;
  for (let c = last; c && kept === null; c = c.previousElementSibling) {
    if (c.dataset.seq !== undefined) kept = Number(c.dataset.seq);
  }
  // The newest seq the log may show; none kept: those before the first
  // that went (or, with none, notes alone going below the cut line, as
  // it was: `bound` cuts no room for notes alone).
  r.cut.after = kept ?? (low < Infinity ? low - 1 : r.cut.after);
  r.cut.high = Math.max(r.cut.high, high);
  if (!again) r.events.append(r.cut.line);
  markCut(r);
  if (view.isCurrent(room)) {
    view.stuck = false;
    view.updateJump();
  } else r.stick = false;
  view.h.notesTrimmed?.(room);
}

/** The line at the bottom of a cut room's log, with its way to the newest messages. */
function cutLine(view, room) {
  const li = document.createElement('li');
  li.className = 'notice cut';
  const text = isolated('span', 'text', `newer messages of #${room} are not kept while you read this far back`);
  li.append(timeElement(Date.now()), body(text));
  offerNewest(view, room, li);
  return li;
}

/** A button at the end of `li` (a line of `room`'s log) that shows the room's newest messages (`toNewest`). */
export function offerNewest(view, room, li) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'load-newest';
  button.textContent = 'Show the newest messages';
  button.addEventListener('click', () => view.toNewest(room));
  (li.querySelector('.body') ?? li).append(' ', button);
}

/**
 * A cut room's newest were asked for while they cannot be (`toNewest`):
 * its cut line says they show once reconnected, its button waits.
 */
export function waiting(room, r) {
  if (r.cut.waiting) return;
  r.cut.waiting = true;
  const line = r.cut.line;
  line.querySelector('.text').textContent =
    `newer messages of #${room} are not kept while you read this far back; the newest show once reconnected`;
  const button = line.querySelector('button.load-newest');
  if (button) {
    button.textContent = 'Waiting for the connection…';
    button.setAttribute('aria-disabled', 'true');
  }
}

/**
 * A cut room's history began anew (`newEpoch`): it is no longer cut,
 * and its cut line, with no way to newest messages gone with the old
 * history, says what became of them. The reader's own lines below it
 * (`place`), without a seq, are from before it too (`old`).
 */
export function endCut(room, r) {
  const line = r.cut.line;
  for (let c = line.nextElementSibling; c; c = c.nextElementSibling) {
    if (c.classList.contains('msg')) c.classList.add('old');
  }
  line.querySelector('button')?.remove();
  line.classList.remove('cut');
  line.querySelector('.text').textContent =
    `newer messages of #${room} were not kept while you read this far back, and its history began anew without them`;
  r.cut = null;
  markCut(r);
}

/**
 * A cut room's log is marked (`.cut`): its bottom leaves room for the
 * jump button, which stays in view there and would cover its last line.
 */
export function markCut(r) {
  r.section.classList.toggle('cut', r.cut !== null);
}
