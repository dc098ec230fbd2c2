// What a typed line means, with the terminal client's syntax
// (chatclient/src/input.rs):
//
//   hello                 to everyone in the current room
//   @bob hi, @bob: hi     to bob only
//   @bob @carol: hi       to bob and carol (also @bob, @carol: hi)
//   /me waves             an action, sent as the text "/me waves"
//   /msg bob hi           to bob only, as @bob hi
//   /query bob            every line after it to bob only; /query ends it
//   //text                sends /text
//   /join ROOM, /part [ROOM], /rooms, /who, /history [N], /clear, /help, /quit

import { roomName } from './protocol.js';

export const HISTORY_DEFAULT = 20;
export const HISTORY_MAX = 200;

export const HELP = [
  'hello — send to everyone in the current room',
  '@bob hi — send to bob only (also @bob: hi)',
  '@bob @carol: hi — send to bob and carol only',
  '/me waves — an action: shown as * alice waves',
  '/msg bob hi — send to bob only (as @bob hi)',
  '/query bob — send every line to bob only; /query alone ends it',
  '/join ROOM — enter ROOM and make it the current room',
  '/part [ROOM] — leave ROOM (the current room if none given)',
  '/rooms — list the rooms someone is in',
  '/who — list who is in the current room',
  '/history [N] — show N older messages of the current room (20)',
  '/clear — clear the messages shown in the current room (/history shows them again)',
  '/help — show this help',
  '/quit — leave the chat',
  '//text — send a line that starts with /',
  'Enter sends, Shift+Enter starts a new line, Up recalls what you sent, Escape clears (Ctrl+Z brings it back), Tab completes @nick',
];

const WS = /\s/u;

/**
 * One line of input as `{ kind, ... }`: `send` (`to`, `text`), `join`
 * (`room`), `part` (`room` or null), `rooms`, `who`, `history` (`count`),
 * `query` (`nick` or null), `clear`, `help`, `quit`, `nothing`, or
 * `invalid` (`message`).
 */
export function parseLine(input) {
  const line = input.replace(/[\r\n]+$/u, '');
  if (line.trim() === '') return { kind: 'nothing' };
  if (line.startsWith('//')) return { kind: 'send', to: [], text: line.slice(1) };
  const trimmed = line.trimStart();
  if (trimmed.startsWith('/')) return parseCommand(trimmed.slice(1));
  if (trimmed.startsWith('@')) return parseAddressed(trimmed);
  return { kind: 'send', to: [], text: line };
}

function parseCommand(cmd) {
  const words = cmd.split(/\s+/u).filter(Boolean);
  const word = (words[0] || '').toLowerCase();
  const arg = words[1];
  const extra = words.length > 2;
  const invalid = (message) => ({ kind: 'invalid', message });
  const tooMany = (usage) => invalid(`too many words; usage: ${usage}`);
  switch (word) {
    case 'join':
    case 'j': {
      if (arg === undefined) return invalid('usage: /join ROOM, as in /join rust');
      if (extra) return tooMany('/join ROOM');
      const r = roomName(arg);
      return r.error ? invalid(r.error) : { kind: 'join', room: r.room };
    }
    case 'part':
    case 'leave': {
      if (arg === undefined) return { kind: 'part', room: null };
      if (extra) return tooMany('/part [ROOM]');
      const r = roomName(arg);
      return r.error ? invalid(r.error) : { kind: 'part', room: r.room };
    }
    case 'rooms':
    case 'list':
      return arg === undefined ? { kind: 'rooms' } : tooMany('/rooms');
    case 'who':
    case 'names':
      return arg === undefined ? { kind: 'who' } : tooMany('/who');
    case 'history': {
      if (arg === undefined) return { kind: 'history', count: HISTORY_DEFAULT };
      if (extra) return tooMany('/history [N]');
      const n = /^\d+$/u.test(arg) ? Number(arg) : NaN;
      if (!(n >= 1 && n <= HISTORY_MAX)) {
        return invalid(`/history takes a number of messages from 1 to ${HISTORY_MAX}, not ${JSON.stringify(arg)}`);
      }
      return { kind: 'history', count: n };
    }
    case 'query':
    case 'q': {
      if (arg === undefined) return { kind: 'query', nick: null };
      if (extra) return tooMany('/query [NICK]');
      const n = nickArg(arg);
      return n.error ? invalid(n.error) : { kind: 'query', nick: n.nick };
    }
    case 'clear':
      return arg === undefined ? { kind: 'clear' } : tooMany('/clear');
    case 'msg':
    case 'm': {
      // `/msg bob hi` is `@bob hi`; the text as typed after the nick.
      const m = /^\S+\s+(\S+)(\s[\s\S]*)?$/u.exec(cmd);
      const text = (m?.[2] ?? '').trimStart();
      if (!m || text.trim() === '') return invalid('usage: /msg NICK TEXT, as in /msg bob hi');
      const n = nickArg(m[1]);
      return n.error ? invalid(n.error) : { kind: 'send', to: [n.nick], text };
    }
    case 'help':
    case '?':
      return arg === undefined ? { kind: 'help' } : tooMany('/help');
    case 'quit':
    case 'exit':
      return arg === undefined ? { kind: 'quit' } : tooMany('/quit');
    case 'me': {
      // An action goes as the text "/me ..." (PROTOCOL.md 5.3).
      const action = cmd.replace(/^\S+\s*/u, '');
      if (action.trim() === '') return invalid('usage: /me ACTION, as in /me waves');
      return { kind: 'send', to: [], text: `/me ${action}` };
    }
    default:
      return invalid(
        `unknown command /${word}; /help lists the commands, and //${word} sends the line as text`,
      );
  }
}

/** A nickname as typed after /msg or /query: `bob` or `@bob`. */
function nickArg(raw) {
  const nick = raw.startsWith('@') ? raw.slice(1) : raw;
  if (nick === '' || /[@:,]/u.test(nick)) return { error: `not a nickname: ${JSON.stringify(raw)}` };
  return { nick };
}

function parseAddressed(line) {
  const to = [];
  let rest = line;
  while (rest.startsWith('@')) {
    const after = rest.slice(1);
    let end = 0;
    while (end < after.length && !WS.test(after[end]) && !'@:,'.includes(after[end])) end++;
    const name = after.slice(0, end);
    if (name === '') {
      return { kind: 'invalid', message: "'@' must be followed by a nickname, as in @bob hi" };
    }
    to.push(name);
    let tail = after.slice(end);
    // A ',' right after a name separates it from the next one.
    if (tail.startsWith(',')) tail = tail.slice(1);
    rest = tail.trimStart();
  }
  // The list ends at the first word without '@', or at a ':'.
  const text = (rest.startsWith(':') ? rest.slice(1) : rest).trimStart();
  if (text === '') {
    return {
      kind: 'invalid',
      message: `nothing to send to ${to.join(', ')}; type the text after the names, as in @${to[0]} hi`,
    };
  }
  return { kind: 'send', to, text };
}
