// Joining: a reload resuming the tab's session, the server's `joined`
// and `refused` (the rest of what it says is events.js's), and the tries
// again while the nickname may still be held by this very session.

import { clearErrors, showChat, showJoin, tabSaved } from './chrome.js';
import { resendable, showUnsent } from './unsent.js';

const $ = (id) => document.getElementById(id);

/** Held answers in a row a reconnect tries again after (see `heldTries`). */
const HELD_TRIES = 4;

/** Why the server closes a connection with the fatal error `code`, in the reader's words. */
function closedBecause(code) {
  switch (code) {
    case 'slow_consumer':
      return 'this page did not read its messages fast enough';
    case 'rate_limited':
      return 'this page sent too much too fast';
    case 'timeout':
      return 'it heard nothing from this page in time';
    case 'frame_too_large':
    case 'empty_frame':
      return 'this page sent a frame it could not read';
    default:
      return 'it closed it with an error';
  }
}

/**
 * `parts`: `session()` and `conn()` (null: no chat), `start(nick, token)`
 * and `stop()` a chat, `say(text, className, code)` where the reader is,
 * `lost` (lost.js), `events` (events.js), `keeper` (unsent.js), `tabs`
 * (tabs.js), the views (`view`, `roomList`, `composer`).
 */
export class Joining {
  constructor(parts) {
    this.p = parts;
    /** Whether this chat has joined yet (false until its first `joined`). */
    this.everJoined = false;
    /** A reload resumes the tab's session: how many tries are left for it. */
    this.resumeTries = 0;
    /**
     * Reconnects in a row that found the nickname still held: in a cluster,
     * by this session on a server that died (the others free its names within
     * seconds; a connection the server merely has not seen go is taken over
     * by the resume); as chatclient, the fifth such answer means someone else
     * has it.
     */
    this.heldTries = 0;
  }

  joined({ nick, resumed, reconnect, closedFor }) {
    const { conn, session, lost, say, events, roomList, view, composer } = this.p;
    conn().markJoined();
    this.resumeTries = 0;
    this.heldTries = 0;
    // A reload of this tab resumes this session.
    tabSaved.set('resume', JSON.stringify({ nick, token: session().token }));
    $('me').textContent = nick;
    $('nick').value = nick;
    if (!this.everJoined) {
      this.everJoined = true;
      // In: what the join screen listed to send again is over (kept
      // until now, in case this join failed too).
      showUnsent([]);
      showChat();
      composer.fit();
      $('input').focus();
    } else if (reconnect) {
      lost.sayBack(resumed);
    }
    if (reconnect) lost.clear();
    // The server had closed the last connection with an error that did
    // not arrive then (a page too slow to read takes nothing more).
    if (closedFor) say(`the server had closed the connection: ${closedBecause(closedFor)} (${closedFor})`, 'notice lost', closedFor);
    // The first connection of this page resumed a session: the page was
    // reloaded (or copied). Each room's own presence is not a fresh join.
    if (resumed && !reconnect) for (const r of session().rooms.keys()) events.resumed(r);
    // What the bar said of the lost connection ("you did not answer a
    // ping in time") is over: the log keeps it.
    if (reconnect) clearErrors(true);
    for (const r of session().rooms.keys()) roomList.setEntering(r, true);
    view.pendingState('sending…');
  }

  refused(f) {
    const { session, conn, start, stop, say, keeper } = this.p;
    const nickError = f.code === 'nick_taken' || f.code === 'nick_invalid';
    // Reloaded: the server may not have seen the old page's socket close
    // yet, and still holds the nickname for it. Try again shortly.
    if (!this.everJoined && f.code === 'nick_taken' && this.resumeTries > 0) {
      this.resumeTries -= 1;
      const { nick, token } = { nick: session().nick, token: session().token };
      stop();
      setTimeout(() => start(nick, token), 500);
      return;
    }
    // Back after a loss: the nickname may still be held by this session
    // on a cluster's server that died. Drop this socket; the connection
    // tries again with its backoff.
    if (this.everJoined && f.code === 'nick_taken' && this.heldTries < HELD_TRIES) {
      this.heldTries += 1;
      say('the nickname is still held (perhaps by this session, on a server that has not yet seen it go); trying again', 'notice');
      conn()?.drop('nickname still held');
      return;
    }
    if (!this.everJoined || nickError) {
      const msg = this.everJoined ? `You were disconnected and could not rejoin: ${f.message}` : f.message;
      // Lines still unconfirmed are listed there, to send again.
      // Kept in the tab too: a reload here resumes, and sends them if
      // the nickname is free by then.
      const unsent = session().pending.map(resendable);
      keeper.save();
      stop();
      showJoin(f.code, msg);
      showUnsent(unsent);
    } else {
      say(`${f.code}: ${f.message}`, 'error', f.code);
    }
  }

  /**
   * This tab had joined before a reload: join again, resuming its session.
   * A duplicated tab has the same token as the tab it was copied from: if
   * that one is still open, start afresh here instead of taking its session.
   */
  async resumeAfterReload() {
    let was = null;
    try {
      was = JSON.parse(tabSaved.get('resume') || 'null');
    } catch {
      was = null;
    }
    if (!was || typeof was.nick !== 'string' || !was.nick) return;
    const token = typeof was.token === 'string' ? was.token : null;
    const held = token !== null && (await this.p.tabs.heldElsewhere(token));
    if (this.p.session()) return; // joined by hand meanwhile
    if (held) {
      // Its lines are that tab's, which sends them: not this copy's.
      tabSaved.set('resume', null);
      tabSaved.set('pending', null);
      // Not a name to join with: the other tab has it (or the last one any
      // tab used, which may be another's too).
      $('nick').value = '';
      showJoin('in_another_tab', `${was.nick} is open in another tab or window of this browser: go on there, or join here with another nickname.`);
      $('nick').select();
      return;
    }
    this.resumeTries = 3;
    this.p.start(was.nick, token);
  }
}
