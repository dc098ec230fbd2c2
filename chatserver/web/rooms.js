// The rooms this tab is in and the one shown: kept across a reload,
// entered, left and shown (its log, its people, its name in the title).
// The room list's rows are sidebar.js's, a room's record session.js's.

import { closeDrawers, errorsFollow, forgetErrorsOf, saved, setTitle, showError, tabSaved } from './chrome.js';
import { LOBBY, nickKey, roomName } from './protocol.js';
import { unreadWords } from './sidebar.js';

const $ = (id) => document.getElementById(id);

// A tab's rooms are its own: kept in the tab (a reload comes back to
// them, whatever another tab of this browser entered or left since) and,
// for a new tab, in the browser (the last rooms used anywhere).
export function savedRooms() {
  let list = [];
  try {
    list = JSON.parse(tabSaved.get('rooms') || saved.get('rooms') || '[]');
  } catch {
    list = [];
  }
  const rooms = [];
  for (const raw of Array.isArray(list) ? list : []) {
    const r = typeof raw === 'string' ? roomName(raw).room : null;
    if (r && !rooms.includes(r)) rooms.push(r);
  }
  return rooms.length ? rooms : [LOBBY];
}

/**
 * `parts`: `session()` (null: no chat), the views (`view`, `noRoom`,
 * `roomList`, `online`, `composer`), `backlog` (history.js), `departures`
 * (away.js), `events` (events.js), `lost` (lost.js).
 */
export class Rooms {
  constructor(parts) {
    this.p = parts;
    /** The room shown, null for none. */
    this.current = null;
  }

  save() {
    const session = this.p.session();
    if (!session) return;
    // The list in its own order; the room being read apart, so that a
    // reload comes back to it without moving it to the top.
    const rooms = JSON.stringify([...session.rooms.keys()]);
    for (const store of [tabSaved, saved]) {
      store.set('rooms', rooms);
      store.set('current', this.current ?? '');
    }
  }

  add(room) {
    const { view, roomList, backlog } = this.p;
    view.addRoom(room);
    roomList.add(room);
    roomList.setEntering(room, true);
    backlog.add(room);
  }

  forget(room) {
    const { departures, view, roomList, backlog, events, lost } = this.p;
    departures.say(room, true);
    view.removeRoom(room);
    roomList.remove(room);
    backlog.forget(room);
    events.forget(room);
    lost.forget(room);
    forgetErrorsOf(room);
  }

  /**
   * Show `room` (null: none), and close the drawer it was chosen in (on a
   * phone it covers the room), unless `keepDrawers`: the drawer is still in
   * use (a room left by its × in the list, the focus on the next one).
   */
  select(room, keepDrawers = false) {
    const { view, noRoom, lost, backlog, roomList, composer } = this.p;
    const was = this.current;
    this.current = room;
    view.show(room);
    noRoom.show(!room);
    lost.shown(room, was);
    if (room) backlog.fill(room);
    roomList.setCurrent(room);
    if (room) roomList.unread(room, null);
    errorsFollow(room);
    $('current-room').textContent = room ? `#${room}` : '';
    composer.hint(room ? `Message #${room}` : 'Join a room to write: /join ROOM');
    this.showOnline();
    this.updateTitle();
    this.save();
    if (!keepDrawers) closeDrawers();
  }

  join(room) {
    const session = this.p.session();
    if (!session.rooms.has(room)) {
      session.enter(room);
      this.add(room);
    }
    this.select(room);
  }

  /**
   * Leave `room`; `fromList`: by its × in the room list, which has put the
   * focus on the next room there. False when not in it (said above the
   * input, whose `/part` line stays to be corrected).
   */
  part(room, fromList = false) {
    const session = this.p.session();
    if (!session || !session.rooms.has(room)) {
      showError('not_in_room', `you are not in #${room}`);
      return false;
    }
    // The current room left, the next one in the list is shown: the one
    // its × gives the focus to (the first room was, wherever the focus
    // went), and by the × the Rooms drawer stays open on it.
    const next = this.p.roomList.next(room);
    session.part(room);
    this.forget(room);
    if (this.current === room) this.select(next, fromList);
    else this.save();
    return true;
  }

  showOnline() {
    const session = this.p.session();
    const nicks = session && this.current ? session.roster(this.current) : [];
    this.p.online.show(nicks, session?.nick);
  }

  /**
   * `nick` came to or left `room`: in the room shown, their row alone
   * changes, as the session's roster now has them or not (a join in a room
   * of 10,000 went through every name, sorted anew).
   */
  showPresence(room, nick) {
    const session = this.p.session();
    if (room !== this.current || !session) return;
    const now = session.roomState(room)?.roster.get(nickKey(nick));
    if (now === undefined) this.p.online.drop(nick);
    else this.p.online.put(now);
  }

  /**
   * The unread count in the title and, for a phone, whose room list is
   * behind ☰, on that button (`!` when one of them is for the reader).
   */
  updateTitle() {
    const { n, mention } = this.p.roomList.totalUnread();
    setTitle(n, this.current);
    const badge = $('rooms-unread');
    badge.hidden = n === 0;
    badge.textContent = n ? `${n}${mention ? '!' : ''}` : '';
    badge.classList.toggle('mention', mention);
    $('rooms-toggle').setAttribute('aria-label', `Rooms${unreadWords(n, mention)}`);
  }
}
