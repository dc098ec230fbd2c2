// What is said while the page is in no room (every room left): the
// answers to the commands that need none (`/help`, `/rooms`, `/query`),
// and what the page says of the connection then (lost, back, refused).
// A log of its own in #messages, shown while no room is, as the terminal
// client's no-room view: its lines stay there, not at the top of the
// next room entered. The rooms' logs are messages.js's.

import { body, isolated, timeElement } from './text.js';

/** The most lines it keeps: past them its oldest go. */
const KEPT = 500;

export class NoRoomLog {
  /** Its section goes at the end of `scroller` (#messages), hidden. */
  constructor(scroller) {
    this.section = document.createElement('section');
    this.section.className = 'room-log no-room';
    this.section.setAttribute('aria-label', 'No room');
    this.section.hidden = true;
    this.events = document.createElement('ol');
    this.events.className = 'events';
    this.section.append(this.events);
    scroller.append(this.section);
  }

  /** Shown (no room is), or not. */
  show(on) {
    this.section.hidden = !on;
  }

  /**
   * A line saying `text` (or an element holding it), with `className`
   * and `code` (as a room's notes: messages.js).
   */
  note(text, className, code) {
    const li = document.createElement('li');
    li.className = className;
    if (code) li.dataset.code = code;
    li.append(timeElement(Date.now()), body(typeof text === 'string' ? isolated('span', 'text', text) : text));
    this.events.append(li);
    while (this.events.childElementCount > KEPT) this.events.firstElementChild.remove();
    return li;
  }

  /** `/clear`, or a chat ended: no line. */
  clear() {
    this.events.replaceChildren();
  }
}
