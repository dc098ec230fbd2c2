// The lists beside the messages: the rooms you are in (with unread
// counts, the current one marked), who is online in the current room, and
// the rooms someone is in.

import { nickKey } from './protocol.js';
import { escapeControl, nickButton, safeText } from './text.js';

export class RoomList {
  /**
   * `handlers`: `select(room)`, `part(room)` (its ×, in the list),
   * `unreadChanged()` (a count or a mark changed, or a room with them
   * went); `none`: what takes the focus when a × leaves the last room.
   */
  constructor(list, none, handlers) {
    this.list = list;
    this.none = none;
    this.h = handlers;
    /** room -> { li, open, badge, unread, mention } */
    this.rooms = new Map();
  }

  add(room) {
    if (this.rooms.has(room)) return;
    const li = document.createElement('li');
    li.dataset.room = room;
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'room';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `#${room}`;
    const badge = document.createElement('span');
    badge.className = 'unread';
    badge.hidden = true;
    open.append(name, badge);
    open.addEventListener('click', () => this.h.select(room));
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'part';
    leave.textContent = '×';
    leave.title = `leave #${room}`;
    leave.setAttribute('aria-label', `leave #${room}`);
    leave.addEventListener('click', () => {
      // The × goes with its room, and the focus would go with it to the
      // page's body: it goes first to the next room, the one shown
      // instead when this one is the current room, or to entering a room
      // once none is left.
      const next = this.next(room);
      (next === null ? this.none : this.rooms.get(next).open).focus();
      this.h.part(room);
    });
    li.append(open, leave);
    this.list.append(li);
    this.rooms.set(room, { li, open, badge, unread: 0, mention: false });
  }

  /**
   * The room after `room` in the list (the one before, at the end), or
   * null when it is the only one: where leaving `room` goes.
   */
  next(room) {
    const li = this.rooms.get(room)?.li;
    const next = li?.nextElementSibling ?? li?.previousElementSibling;
    return next ? next.dataset.room : null;
  }

  remove(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    r.li.remove();
    this.rooms.delete(room);
    if (r.unread) this.h.unreadChanged?.();
  }

  /** Mark `room` as the current one. */
  setCurrent(room) {
    for (const [name, r] of this.rooms) {
      const cur = name === room;
      r.li.classList.toggle('current', cur);
      if (cur) r.open.setAttribute('aria-current', 'true');
      else r.open.removeAttribute('aria-current');
    }
  }

  /**
   * Add `n` to `room`'s unread count, or reset it with `n` null;
   * `mention`: one of them names the reader or was written to them only
   * (marked `!`, as the terminal client's status bar does, until read).
   */
  unread(room, n, mention = false) {
    const r = this.rooms.get(room);
    if (!r) return;
    r.unread = n === null ? 0 : r.unread + n;
    r.mention = r.unread > 0 && (r.mention || mention);
    r.badge.textContent = r.unread ? `${r.unread}${r.mention ? '!' : ''}` : '';
    r.badge.hidden = r.unread === 0;
    r.badge.classList.toggle('mention', r.mention);
    r.open.setAttribute('aria-label', `#${room}${unreadWords(r.unread, r.mention)}`);
    this.h.unreadChanged?.();
  }

  /** Unread messages in every room, and whether one of them is a mention. */
  totalUnread() {
    let n = 0;
    let mention = false;
    for (const r of this.rooms.values()) {
      n += r.unread;
      mention ||= r.mention;
    }
    return { n, mention };
  }

  /** Show that `room` is being entered (or entered again), or is in. */
  setEntering(room, entering) {
    this.rooms.get(room)?.li.classList.toggle('entering', entering);
  }
}

/** ", 3 unread, some for you" after a room's name (or the Rooms button's). */
export function unreadWords(n, mention) {
  if (!n) return '';
  return `, ${n} unread${mention ? ', some for you' : ''}`;
}

/**
 * Who is online in the current room; `addressed`: the nicks the line
 * being written goes to (see markAddressed).
 */
export function renderOnline(list, count, nicks, me, addressed = []) {
  const myKey = me ? nickKey(me) : null;
  const items = nicks.map((n) => {
    const li = document.createElement('li');
    li.dataset.nick = n;
    const b = nickButton(n);
    li.append(b);
    if (nickKey(n) === myKey) {
      li.classList.add('me');
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      li.append(you);
    } else {
      // Shift-click adds a name to a group; a finger has no Shift: this
      // does it, shown once someone is written to.
      const add = document.createElement('button');
      add.type = 'button';
      add.className = 'add';
      add.dataset.nick = n;
      add.textContent = '+';
      const label = `add ${escapeControl(n)} to those written to`;
      add.title = label;
      add.setAttribute('aria-label', label);
      li.append(add);
    }
    return li;
  });
  replaceAll(list, items);
  count.textContent = String(nicks.length);
  delete list.dataset.addressed;
  markAddressed(list, addressed);
}

/**
 * Mark in the online list those the line being written goes to
 * (`.addressed`), and say whether it goes to anyone (`.addressing`: the
 * others' `+`). Called as each key is typed: a long list is gone through
 * only when they changed.
 */
export function markAddressed(list, addressed) {
  // As the server matches recipients: `@STRASSE` is Straße.
  const to = new Set(addressed.map(nickKey));
  const key = [...to].sort().join(' ');
  if (list.dataset.addressed === key) return;
  list.dataset.addressed = key;
  list.classList.toggle('addressing', to.size > 0);
  for (const li of list.children) li.classList.toggle('addressed', to.has(nickKey(li.dataset.nick)));
}

/** The rooms someone is in, each a button to enter it. */
export function renderServerRooms(list, rooms, enter) {
  const items = rooms.map(({ room, members }) => {
    const li = document.createElement('li');
    li.dataset.room = room;
    const b = document.createElement('button');
    b.type = 'button';
    b.append(safeText(`#${room}`));
    const m = document.createElement('span');
    m.className = 'members';
    m.textContent = ` ${members}`;
    m.title = `${members} in #${room}`;
    b.append(m);
    b.addEventListener('click', () => enter(room));
    li.append(b);
    return li;
  });
  if (items.length === 0) {
    const li = document.createElement('li');
    li.className = 'empty';
    li.textContent = 'no rooms';
    items.push(li);
  }
  replaceAll(list, items);
}

/**
 * `list`'s children replaced by `items`, through a fragment: spread into
 * one call, 200,000 of them overflowed the call stack.
 */
function replaceAll(list, items) {
  const all = document.createDocumentFragment();
  for (const item of items) all.append(item);
  list.replaceChildren(all);
}
