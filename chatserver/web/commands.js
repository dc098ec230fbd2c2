// What the user types, carried out: a message sent to the room shown (to
// those it names, or the `/query`'s), or a command (input.js reads the
// line). `app` is the page's state and actions (app.js).

import { clearErrors, showError } from './chrome.js';
import { HELP, parseLine } from './input.js';

const $ = (id) => document.getElementById(id);

/** Carry out `line` as typed: true when it is done with (the input is emptied). */
export function runLine(app, line) {
  const { session, current, query, view, backlog, note, say } = app;
  if (!session) return false;
  const cmd = parseLine(line);
  clearErrors(false);
  // Needing a room, in none: said above the input, which keeps the line
  // (as the terminal client says it).
  if (!current && ['send', 'who', 'history'].includes(cmd.kind)) {
    showError('not_in_room', 'you are in no room; /join ROOM first');
    return false;
  }
  // What a command answers goes at the end of the log: show it there, as
  // a message sent is (a reader scrolled up would not see it otherwise).
  if (['rooms', 'who', 'help', 'query', 'clear'].includes(cmd.kind)) view.toBottom();
  switch (cmd.kind) {
    case 'nothing':
      return false;
    case 'invalid':
      showError('input', cmd.message);
      return false;
    case 'send': {
      const p = session.sendMsg(current, recipients(app, cmd), cmd.text, line);
      if (p.error) {
        showError('msg_too_large', p.error);
        return false;
      }
      return true;
    }
    case 'join':
      app.joinRoom(cmd.room);
      return true;
    case 'part':
      if (!cmd.room && !current) {
        showError('not_in_room', 'you are in no room');
        return false;
      }
      return app.partRoom(cmd.room ?? current);
    case 'rooms':
      if (!session.listRooms()) {
        showError('offline', 'not connected; try again once reconnected');
        return false;
      }
      app.roomsAsks.push('cmd');
      return true;
    case 'who': {
      const who = session.roster(current);
      note(current, `${who.length} online in #${current}: ${who.join(', ')}`, 'notice');
      return true;
    }
    case 'history': {
      // Older messages go above, where the reader is; only a reason why
      // none come goes at the end.
      const why = backlog.older(current, false, cmd.count, false, true);
      if (why) {
        view.toBottom();
        note(current, why, 'notice');
      }
      return true;
    }
    case 'query':
      if (cmd.nick) {
        say(`lines now go to ${cmd.nick} only; /query alone sends to everyone again`, 'notice');
      } else if (query) {
        say('lines go to everyone in the room again', 'notice');
      } else {
        say('usage: /query NICK sends every line to NICK only', 'notice');
      }
      app.setQuery(cmd.nick);
      return true;
    case 'clear':
      app.clearShown();
      return true;
    case 'help':
      for (const h of HELP) say(h, 'notice help');
      return true;
    case 'quit':
      app.leave();
      return true;
    default:
      return false;
  }
}

/**
 * A line too long to send is said above the input as it is typed, not
 * only on Enter (as the terminal client does).
 */
export function checkLength(app) {
  const { session, current } = app;
  const line = $('input').value;
  // Shorter than this, no line can be too long (six bytes a character at
  // most, as an escape, and room for the rest of the frame).
  if (!session || !current || line.length * 6 + 4096 < session.limits.maxFrameBytes) return;
  const cmd = parseLine(line);
  if (cmd.kind !== 'send') return;
  const error = session.tooLong(current, recipients(app, cmd), cmd.text);
  if (error) showError('msg_too_large', error);
}

/** Whom a line sent goes to: those it names, else the `/query`'s, else everyone. */
function recipients(app, cmd) {
  return cmd.to.length || !app.query ? cmd.to : [app.query];
}
