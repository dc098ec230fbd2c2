// The lines of a room's log, made: a message (to whom it went, and
// whether it is for the reader), a presence, and a message sent and not
// yet echoed, with its state. Methods of `MessageView` (messages.js),
// kept here apart from where lines go and the reader's place; each line
// goes in by its `place` or below its log's `pending` list.

import { nickKey } from './protocol.js';
import { body, isolated, nickButton, timeElement, unstampedTime } from './text.js';

/**
 * ` → bob, carol`: a private or group message's recipients, each a
 * nickname set apart from the line's direction (a name written right to
 * left, and the comma after it, would otherwise run into the next).
 */
function recipients(to) {
  const span = document.createElement('span');
  span.className = 'to';
  span.append(' → ');
  to.forEach((n, i) => {
    if (i) span.append(', ');
    span.append(nickButton(n, '', true));
  });
  return span;
}

export const lines = {
  /** A message; false if its seq is already shown. */
  message(m, me) {
    const li = document.createElement('li');
    li.className = 'msg';
    if (m.mine) li.classList.add('mine');
    if (m.replay) li.classList.add('replay');
    li.dataset.seq = String(m.seq);
    li.dataset.room = m.room;
    li.dataset.from = m.from;
    if (m.id) li.dataset.id = m.id;
    li.append(timeElement(m.ts));
    const head = document.createElement('span');
    head.className = 'head';
    // "/me waves" is an action (PROTOCOL.md 5.3): "* alice waves".
    const action = /^\/me\s+\S/.test(m.text);
    if (action) {
      li.classList.add('action');
      head.append('* ');
    }
    head.append(nickButton(m.from, 'from', true));
    if (m.to.length) {
      li.classList.add('private');
      li.dataset.to = m.to.join(',');
      head.append(recipients(m.to));
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = m.to.length === 1 ? 'private' : 'group';
      head.append(' ', tag);
    }
    li.append(body(head, ' ', isolated('span', 'text', action ? m.text.slice(4).trimStart() : m.text)));
    if (forMe(m, me)) li.classList.add('mention');
    return this.place(m.room, m.seq, li, false, m.sentHere);
  },

  /**
   * A presence line ("bob joined #rust"); false if already shown. `late`:
   * said after a hold (a leaving), so notices put after the line before it
   * came first, and it goes below them.
   */
  presence(p, words, late = false) {
    const li = document.createElement('li');
    li.className = 'presence';
    li.dataset.seq = String(p.seq);
    li.dataset.room = p.room;
    li.dataset.nick = p.nick;
    li.dataset.status = p.online ? 'online' : 'offline';
    li.append(timeElement(p.ts), body(nickButton(p.nick, '', true), ` ${words}`));
    return this.place(p.room, p.seq, li, late);
  },

  /** A message sent and not yet echoed, shown below the log until it is. */
  pending(p, me) {
    const r = this.rooms.get(p.room);
    if (!r) return;
    const li = document.createElement('li');
    li.className = 'msg pending';
    li.dataset.id = p.id;
    li.dataset.room = p.room;
    const head = document.createElement('span');
    head.className = 'head';
    head.append(nickButton(me, 'from', true));
    if (p.to.length) head.append(recipients(p.to));
    const state = document.createElement('span');
    state.className = 'state';
    state.textContent = 'sending…';
    li.append(unstampedTime(), body(head, ' ', isolated('span', 'text', p.text), ' ', state));
    r.pending.append(li);
    if (this.isCurrent(p.room)) {
      // Its echo must show: a cut room goes to its newest messages.
      if (r.cut) this.toNewest(p.room);
      this.stuck = true;
      this.settle();
    }
  },

  acked(p) {
    const r = this.rooms.get(p.room);
    r?.pending.querySelector(`li[data-id="${CSS.escape(p.id)}"]`)?.remove();
  },

  /** Mark pending messages as waiting for the connection, or sending again. */
  pendingState(text) {
    for (const r of this.rooms.values()) {
      for (const s of r.pending.querySelectorAll('.state')) s.textContent = text;
    }
  },
};

/**
 * Whether someone else's message `m` is for `me` in particular: written to
 * them only (or to a group with them), or naming them.
 */
export function forMe(m, me) {
  return !m.mine && Boolean(me) && (m.to.length > 0 || mentions(m.text, me));
}

/**
 * Whether `text` names `nick` as a word of its own, in any spelling of
 * the same person (nickKey: `hi bob`, `BOB: look`, `@Bob`, `STRASSE` for
 * Straße), not `bobby`, nor `bob_b` or `bob-b` (other nicknames: `_` and
 * `-` join a word), nor `bob` with an accent on its last letter.
 */
function mentions(text, nick) {
  if (!nick) return false;
  const t = nickKey(text);
  const n = nickKey(nick);
  const word = /[\p{L}\p{M}\p{N}_-]/u;
  for (let i = t.indexOf(n); i >= 0; i = t.indexOf(n, i + 1)) {
    const before = i > 0 ? t[i - 1] : '';
    const after = t[i + n.length] ?? '';
    if (!word.test(before) && !word.test(after)) return true;
  }
  return false;
}
