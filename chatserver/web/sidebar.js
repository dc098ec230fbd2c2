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
 * Who is online in the current room, and which of them the line being
 * written goes to (`.addressed`, a ✓) while it goes to anyone
 * (`.addressing`: each other row shows its `+`, which adds that one).
 * A room may hold 100,000 people: a change touches only the rows it
 * changes (one person came, those written to changed), and a row off
 * screen is not laid out (style.css), so typing `@` and a name does not
 * go through the whole list.
 */
export class OnlineList {
  constructor(list, count) {
    this.list = list;
    this.count = count;
    /** nickKey -> its row */
    this.rows = new Map();
    /** Our own nickKey, whose row has no `+`. */
    this.me = null;
    /** The nickKeys of those written to, marked. */
    this.marked = new Set();
  }

  /**
   * Show `nicks`, in the order given (Session.roster's: by nickKey), `me`
   * among them; the rows of those still there are kept where they are.
   */
  show(nicks, me) {
    const myKey = me ? nickKey(me) : null;
    if (myKey !== this.me) {
      // Another session's list: our own row is another one.
      this.rows.clear();
      this.list.replaceChildren();
      this.me = myKey;
    }
    const keys = nicks.map(nickKey);
    const now = new Set(keys);
    for (const [key, li] of this.rows) {
      if (now.has(key)) continue;
      li.remove();
      this.rows.delete(key);
    }
    let at = this.list.firstElementChild;
    nicks.forEach((nick, i) => {
      const key = keys[i];
      let li = this.rows.get(key);
      // New, or the same person come back written otherwise (`Bob`).
      if (li?.dataset.nick !== nick) {
        if (li === at) at = at.nextElementSibling;
        li?.remove();
        li = this.row(nick, key);
        this.rows.set(key, li);
      }
      if (li === at) at = at.nextElementSibling;
      else this.list.insertBefore(li, at);
    });
    this.count.textContent = String(nicks.length);
  }

  /** A new row for `nick`. */
  row(nick, key) {
    const li = document.createElement('li');
    li.dataset.nick = nick;
    li.append(nickButton(nick));
    if (this.marked.has(key)) li.classList.add('addressed');
    if (key === this.me) {
      li.classList.add('me');
      const you = document.createElement('span');
      you.className = 'you';
      you.textContent = ' (you)';
      li.append(you);
      return li;
    }
    // Shift-click adds a name to a group; a finger has no Shift: this
    // does it, shown once someone is written to. Not a Tab stop (a list
    // of 10,000 would be 20,000): the keyboard has Shift+Enter on the
    // name, and a screen reader still finds it by its name.
    const add = document.createElement('button');
    add.type = 'button';
    add.className = 'add';
    add.tabIndex = -1;
    add.dataset.nick = nick;
    add.textContent = '+';
    const label = `add ${escapeControl(nick)} to those written to`;
    add.title = label;
    add.setAttribute('aria-label', label);
    li.append(add);
    return li;
  }

  /**
   * Mark those the line being written goes to (`addressed`, as typed:
   * `@STRASSE` marks Straße, as the server matches recipients). Called as
   * each key is typed: only the rows whose mark changes are touched.
   */
  mark(addressed) {
    const to = new Set(addressed.map(nickKey));
    for (const key of this.marked) {
      if (!to.has(key)) this.rows.get(key)?.classList.remove('addressed');
    }
    for (const key of to) {
      if (!this.marked.has(key)) this.rows.get(key)?.classList.add('addressed');
    }
    if ((to.size > 0) !== (this.marked.size > 0)) this.list.classList.toggle('addressing', to.size > 0);
    this.marked = to;
  }
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
