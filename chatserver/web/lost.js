// What the page said of a lost connection, and where, until it is back:
// said again where the reader goes meanwhile to or from no room, and,
// once back, said to be back where the loss was said. A room whose log
// said the loss as it happened says it is back in its own way (events.js).

/**
 * `parts`: `events` (events.js: which rooms' logs say the loss),
 * `current()` the room shown (null: none), `say(text, className, code)`
 * where the reader is, `sayIn(place, text, className, code)` in a room's
 * log or (`null`) the no-room log.
 */
export class LostNotice {
  constructor(parts) {
    this.p = parts;
    /**
     * What the page said of the connection lost (`{ text, code }`, see
     * `say`), until it is back: said again where the reader goes
     * meanwhile to or from no room (`shown`). `null` while connected.
     */
    this.said = null;
    /**
     * Where the page said the loss and has to say the return, `null` for the
     * no-room log, a room's name for a room entered since, until the
     * connection is back: a room whose log said it as it happened says it
     * is back in its own way (events.js), and nothing else would here.
     */
    this.told = new Set();
  }

  /**
   * The connection is lost: said with `code` where the reader sees it (the
   * room shown, or the no-room log), which says so again once it is back.
   */
  say(text, code) {
    const { events, current, say } = this.p;
    this.said = { text, code };
    this.told.clear();
    say(text, 'notice lost', code);
    const room = current();
    if (room) events.lost(room);
    else this.told.add(null);
  }

  /** `room` is shown (null: none), where `was` was. */
  shown(room, was) {
    // The connection lost: said where the reader goes, to or from no room
    // (all rooms left, or one entered, meanwhile), and there, once back,
    // that it is back. (Between rooms, each room's log says what it missed.)
    if (this.said && (!room || !was) && !this.told.has(room) && !(room && this.p.events.toldLost(room))) {
      this.p.say(this.said.text, 'notice lost', this.said.code);
      this.told.add(room);
    }
  }

  /** Back after a loss, `resumed` the session or not: said where it has to be. */
  sayBack(resumed) {
    const { current, sayIn } = this.p;
    // Said where the loss was said (a room's log that said it as it
    // happened says what it missed, events.js), and a new session
    // where the reader is too.
    const places = new Set(this.told);
    if (!resumed) places.add(current());
    for (const place of places) {
      if (resumed) sayIn(place, 'reconnected', 'notice reconnected');
      else sayIn(place, 'reconnected as a new session', 'notice');
    }
  }

  /** `room` was left: nothing to say there. */
  forget(room) {
    this.told.delete(room);
  }

  /** Nothing lost (the connection is back, or the chat over). */
  clear() {
    this.said = null;
    this.told.clear();
  }
}
