// The chatproto v2 wire format (PROTOCOL.md) as plain objects: building
// the client's frames and checking the server's. Over the WebSocket each
// frame is one text message holding the JSON payload, with no length
// prefix.

export const LOBBY = 'lobby';

/** The frame limit until the server's `welcome` says otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 65536;

/** PROTOCOL.md 5.3: a stamped message must fit `max_frame_bytes` less this. */
export const STAMP_MARGIN = 512;

/**
 * PROTOCOL.md 5.2: in a room with more members than this, the server
 * sends entering and leaving only to whoever entered or left. It is the
 * server's default `presence_fanout_max`, taken where `welcome.limits`
 * does not say the server's own (an older server).
 */
export const PRESENCE_FANOUT_MAX = 1000;

/** chatproto::MAX_NICK_LEN: no server's rule allows a longer nickname. */
export const MAX_NICK_LEN = 32;

/**
 * chatproto::CLIENT_MAX_ROSTER: the most members the page keeps of one
 * room; past it a name the server says is there is not kept (one kept
 * still leaves), so a broken or hostile server cannot grow the page
 * without end by naming ever more members.
 */
export const MAX_ROSTER = 100000;

/**
 * Keep `nick` in `roster` (a Map by nickKey) as chatproto's client core
 * does: not a name longer than a nickname can be, nor a new one once the
 * roster is full.
 */
export const admit = (roster, nick) => {
  if ([...nick].length > MAX_NICK_LEN) return;
  const key = nickKey(nick);
  if (roster.size < MAX_ROSTER || roster.has(key)) roster.set(key, nick);
};

export const join = (nick, rooms, resume) => {
  const f = { type: 'join', nick, rooms };
  if (resume) f.resume = resume;
  return f;
};

export const enter = (room, since, epoch) => {
  const f = { type: 'enter', room };
  if (epoch != null) {
    f.since = since;
    f.epoch = epoch;
  }
  return f;
};

export const part = (room) => ({ type: 'part', room });

export const msg = (room, to, text, id) => {
  const f = { type: 'msg', room };
  if (to.length) f.to = to;
  f.text = text;
  if (id) f.id = id;
  return f;
};

export const history = (room, before, limit) => {
  const f = { type: 'history', room };
  if (before != null) f.before = before;
  if (limit != null) f.limit = limit;
  return f;
};

export const rooms = () => ({ type: 'rooms' });
export const ping = () => ({ type: 'ping' });
export const pong = () => ({ type: 'pong' });

/** The payload of `frame`, as sent. */
export function encode(frame) {
  return JSON.stringify(frame);
}

/** How many bytes `s` takes in UTF-8. */
export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

/**
 * `s` with lone surrogates replaced by U+FFFD: JSON.stringify would escape
 * them as `\udXXX`, which is not a Unicode scalar value and which the
 * server refuses as a bad frame.
 */
export function wellFormed(s) {
  return s.replace(
    /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    '\ufffd',
  );
}

/**
 * A room name as the server will have it (PROTOCOL.md 5.2), from what a
 * person typed (`Rust`, `#rust`): `{ room }` or `{ error }`.
 */
export function roomName(raw) {
  const name = raw.startsWith('#') ? raw.slice(1) : raw;
  if (name.length < 1 || name.length > 32) {
    return { error: `a room name is 1 to 32 characters: ${JSON.stringify(raw)}` };
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    return {
      error: `a room name uses only a-z 0-9 - _ . and starts with a letter or digit: ${JSON.stringify(raw)}`,
    };
  }
  return { room: name.toLowerCase() };
}

/**
 * The server's identity key (PROTOCOL.md 3, chatproto's `nick_key`):
 * names with one key are one person, `Alice` and `ALICE`, `Straße` and
 * `STRASSE`, `ΣΟΦΟΣ` and `σοφοσ`, `Jose\u0301` and `José`. The server
 * takes the full case folding of the NFD form, then NFC; JavaScript has
 * no case folding, and lower-casing alone kept `ß` and a final `ς` apart
 * from `ss` and `σ` (see foldChar).
 */
export function nickKey(nick) {
  // ASCII folds to its lower case, as the server's shortcut says.
  if (!/[^\0-\x7f]/.test(nick)) return nick.toLowerCase();
  return nick.normalize('NFD').split('\u0131').map(foldRun).join('\u0131').normalize('NFC');
}

/**
 * A run of text's full case folding, up to which of a case pair stands
 * for each character: lower, upper, lower again reaches what folding
 * merges and lower-casing does not (`ẞ` to `ß` to `SS` to `ss`, `ſ` to
 * `s`); a final sigma, which lower-casing a whole run makes `ς`, is `σ`
 * as any sigma (the same as folding a character at a time, which took
 * some 300 times as long on a long text: mentions fold every message).
 * The Turkic dotless `ı` folds to itself (its capital is `I`, which is
 * `i`'s): the caller leaves it out of the runs. Cherokee folds to its
 * capitals where this gives the small letters: the same people either
 * way, which is all the page asks of a key.
 */
function foldRun(run) {
  return run.toLowerCase().toUpperCase().toLowerCase().replace(/ς/g, 'σ');
}

const isStr = (v) => typeof v === 'string';
const isInt = (v) => Number.isSafeInteger(v) && v >= 0;
const isStrArray = (v) => Array.isArray(v) && v.every(isStr);
const optStr = (v) => (isStr(v) ? v : undefined);

/** A server `msg` object, checked and with defaults filled in; null if malformed. */
export function checkMsg(o) {
  if (!o || typeof o !== 'object') return null;
  if (!isInt(o.seq) || !isStr(o.from) || !isStr(o.text)) return null;
  return {
    type: 'msg',
    room: isStr(o.room) ? o.room : LOBBY,
    seq: o.seq,
    from: o.from,
    to: isStrArray(o.to) ? o.to : [],
    text: o.text,
    ts: isInt(o.ts) ? o.ts : null,
    id: optStr(o.id),
    replay: o.replay === true,
  };
}

/**
 * A server frame from one WebSocket text message, checked against
 * PROTOCOL.md 4.2 with defaults filled in (a v1 frame has no `room`: it is
 * `lobby`'s). Unknown kinds come back as `{ type: 'unknown' }` and are to be
 * ignored (section 2.3); malformed ones as null.
 */
export function decode(text) {
  let o;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  if (!o || typeof o !== 'object' || Array.isArray(o) || !isStr(o.type)) return null;
  switch (o.type) {
    case 'welcome': {
      if (!isStr(o.nick)) return null;
      const limits = o.limits && typeof o.limits === 'object' ? o.limits : {};
      return {
        type: 'welcome',
        nick: o.nick,
        session: optStr(o.session),
        resumed: o.resumed === true,
        // On a resume: the fatal error the server closed the last
        // connection with, if its `error` frame may not have arrived.
        closedFor: optStr(o.closed_for),
        maxFrameBytes: isInt(limits.max_frame_bytes)
          ? limits.max_frame_bytes
          : DEFAULT_MAX_FRAME_BYTES,
        maxRecipients: isInt(limits.max_recipients) ? limits.max_recipients : 64,
        historyPage: isInt(limits.history_page) ? limits.history_page : 200,
        presenceFanoutMax: isInt(limits.presence_fanout_max)
          ? limits.presence_fanout_max
          : PRESENCE_FANOUT_MAX,
      };
    }
    case 'online':
      if (!isStrArray(o.nicks)) return null;
      return { type: 'online', room: optStr(o.room), nicks: o.nicks };
    case 'entered':
      if (!isStr(o.room) || !isStr(o.epoch) || !isInt(o.seq) || !isStrArray(o.online)) {
        return null;
      }
      return {
        type: 'entered',
        room: o.room,
        epoch: o.epoch,
        seq: o.seq,
        oldest: isInt(o.oldest) ? o.oldest : 0,
        online: o.online,
        recovered: o.recovered === true,
      };
    case 'presence':
      if (!isInt(o.seq) || !isStr(o.nick) || !isStr(o.status)) return null;
      return {
        type: 'presence',
        room: isStr(o.room) ? o.room : LOBBY,
        seq: o.seq,
        nick: o.nick,
        online: o.status === 'online',
        ts: isInt(o.ts) ? o.ts : null,
      };
    case 'msg':
      return checkMsg(o);
    case 'history':
      if (!isStr(o.room) || !Array.isArray(o.events)) return null;
      return {
        type: 'history',
        room: o.room,
        events: o.events.map(checkMsg).filter(Boolean),
        more: o.more === true,
        // Where the next older page starts (a page that stopped short of
        // a full one says so; absent, it is the oldest message's seq).
        before: o.more === true && isInt(o.before) ? o.before : null,
        // The last page: where the room's kept history starts now.
        oldest: o.more !== true && isInt(o.oldest) ? o.oldest : null,
      };
    case 'rooms':
      if (!Array.isArray(o.rooms)) return null;
      return {
        type: 'rooms',
        rooms: o.rooms
          .filter((r) => r && isStr(r.room))
          .map((r) => ({ room: r.room, members: isInt(r.members) ? r.members : 0 })),
        // How many rooms have members, when the list was cut to fit a
        // frame (absent: it is whole, or the server does not say).
        total: isInt(o.total) ? o.total : null,
      };
    case 'error':
      return {
        type: 'error',
        code: isStr(o.code) ? o.code : 'unknown',
        message: isStr(o.message) ? o.message : '',
        id: optStr(o.id),
        room: optStr(o.room),
        seq: isInt(o.seq) ? o.seq : undefined,
      };
    case 'notice':
      return isStr(o.text) ? { type: 'notice', text: o.text } : null;
    case 'ping':
    case 'pong':
      return { type: o.type };
    default:
      return { type: 'unknown' };
  }
}
