// Who came and went while the reader was away, as the log says it:
// leavings held back a moment (someone who drops and comes straight back
// is said neither to leave nor to return), and the "while you were away"
// line of a reconnect.

import { nickKey } from './protocol.js';
import { nickButton } from './text.js';

/**
 * How long a leaving waits to be said: someone whose connection drops and
 * who comes straight back (a page reloaded, a server restarted, Wi-Fi
 * that blinked) is neither said to have left nor to have come back.
 */
const DEPARTURE_HOLD_MS = 5000;

/** Leavings not said yet. */
export class Departures {
  constructor() {
    /**
     * `${room}\n${nickKey}` -> its hold, one for a leaving seen live, one
     * for all of a reconnect's "while you were away: ... left":
     * { room, nicks: Map(key -> nick), timer, say(nicks) }.
     */
    this.holds = new Map();
  }

  /** Hold back the leaving of `nicks` from `room`; `say(nicks)` says it. */
  hold(room, nicks, say) {
    const hold = { room, nicks: new Map(), timer: 0, say };
    for (const nick of nicks) {
      const key = `${room}\n${nickKey(nick)}`;
      // Left again before the last leaving was said: that one first.
      if (this.holds.has(key)) this.sayHold(this.holds.get(key));
      hold.nicks.set(key, nick);
      this.holds.set(key, hold);
    }
    hold.timer = setTimeout(() => this.sayHold(hold), DEPARTURE_HOLD_MS);
  }

  /** Say what `hold` still holds (unless `drop`), and forget it. */
  sayHold(hold, drop = false) {
    clearTimeout(hold.timer);
    for (const key of hold.nicks.keys()) this.holds.delete(key);
    if (hold.nicks.size && !drop) hold.say([...hold.nicks.values()]);
    hold.nicks.clear();
  }

  /** `nick` is in `room` again: whether a leaving of theirs was held (now forgotten). */
  cameBack(room, nick) {
    const key = `${room}\n${nickKey(nick)}`;
    const hold = this.holds.get(key);
    if (!hold) return false;
    this.holds.delete(key);
    hold.nicks.delete(key);
    if (!hold.nicks.size) clearTimeout(hold.timer);
    return true;
  }

  /** Say every leaving held (`room`'s only, if given), or with `drop`, forget them. */
  say(room = null, drop = false) {
    for (const hold of new Set(this.holds.values())) {
      if (room === null || hold.room === room) this.sayHold(hold, drop);
    }
  }
}

/** Names in a line: a few, then how many more. */
const AWAY_NAMES = 10;

/**
 * "while you were away: carol joined; dave, erin left", each name a
 * nickname as in the rest of the log, its direction its own: two names
 * written right to left, and the comma between them, would otherwise
 * read as one run, the names swapped.
 */
export function cameAndWent({ joined, left }) {
  const line = document.createElement('span');
  line.className = 'text';
  line.dir = 'auto';
  line.append('while you were away: ');
  const names = (list, verb) => {
    const shown = list.length > AWAY_NAMES ? list.slice(0, AWAY_NAMES - 1) : list;
    shown.forEach((n, i) => line.append(...(i ? [', '] : []), nickButton(n, '', true)));
    if (shown.length < list.length) line.append(` and ${list.length - shown.length} more`);
    line.append(` ${verb}`);
  };
  if (joined.length) names(joined, 'joined');
  if (joined.length && left.length) line.append('; ');
  if (left.length) names(left, 'left');
  return line;
}
