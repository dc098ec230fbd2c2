// Where the reader is in the log shown: following its newest lines or
// reading back (`atBottom`, `onScroll`), kept at the newest once a frame
// however many lines came (`settle`, `toBottom`), and the jump button
// to them (`updateJump`, `showJump`). Methods of `MessageView`
// (messages.js), kept here apart from its rooms and lines.

const NEAR = 48; // px from an edge that still counts as at it

export const follow = {
  /** Whether `room`'s reader follows its newest lines (here, or when it last looked). */
  following(room, r) {
    return this.isCurrent(room) ? this.stuck : r.stick;
  },

  /** Whether the log shown is taller than its place (it can scroll). */
  overflows() {
    return this.scroller.scrollHeight > this.scroller.clientHeight;
  },

  /** At the newest line: never in a cut room, whose bottom is not that. */
  atBottom() {
    if (this.cutHere()) return false;
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR;
  },

  /**
   * Before the next paint, once however many lines came: to the newest
   * line if the reader follows them, else the jump button updated.
   */
  settle(below = false) {
    if (below && !this.stuck) this.newBelow = true;
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      if (this.stuck) this.toBottom();
      else this.updateJump();
    });
  },

  /**
   * To the bottom of the log shown, following its newest lines; in a cut
   * room only to its bottom, where the jump button still offers the
   * newest (`toNewest`).
   */
  toBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.lastTop = this.scroller.scrollTop;
    if (this.cutHere()) {
      this.stuck = false;
      this.updateJump();
      return;
    }
    this.stuck = true;
    this.newBelow = false;
    this.showJump(false);
  },

  updateJump() {
    this.showJump(!this.atBottom());
    this.jump.textContent = this.newBelow ? '↓ New messages' : '↓ Newest';
  },

  /**
   * The jump button shown or hidden. Hidden with the focus on it (it was
   * pressed, or the log scrolled down to the newest under it), the focus
   * would drop to the page's body: reached from the keyboard, it goes to
   * the message input, to type on; clicked or tapped, to the log, whose
   * newest lines a phone's keyboard would cover.
   */
  showJump(shown) {
    if (!shown && !this.jump.hidden && document.activeElement === this.jump) {
      const typing = this.jump.matches(':focus-visible') && this.h.typeHere?.();
      if (!typing) this.scroller.focus({ preventScroll: true });
    }
    this.jump.hidden = !shown;
  },

  onScroll() {
    // Only the reader scrolling up lets go of the bottom: a scroll event
    // that reports a layout change (the log got shorter) does not.
    const top = this.scroller.scrollTop;
    const resized = this.scroller.clientHeight !== this.lastHeight;
    this.lastHeight = this.scroller.clientHeight;
    // Moved to fit, the log neither lets go of the bottom nor takes it:
    // the resize observer, called after this, keeps a log that follows
    // at its newest line.
    if (!resized && top < this.lastTop) this.stuck = this.atBottom();
    else if (!resized && this.atBottom()) this.stuck = true;
    this.lastTop = top;
    this.updateJump();
    if (this.current && this.scroller.scrollTop < NEAR) this.h.olderWanted(this.current, true);
  },
};
