// The message input: Enter sends, Shift+Enter starts a new line, Up in an
// empty input (or while stepping through them) recalls the lines sent,
// Escape clears (Ctrl+Z brings it back), Tab completes an @nick.

import { nickKey } from './protocol.js';

const RECALL_MAX = 100;

/** Measures a hint's width in the input's font (see fitHint). */
const measure = document.createElement('canvas').getContext('2d');

export class Composer {
  /**
   * `form` holds `input` (a textarea); `submit(line)` is called with what
   * was typed and returns true when the line was taken (the input then
   * clears); `nicks()` lists the nicks to complete; `typing()` is called
   * when the user changed the text (typed, cleared, recalled, completed or
   * addressed it); `addressed(names)` whenever the nicks the line starts
   * with (`@bob @carol: hi`) may have changed, however the text did.
   */
  constructor(form, input, { submit, nicks, typing, addressed }) {
    this.form = form;
    this.input = input;
    this.submitLine = submit;
    this.nicks = nicks;
    this.typing = typing;
    this.addressedChanged = addressed;
    this.sent = [];
    this.recall = -1; // index into `sent` while stepping, else -1
    this.draft = '';
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    input.addEventListener('keydown', (e) => this.key(e));
    window.addEventListener('resize', () => this.fit());
    // Its width changes with the window, the /query mark beside it, or
    // as the page is first shown: the hint is fitted to it again.
    new ResizeObserver(() => this.fitHint()).observe(input);
    input.addEventListener('input', () => {
      this.recall = -1;
      this.fit();
      this.addressedChanged(this.addressed());
      this.typing();
    });
  }

  submit() {
    const line = this.input.value;
    if (line.trim() === '') return;
    if (!this.submitLine(line)) return;
    if (this.sent[this.sent.length - 1] !== line) {
      this.sent.push(line);
      if (this.sent.length > RECALL_MAX) this.sent.shift();
    }
    this.set('');
  }

  key(e) {
    if (e.isComposing || e.keyCode === 229) return; // an IME is composing
    const v = this.input.value;
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.submit();
    } else if (e.key === 'Escape') {
      if (v !== '') {
        e.preventDefault();
        this.clear();
      }
      this.typing();
    } else if (e.key === 'ArrowUp' && (v === '' || this.recall >= 0) && this.sent.length) {
      e.preventDefault();
      if (this.recall < 0) {
        this.draft = v;
        this.recall = this.sent.length;
      }
      this.recall = Math.max(0, this.recall - 1);
      this.set(this.sent[this.recall], true);
      this.typing();
    } else if (e.key === 'ArrowDown' && this.recall >= 0) {
      e.preventDefault();
      this.recall += 1;
      if (this.recall >= this.sent.length) {
        this.recall = -1;
        this.set(this.draft);
      } else {
        this.set(this.sent[this.recall], true);
      }
      this.typing();
    } else if (e.key === 'Tab' && !e.shiftKey && this.complete()) {
      e.preventDefault();
      this.typing();
    }
  }

  /** Complete the `@ni` before the caret to a nick in the room; false if none fits. */
  complete() {
    const pos = this.input.selectionStart;
    if (pos !== this.input.selectionEnd) return false;
    const before = this.input.value.slice(0, pos);
    const m = /(^|[\s,])@([^\s@:,]*)$/u.exec(before);
    if (!m) return false;
    // Who is who by the server's key (`@STRASS` finds Straße), taken
    // apart (NFD) so that an `e` typed before its accent starts `é`. This
    // is approximate: the typed part is folded on its own, not as the
    // start of a name, and several names' common part is written as the
    // first of them spells it.
    const fold = (s) => nickKey(s).normalize('NFD');
    const prefix = fold(m[2]);
    const hits = this.nicks().filter((n) => fold(n).startsWith(prefix));
    if (hits.length === 0) return false;
    let common = hits[0];
    for (const h of hits) {
      while (!fold(h).startsWith(fold(common))) common = [...common].slice(0, -1).join('');
    }
    const word = hits.length === 1 ? `${hits[0]} ` : common;
    if (hits.length > 1 && fold(word).length <= prefix.length) return false;
    const start = pos - m[2].length;
    const value = this.input.value.slice(0, start) + word + this.input.value.slice(pos);
    this.input.value = value;
    const caret = start + word.length;
    this.input.setSelectionRange(caret, caret);
    this.fit();
    this.addressedChanged(this.addressed());
    return true;
  }

  /**
   * Empty the input as an edit of the person's, which Ctrl+Z undoes (a
   * long draft cleared by a stray Escape comes back), where the browser
   * can; else as `set('')` does.
   */
  clear() {
    this.recall = -1;
    this.input.focus();
    this.input.select();
    // Deprecated, yet still the one way to edit a textarea undoably.
    if (!document.execCommand('delete') || this.input.value !== '') this.input.value = '';
    this.fit();
    this.addressedChanged([]);
  }

  /** Put `text` in the input, caret at the end, and focus it. */
  set(text, keepRecall) {
    if (!keepRecall) this.recall = -1;
    this.input.value = text;
    this.fit();
    this.input.focus();
    this.input.setSelectionRange(text.length, text.length);
    this.addressedChanged(this.addressed());
  }

  /**
   * The nicks the line starts with (`@bob @carol: hi`: bob and carol),
   * and where the rest of it begins.
   */
  leading() {
    const m = /^(?:@[^\s@:,]+[\s,]*)+:?\s*/u.exec(this.input.value);
    const names = m ? m[0].match(/@[^\s@:,]+/gu).map((n) => n.slice(1)) : [];
    return { names, rest: m ? m[0].length : 0 };
  }

  /** The nicks the line is addressed to (none: to the room, or the /query's). */
  addressed() {
    return this.leading().names;
  }

  /**
   * Address `nick`: `@nick ` at the start, instead of whoever was
   * addressed, keeping the text; with `add`, next to them (a group).
   */
  address(nick, add) {
    const { names, rest } = this.leading();
    // One person, however each was written (`@Jose\u0301` is José).
    const key = nickKey(nick);
    const kept = add ? names.filter((n) => nickKey(n) !== key) : [];
    this.set(`${[...kept, nick].map((n) => `@${n}`).join(' ')} ${this.input.value.slice(rest)}`);
    this.typing();
  }

  /** Whether a refused line would go back into the input: it is empty. */
  canRestore() {
    return this.input.value === '';
  }

  /** A line the server refused: back in the input if it is empty. */
  restore(line) {
    if (line && this.canRestore()) this.set(line);
  }

  /** Show `text` in the empty input (its placeholder), fitted to one row. */
  hint(text) {
    this.fullHint = text;
    this.fitHint();
  }

  /**
   * The hint cut short with `…` where it is wider than the input: the
   * stylesheet keeps it to one row, but its ellipsis is dropped while
   * the input has the focus (Chromium's), and the hint was cut off in
   * the middle of a letter.
   */
  fitHint() {
    const el = this.input;
    const text = this.fullHint ?? el.placeholder;
    const st = getComputedStyle(el);
    const room = el.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
    measure.font = st.font;
    // Not laid out (the chat hidden): fitted once it is shown.
    if (room <= 0 || measure.measureText(text).width <= room) {
      el.placeholder = text;
      return;
    }
    const chars = Array.from(text);
    let fits = 0;
    let over = chars.length;
    while (over - fits > 1) {
      const mid = (fits + over) >> 1;
      if (measure.measureText(`${chars.slice(0, mid).join('')}…`).width <= room) fits = mid;
      else over = mid;
    }
    el.placeholder = `${chars.slice(0, fits).join('').trimEnd()}…`;
  }

  /** Grow the textarea with its text, up to the height the stylesheet allows. */
  fit() {
    const el = this.input;
    el.style.height = 'auto';
    const border = el.offsetHeight - el.clientHeight;
    el.style.height = `${el.scrollHeight + border}px`;
    el.classList.toggle('scroll', el.scrollHeight > el.clientHeight);
  }
}
