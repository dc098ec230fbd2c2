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

  /** `room`'s unread count and whether one of them is for the reader (null: not listed). */
  unreadOf(room) {
    const r = this.rooms.get(room);
    return r ? { n: r.unread, mention: r.mention } : null;
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
 * Past this many people the online list holds rows only for those near
 * what is in view (ROWS_AROUND above and below it, this many at least):
 * a room of 10,000 took a quarter of a second to draw, and a join there
 * walked every name. Up to it, every row is there.
 */
const ROWS_DRAWN = 300;
const ROWS_AROUND = 100;
/** Rows left beyond the view before more are drawn as it scrolls. */
const ROWS_EDGE = 50;

/**
 * Who is online in the current room, and which of them the line being
 * written goes to (`.addressed`, a ✓) while it goes to anyone
 * (`.addressing`: each other row shows its `+`, which adds that one).
 * A room may hold 100,000 people: a change touches only the rows it
 * changes (one person came, those written to changed), a row off
 * screen is not laid out (style.css), so typing `@` and a name does not
 * go through the whole list, and past ROWS_DRAWN people only the rows
 * near what is in view are in the page: the rest is padding of their
 * height (every row is as high: style.css), each row says its place
 * (`aria-posinset` of `aria-setsize`), and more are drawn as the list
 * scrolls or the focus moves near either end of those drawn. There, one
 * name is the list's Tab stop (a roving tabindex): the one last focused,
 * kept drawn in its place however far the list scrolls from it, or the
 * first fully in view; Tab and Shift+Tab on a name go on to the next or
 * the one before (drawn as needed), as Down and Up do in any list, and
 * leave the list from its last name or its first.
 */
export class OnlineList {
  /** `scroller`: the element `list` scrolls in (the People drawer). */
  constructor(list, count, scroller) {
    this.list = list;
    this.count = count;
    this.scroller = scroller;
    /** Everyone's nickKey, in the list's order (Session.roster's: by nickKey). */
    this.keys = [];
    /** nickKey -> the nick as written. */
    this.nicks = new Map();
    /** nickKey -> its row, for those drawn: keys[from..to), and the Tab stop's. */
    this.rows = new Map();
    this.from = 0;
    this.to = 0;
    /** A row's height in pixels, once measured (see `measure`). */
    this.height = 0;
    /** The row height the padding stands for (see `render`). */
    this.padded = 0;
    /** Our own nickKey, whose row has no `+`. */
    this.me = null;
    /** The nickKeys of those written to, marked. */
    this.marked = new Set();
    this.frame = 0;
    /** The nickKey of the name last focused (the Tab stop), or null. */
    this.stop = null;
    /** The row that is the Tab stop in a long list, and the one held out of keys[from..to). */
    this.stopLi = null;
    this.held = null;
    /** The first row fully in view, as last seen. */
    this.first = 0;
    scroller.addEventListener('scroll', () => this.soon(), { passive: true });
    new ResizeObserver(() => this.soon()).observe(scroller);
    // Tab (or a screen reader) on a row near either end of those drawn:
    // more beyond it, before the next key.
    list.addEventListener('focusin', (e) => {
      const li = e.target.closest('li');
      if (!li) return;
      this.stop = nickKey(li.dataset.nick);
      if (!this.windowed()) return;
      this.tabStop(li);
      const i = this.place(this.stop);
      const n = this.keys.length;
      if ((i - this.from < ROWS_EDGE && this.from > 0) || (this.to - i <= ROWS_EDGE && this.to < n)) {
        this.draw(i, i + 1);
      }
    });
    list.addEventListener('keydown', (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || !e.target.classList.contains('nick')) return;
      const li = e.target.closest('li');
      let by = 0;
      if (e.key === 'ArrowDown' && !e.shiftKey) by = 1;
      else if (e.key === 'ArrowUp' && !e.shiftKey) by = -1;
      // Tab in a short list goes from name to name by itself.
      else if (e.key === 'Tab' && this.windowed()) by = e.shiftKey ? -1 : 1;
      if (by && this.move(li, by)) e.preventDefault();
    });
  }

  /**
   * The focus from `li`'s name to the next one (`by` 1) or the one before
   * (-1), drawn first if it is not; false at either end.
   */
  move(li, by) {
    const j = this.place(nickKey(li.dataset.nick)) + by;
    if (j < 0 || j >= this.keys.length) return false;
    const key = this.keys[j];
    if (!this.rows.has(key)) this.draw(j, j + 1);
    const next = this.rows.get(key);
    if (!next) return false;
    this.stop = key;
    this.tabStop(next);
    next.firstElementChild.focus();
    return true;
  }

  /** `li` the list's one Tab stop (a long list's). */
  tabStop(li) {
    if (li === this.stopLi) return;
    if (this.stopLi) this.stopLi.firstElementChild.tabIndex = -1;
    if (li) li.firstElementChild.tabIndex = 0;
    this.stopLi = li;
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
      this.stop = null;
      this.stopLi = null;
      this.held = null;
    }
    this.keys = nicks.map(nickKey);
    this.nicks = new Map();
    this.keys.forEach((key, i) => this.nicks.set(key, nicks[i]));
    if (this.windowed()) {
      const { first, last } = this.inView();
      this.draw(first, last);
      // No row was there to measure (the list's first show), or it was
      // hidden: its padding is the stylesheet's height until the next
      // frame measures one.
      if (this.height === 0) this.soon();
    } else {
      this.render(0, this.keys.length);
    }
  }

  /**
   * `nick` is in the room (come, or written otherwise): one row in, or
   * none if they go among those not drawn; the other rows stay.
   */
  put(nick) {
    const key = nickKey(nick);
    if (this.nicks.get(key) === nick) return;
    let { from, to } = this;
    if (!this.nicks.has(key)) {
      const i = this.place(key);
      this.keys.splice(i, 0, key);
      // Above those drawn, they move down one; among them (or just
      // below), one more.
      if (i < from) {
        from += 1;
        to += 1;
      } else if (i <= to) {
        to += 1;
      }
    }
    this.nicks.set(key, nick);
    this.changed(from, to);
  }

  /** `nick` left the room: their row out, if drawn. */
  drop(nick) {
    const key = nickKey(nick);
    if (!this.nicks.delete(key)) return;
    const i = this.place(key);
    this.keys.splice(i, 1);
    let { from, to } = this;
    if (i < from) {
      from -= 1;
      to -= 1;
    } else if (i < to) {
      to -= 1;
    }
    this.changed(from, to);
  }

  /**
   * One came or went, the rows drawn now `keys[from..to)`: drawn so, with
   * no look at the layout (done before the frame is drawn, it would lay
   * the page out once more), which the next frame takes.
   */
  changed(from, to) {
    if (this.windowed()) {
      this.render(from, to);
      this.soon();
    } else {
      this.render(0, this.keys.length);
    }
  }

  /** Where `key` is in `keys`, or would go. */
  place(key) {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Whether the list is too long to hold a row for everyone. */
  windowed() {
    return this.keys.length > ROWS_DRAWN;
  }

  /** The rows in view in the scroller: `keys[first..last)`. */
  inView() {
    const h = this.measure();
    const n = this.keys.length;
    // Rows sit one under the other from the top of the list, padding and all.
    const top = this.list.getBoundingClientRect().top - this.scroller.getBoundingClientRect().top;
    const first = Math.min(n, Math.max(0, Math.floor(-top / h)));
    const last = Math.min(n, Math.max(first, Math.ceil((this.scroller.clientHeight - top) / h)));
    // The first row wholly in view (a part of a pixel aside): the Tab stop
    // when no name was focused.
    this.first = Math.min(last, Math.max(first, Math.ceil(-top / h - 0.01)));
    return { first, last };
  }

  /**
   * A row's height, measured (the layout read) on a row drawn, or the
   * stylesheet's when none is laid out; kept for `rowHeight`.
   */
  measure() {
    const drawn = this.list.firstElementChild?.getBoundingClientRect().height;
    this.height = drawn > 0 ? drawn : 0;
    return this.rowHeight();
  }

  /** A row's height as last measured, or the stylesheet's. */
  rowHeight() {
    if (this.height > 0) return this.height;
    const rem = parseFloat(getComputedStyle(document.documentElement).fontSize);
    return parseFloat(getComputedStyle(this.list).getPropertyValue('--online-row')) * rem || 32;
  }

  /** Draw the rows around `keys[first..last)` (those in view, or the focused one). */
  draw(first, last) {
    const n = this.keys.length;
    let from = Math.max(0, first - ROWS_AROUND);
    const to = Math.min(n, Math.max(last + ROWS_AROUND, from + ROWS_DRAWN));
    from = Math.max(0, Math.min(from, to - ROWS_DRAWN));
    this.render(from, to);
  }

  /**
   * Once a frame as the list scrolls, resizes or changes: rows drawn
   * again around the view when it nears an end of those drawn, or when
   * people who came among them made them twice as many as needed.
   */
  soon() {
    if (this.frame || !this.windowed()) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (!this.windowed()) return;
      const { first, last } = this.inView();
      const n = this.keys.length;
      const near = (first - this.from < ROWS_EDGE && this.from > 0) || (this.to - last < ROWS_EDGE && this.to < n);
      if (near || this.to - this.from > 2 * ROWS_DRAWN) this.draw(first, last);
      // A row laid out is a fraction of a pixel off the stylesheet's
      // height (or more, in another font): the padding made with it, as
      // high as the rows it stands for.
      else if (this.height > 0 && this.height !== this.padded) this.render(this.from, this.to);
      else if (this.stop === null) this.tabStop(this.rows.get(this.keys[this.first]) ?? this.stopLi);
    });
  }

  /**
   * Make the rows in the page those of `keys[from..to)`, in order, and
   * the padding around them the height of the rest. In a long list the
   * Tab stop's row (the name last focused) is kept, in its place (the
   * padding split around it), though out of that range: the list
   * scrolled away from it, by the mouse or Page Down; taken out with the
   * focus on it, the focus went to the page.
   */
  render(from, to) {
    const n = this.keys.length;
    this.from = from;
    this.to = to;
    const windowed = this.windowed();
    const want = new Set(this.keys.slice(from, to));
    if (this.stop !== null && !this.nicks.has(this.stop)) this.stop = null;
    let held = null;
    if (windowed && this.stop !== null && !want.has(this.stop)) {
      const li = this.rows.get(this.stop);
      // Written otherwise (`Bob`), it is a new row.
      if (li?.dataset.nick === this.nicks.get(this.stop)) held = { key: this.stop, li, at: this.place(this.stop) };
    }
    if (this.held && this.held !== held?.li) this.held.style.margin = '';
    this.held = held?.li ?? null;
    for (const [key, li] of this.rows) {
      if (want.has(key) || key === held?.key) continue;
      li.remove();
      this.rows.delete(key);
    }
    // The held row is never moved (out of the page a moment, it lost the
    // focus): the rows between it and those drawn are gone, so it is
    // first already when above them, last when below (those drawn go in
    // before it).
    let at = this.list.firstElementChild;
    if (held && held.at < from) at = held.li.nextElementSibling;
    for (let i = from; i < to; i++) {
      const key = this.keys[i];
      const nick = this.nicks.get(key);
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
    }
    // What is not drawn is padding, as high as its rows would be; the
    // held row's share of it is its margin, on the side of those drawn.
    const h = windowed ? this.rowHeight() : 0;
    this.padded = h;
    let above = from;
    let below = n - to;
    if (held && held.at < from) {
      above = held.at;
      held.li.style.margin = `0 0 ${(from - held.at - 1) * h}px`;
    } else if (held) {
      below = n - held.at - 1;
      held.li.style.margin = `${(held.at - to) * h}px 0 0`;
    }
    this.list.style.paddingTop = above > 0 ? `${above * h}px` : '';
    this.list.style.paddingBottom = below > 0 ? `${below * h}px` : '';
    // The Tab stop: the name last focused, or the first in view.
    const stopLi = windowed
      ? (this.stop !== null ? this.rows.get(this.stop) : null) ??
        this.rows.get(this.keys[Math.min(Math.max(this.first, from), to - 1)]) ??
        null
      : null;
    this.stopLi = stopLi;
    // Each row's place among all, for a screen reader, when not all are here.
    const size = String(n);
    for (const [key, li] of this.rows) {
      const tab = !windowed || li === stopLi ? 0 : -1;
      if (li.firstElementChild.tabIndex !== tab) li.firstElementChild.tabIndex = tab;
      if (!windowed) {
        if (li.hasAttribute('aria-setsize')) {
          li.removeAttribute('aria-setsize');
          li.removeAttribute('aria-posinset');
        }
        continue;
      }
      const place = String((key === held?.key ? held.at : this.place(key)) + 1);
      if (li.getAttribute('aria-posinset') !== place) li.setAttribute('aria-posinset', place);
      if (li.getAttribute('aria-setsize') !== size) li.setAttribute('aria-setsize', size);
    }
    this.count.textContent = String(n);
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

/**
 * The rooms someone is in, each a button to enter it, and how many more
 * the server left out (`unlisted`: its list is cut to fit one frame).
 */
export function renderServerRooms(list, rooms, enter, unlisted = 0) {
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
  if (unlisted > 0) {
    const li = document.createElement('li');
    li.className = 'unlisted';
    li.textContent = `${unlisted} more not listed: enter any room by its name above`;
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
