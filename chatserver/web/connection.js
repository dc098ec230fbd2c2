// One WebSocket at a time to the page's own server (`/ws`, ws: or wss: as
// the page), reconnecting with backoff when it drops, and noticing a dead
// connection by pinging when the server has been silent.
//
// A line sent with nothing heard back within ANSWER_MS makes it ping at
// once rather than wait for the silence: a dead link under a line
// `sending…` is given up within ANSWER_MS + DEAD_AFTER_MS (13 s). Any
// frame heard answers the ping, a server's own `ping` too: a server whose
// answers to this page wait (a cluster's log away holds the echo, and the
// pong behind it) pings every 5 s meanwhile, so the link is not given up.
//
// Backoff as the terminal client's (chatclient/src/reconnect.rs): 0.5 s,
// doubling each attempt up to 30 s, each wait shortened at random by up to
// half, so that clients dropped together do not come back together.
// After a planned restart (the server said `notice` and closed, as it does
// when it stops), it tries about every second (RESTART_RETRY_MS, shortened
// at random by up to half) for RESTART_WINDOW_MS, those tries counting as
// attempt 1, before the doubling goes on from attempt 2: everyone the
// restart dropped is back within about a second of the server's return,
// before a leaving is said (5 s late), as the terminal client.

import { encode, ping } from './protocol.js';

export const BACKOFF_MIN_MS = 500;
export const BACKOFF_MAX_MS = 30000;
/** After a planned restart: the wait between two tries, before jitter. */
export const RESTART_RETRY_MS = 1000;
/** For how long after a planned restart's loss the steady tries go on. */
export const RESTART_WINDOW_MS = 30000;
let restartWindowMs = RESTART_WINDOW_MS;

/**
 * Set how long the steady tries after a planned restart go on, from the
 * next try on (0: none, the doubling at once). For tests that need the
 * page's waits to grow after a server's restart, as they do after any
 * other loss.
 */
export function setRestartWindow(ms) {
  restartWindowMs = ms;
}
/** Silence after which we ping, and then how long we wait for anything. */
export const PING_AFTER_MS = 30000;
export const DEAD_AFTER_MS = 10000;
/**
 * A message sent and nothing heard since for this long: ping now (the
 * server echoes a message at once, so silence says the link may be dead).
 */
export const ANSWER_MS = 3000;
/** A connection that has not joined by then is given up and tried again. */
export const JOIN_TIMEOUT_MS = 10000;

/** The wait before attempt `n` (1 for the first), with `jitter` from 0 to 1. */
export function backoffDelay(n, jitter) {
  const base = Math.min(BACKOFF_MIN_MS * 2 ** Math.min(n - 1, 30), BACKOFF_MAX_MS);
  return Math.max(base * (0.5 + 0.5 * jitter), BACKOFF_MIN_MS);
}

/**
 * The next try after a loss: `{ attempt, delay, steady }`. `attempt` is
 * the last one's (0 before the first), `restartUntil` the end of the
 * steady tries after a planned restart (null: none), `now` and `jitter`
 * (0 to 1) as said.
 */
export function nextRetry(attempt, restartUntil, now, jitter) {
  if (restartUntil != null && now < restartUntil) {
    return { attempt: 1, delay: RESTART_RETRY_MS * (0.5 + 0.5 * jitter), steady: true };
  }
  return { attempt: attempt + 1, delay: backoffDelay(attempt + 1, jitter), steady: false };
}

/** Whether a frame's text is a `notice`: what the server says before it stops. */
function isNotice(text) {
  if (!text.includes('"notice"')) return false;
  try {
    return JSON.parse(text).type === 'notice';
  } catch {
    return false;
  }
}

export function socketUrl(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

/**
 * Handlers: `open()`, `message(text)`, `close({ code, reason, wasJoined })`,
 * `state(state, detail)` with state 'connecting' | 'connected' |
 * 'reconnecting' | 'offline' | 'elsewhere'.
 */
export class Connection {
  constructor(url, handlers) {
    this.url = url;
    this.h = handlers;
    this.ws = null;
    this.attempt = 0;
    this.stopped = true;
    this.joined = false;
    this.retryTimer = null;
    this.liveTimer = null;
    this.countdown = null;
    this.heardAt = 0;
    this.pingedAt = null;
    /** When the oldest message sent with nothing heard since went (null: none). */
    this.unanswered = null;
    /** The last frame of this socket was a `notice` (the server is stopping). */
    this.noticeLast = false;
    /** When the loss after the server's notice came (null: the last loss had none). */
    this.restartSince = null;
  }

  /** Connect now, and keep reconnecting until stop(). */
  start() {
    this.stopped = false;
    this.attempt = 0;
    this.restartSince = null;
    this.open();
  }

  /**
   * Close, and do not reconnect until start(): the user left, or
   * (`state` 'elsewhere') another connection continues the session.
   */
  stop(state = 'offline') {
    this.stopped = true;
    this.clearTimers();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      detach(ws);
      ws.close(1000, 'bye');
    }
    this.h.state(state, '');
  }

  /** While waiting to reconnect: try at once (the network came back, or the user asked). */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    this.open();
  }

  /** The server accepted the join: the next loss starts the backoff afresh. */
  markJoined() {
    this.joined = true;
    this.attempt = 0;
    this.restartSince = null;
    this.heardAt = Date.now();
    this.pingedAt = null;
    this.unanswered = null;
    this.schedule(); // replaces the join timeout
    this.h.state('connected', '');
  }

  /**
   * Send a frame; false when there is no open socket. A message starts
   * the wait for an answer (see ANSWER_MS), unless one is on already.
   */
  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encode(frame));
    if (frame.type === 'msg' && this.joined && this.unanswered == null) {
      this.unanswered = Date.now();
      if (this.pingedAt == null) this.schedule();
    }
    return true;
  }

  /** Check at once that the connection is alive (e.g. the page was hidden a while). */
  probe() {
    if (this.joined && this.pingedAt == null && this.send(ping())) {
      this.pingedAt = Date.now();
      this.schedule();
    }
  }

  /** Drop the current socket and reconnect (it seems dead). */
  drop(reason) {
    if (!this.ws) return;
    const ws = this.ws;
    detach(ws);
    try {
      ws.close(4000, reason);
    } catch {
      // Closing a socket that never opened can throw in some browsers.
    }
    this.lost({ code: 4000, reason });
  }

  open() {
    this.clearTimers();
    this.joined = false;
    this.h.state(this.attempt === 0 ? 'connecting' : 'reconnecting', 'connecting…');
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (e) {
      this.lost({ code: 0, reason: String(e) });
      return;
    }
    this.ws = ws;
    this.noticeLast = false;
    this.heardAt = Date.now();
    this.pingedAt = null;
    this.unanswered = null;
    this.liveTimer = setTimeout(() => {
      if (!this.joined) this.drop('no welcome in time');
    }, JOIN_TIMEOUT_MS);
    ws.onopen = () => this.h.open();
    ws.onmessage = (e) => {
      this.heardAt = Date.now();
      this.pingedAt = null;
      this.unanswered = null;
      if (this.joined) this.schedule();
      this.noticeLast = typeof e.data === 'string' && isNotice(e.data);
      if (typeof e.data === 'string') this.h.message(e.data);
    };
    ws.onclose = (e) => {
      detach(ws);
      this.lost({ code: e.code, reason: e.reason });
    };
    // An error is always followed by close; nothing to do twice.
    ws.onerror = () => {};
  }

  /** The socket is gone: tell, then wait and try again unless stopped. */
  lost(info) {
    const wasJoined = this.joined;
    this.ws = null;
    this.joined = false;
    this.clearTimers();
    this.h.close({ ...info, wasJoined });
    if (this.stopped) return;
    // The server said it was stopping: a restart, tried steadily for a while.
    if (this.noticeLast && this.restartSince == null) this.restartSince = Date.now();
    this.noticeLast = false;
    const until = this.restartSince == null ? null : this.restartSince + restartWindowMs;
    const next = nextRetry(this.attempt, until, Date.now(), Math.random());
    this.attempt = next.attempt;
    const delay = next.delay;
    const at = Date.now() + delay;
    const tell = () => {
      const s = Math.max(0, (at - Date.now()) / 1000);
      this.h.state('reconnecting', `retrying in ${s.toFixed(s < 10 ? 1 : 0)} s (attempt ${this.attempt})`);
    };
    tell();
    this.countdown = setInterval(tell, 500);
    this.retryTimer = setTimeout(() => {
      clearInterval(this.countdown);
      this.open();
    }, delay);
  }

  /**
   * Ping a silent server, or one that has not answered a message sent;
   * give the connection up when even that gets no answer.
   */
  schedule() {
    clearTimeout(this.liveTimer);
    const now = Date.now();
    const at = this.pingedAt != null ? this.pingedAt + DEAD_AFTER_MS : this.pingDue();
    this.liveTimer = setTimeout(() => this.tick(), Math.max(0, at - now) + 50);
  }

  /** When to ping, with no ping out: after the silence, or sooner for a message unanswered. */
  pingDue() {
    const silent = this.heardAt + PING_AFTER_MS;
    return this.unanswered != null ? Math.min(silent, this.unanswered + ANSWER_MS) : silent;
  }

  tick() {
    if (!this.ws || !this.joined) return;
    const now = Date.now();
    if (this.pingedAt != null) {
      if (now >= this.pingedAt + DEAD_AFTER_MS) {
        this.drop('no answer to ping');
        return;
      }
    } else if (now >= this.pingDue()) {
      if (this.send(ping())) this.pingedAt = now;
    }
    this.schedule();
  }

  clearTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.liveTimer);
    clearInterval(this.countdown);
  }
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
}
