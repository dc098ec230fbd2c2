// Lines the server has not confirmed, outside the session: kept in the tab
// with its session token so that a reload takes them back, and written
// as lines to send again (the join screen's list after Leave, a room's
// "may or may not have arrived" note).

import { TabKeeper, tabSaved } from './chrome.js';
import { isolated } from './text.js';

const $ = (id) => document.getElementById(id);

const PENDING_SAVE_MS = 250;

/**
 * Keeps this tab's unconfirmed lines (ids, rooms, recipients and text,
 * whether each was written to a socket, and whether to an earlier
 * session's) with its session token, so
 * that a reload does not lose them: a moment after they change (a burst
 * of echoes writes the list once, not once each), and at once when the
 * page goes away. `session()` is the session whose lines they are.
 */
export class PendingKeeper extends TabKeeper {
  constructor(session) {
    super(PENDING_SAVE_MS);
    this.session = session;
  }

  write() {
    const session = this.session();
    if (!session) return;
    // `unchecked`: written to an earlier session's socket, to look for in
    // its room's replay (see session.js's welcome); a reload that resumes
    // the session after it must look too.
    const list = session.pending.map(({ id, room, to, text, line, epoch, after, sent, unchecked }) => ({
      id,
      room,
      to,
      text,
      line,
      epoch,
      after,
      sent: Boolean(sent),
      unchecked: Boolean(unchecked),
    }));
    tabSaved.set('pending', list.length ? JSON.stringify(list) : null);
  }
}

/** The lines a [`PendingKeeper`] kept, each checked. */
export function savedPending() {
  let list = [];
  try {
    list = JSON.parse(tabSaved.get('pending') || '[]');
  } catch {
    list = [];
  }
  const text = (v) => typeof v === 'string';
  return (Array.isArray(list) ? list : []).filter(
    (p) =>
      p &&
      text(p.id) &&
      text(p.text) &&
      text(p.line) &&
      text(p.room) &&
      Array.isArray(p.to) &&
      p.to.every(text) &&
      (p.epoch === null || text(p.epoch)) &&
      Number.isSafeInteger(p.after) &&
      (p.sent === undefined || typeof p.sent === 'boolean') &&
      (p.unchecked === undefined || typeof p.unchecked === 'boolean'),
  );
}

/**
 * A message the server had not confirmed, as a line that sends it again
 * (`#lobby: @bob: hi`, as the terminal client lists them when it leaves):
 * what was typed; when a `/query` chose its recipients, they and a `:`
 * (which ends them, so a text starting with `:` keeps it) before its text
 * (a `//` typed under it was sent as `/`, and is not a command after `@`).
 */
export function resendable(p) {
  const typed = p.line.trimStart();
  const named = typed.startsWith('@') || /^\/(msg|m)\s/iu.test(typed);
  const line = p.to.length && !named ? `@${p.to.join(' @')}: ${p.text}` : p.line;
  return { room: p.room, line };
}

/**
 * After Leave, on the join screen: the lines that were not confirmed
 * (none: hidden), each after its room; a click selects the line alone,
 * to copy.
 */
export function showUnsent(lines) {
  $('unsent').hidden = lines.length === 0;
  $('unsent-lines').replaceChildren(
    ...lines.map(({ room, line }) => {
      const li = document.createElement('li');
      li.append(`#${room}: `, isolated('span', 'line', line));
      return li;
    }),
  );
}
