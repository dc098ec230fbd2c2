// The page's other tabs and windows in this browser, over a
// BroadcastChannel. A duplicated tab starts with a copy of the first one's
// sessionStorage, and so with its session token: resuming with it would
// take the first tab's session over (the server closes the older
// connection with `resumed_elsewhere`). Before resuming, a tab asks
// whether another one holds the token; a tab holding it answers at once.

const CHANNEL = 'chat.tabs';

/** How long a tab waits for an answer before resuming. */
export const ASK_MS = 200;

export class Tabs {
  /** `holds(token)`: whether this tab holds the session `token` now. */
  constructor(holds) {
    this.channel = null;
    try {
      this.channel = new BroadcastChannel(CHANNEL);
    } catch {
      return; // No channel (an old browser): nobody is asked, as before.
    }
    this.channel.addEventListener('message', (e) => {
      const ask = e.data?.ask;
      if (typeof ask === 'string' && holds(ask)) this.channel.postMessage({ held: ask });
    });
  }

  /**
   * Whether another tab or window says it holds `token` within ASK_MS.
   * A tab that cannot answer in time (frozen in the background, say)
   * counts as none: its session is then taken over, and the server tells
   * it so (`resumed_elsewhere`).
   */
  heldElsewhere(token) {
    const channel = this.channel;
    if (!channel) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (held) => {
        clearTimeout(timer);
        channel.removeEventListener('message', answer);
        resolve(held);
      };
      const answer = (e) => {
        if (e.data?.held === token) done(true);
      };
      const timer = setTimeout(() => done(false), ASK_MS);
      channel.addEventListener('message', answer);
      channel.postMessage({ ask: token });
    });
  }
}
