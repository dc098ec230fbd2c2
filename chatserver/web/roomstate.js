// A room as the session knows it (session.js): its state when entered,
// whether its online list may have fallen behind, and who came and went
// while the page was away.

export function newRoom() {
  return { epoch: null, lastSeq: 0, oldest: 0, seq: 0, roster: new Map(), entered: false, recovered: false, crowded: false, away: null, waits: false, from: null };
}

/**
 * Mark room `r` crowded (until it is entered again) once its online list
 * reaches `cap`, the server's presence fan-out cap: one more arrival there
 * is not sent to us, nor is any leaving while the room is past it, so the
 * list may be behind from then on.
 */
export function crowding(r, cap) {
  if (r.roster.size >= cap) r.crowded = true;
}

/**
 * Who is in `now` and was not in `before` (`joined`), and the other way
 * round (`left`), both rosters keyed by P.nickKey, each list sorted as
 * the online list is; `me` left out. Null when nobody came or went.
 */
export function rosterChange(before, now, isMe) {
  const missing = (a, b) =>
    [...a.entries()]
      .filter(([k, n]) => !b.has(k) && !isMe(n))
      .sort((x, y) => (x[0] < y[0] ? -1 : 1))
      .map((e) => e[1]);
  const joined = missing(now, before);
  const left = missing(before, now);
  return joined.length || left.length ? { joined, left } : null;
}
