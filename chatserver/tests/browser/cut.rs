//! A cut room's log (`messages.js` driven directly, as in
//! `scrolled_up.rs`): what goes where its cut line is, and what a log of
//! notes alone keeps.

use serde_json::{json, Value};

use crate::common::Server;
use crate::webdriver::{Harness, Page};

/// Sets up a `MessageView` (`v`) over a short scroller, its room `a`
/// (`r`) shown, `msg(seq, extra)` to give it a message, `texts()` for
/// the text of each line of its log, and `out` to return; `cutIt()`
/// fills the room, followed, scrolls half way up and floods it until it
/// is cut (as `scrolled_up.rs`'s `CUT_JS`). Each test's script follows,
/// then `EPILOGUE`.
const PRELUDE: &str = "return (async () => {
  const { MessageView, MAX_KEPT } = await import('/messages.js');
  const scroller = document.createElement('div');
  scroller.style.cssText = 'position: fixed; top: 0; left: 0; width: 600px; height: 300px; overflow-y: auto; overflow-anchor: none; background: white; z-index: 9';
  const jump = document.createElement('button');
  document.body.append(scroller, jump);
  const out = { maxKept: MAX_KEPT, asked: 0 };
  const v = new MessageView(scroller, jump, {
    olderWanted: () => { out.asked += 1; },
    trimmed: () => {},
    notesTrimmed: () => {},
  });
  const r = v.addRoom('a');
  v.show('a');
  const msg = (seq, extra = {}) => v.message({ room: 'a', seq, ts: 1, from: 'bob', to: [], text: `line ${seq}`, replay: false, mine: false, live: true, ...extra }, 'erin');
  const texts = () => [...r.events.children].map((li) => (li.classList.contains('cut') ? 'CUT' : li.querySelector('.text').textContent));
  let seq = 1;
  const cutIt = () => {
    for (; seq <= 3000; seq++) msg(seq);
    v.toBottom();
    scroller.scrollTop = (scroller.scrollHeight - scroller.clientHeight) / 2;
    scroller.dispatchEvent(new Event('scroll'));
    while (!r.cut && seq < 20000) msg(seq++);
  };
";

const EPILOGUE: &str = "
  scroller.remove();
  jump.remove();
  return out;
})();";

async fn run(page: &Page, script: &str) -> Value {
    page.js(&format!("{PRELUDE}{script}{EPILOGUE}"), vec![])
        .await
}

/// Runs `script` (see [`PRELUDE`]) in a page of its own.
fn drive(name: &str, script: &str) -> Option<Value> {
    let h = Harness::start(name)?;
    let server = Server::start(&[]);
    Some(h.block_on(async {
        let page = Page::join(&h, server.addr(), "erin", (1000, 700)).await;
        let v = run(&page, script).await;
        page.close().await;
        v
    }))
}

/// The room's history begins anew while it is cut (a new epoch): the
/// cut line says its newer messages went with the old history, and no
/// line is left marked cut without a way to the newest; a line erin
/// sent, shown below it, is from before, as the lines above it are. Before, the
/// cut line stayed, its button gone, saying newer messages "are not
/// kept while you read this far back".
#[test]
fn a_history_begun_anew_while_cut_leaves_no_cut_line_without_its_button() {
    let Some(v) = drive(
        "a_history_begun_anew_while_cut",
        "cutIt();
  const line = r.cut.line;
  msg(seq, { from: 'erin', text: 'my own line', mine: true, sentHere: true });
  const mine = r.events.lastElementChild;
  const mark = v.note('a', 'began anew', 'notice gap');
  v.newEpoch('a', mark);
  msg(1);
  out.cuts = [...r.events.querySelectorAll('li.cut')].map((li) => li.querySelector('button.load-newest') !== null);
  out.old = line.isConnected ? line.querySelector('.text').textContent : null;
  out.marked = r.section.classList.contains('cut');
  out.end = texts().slice(-4);
  out.mineOld = mine.classList.contains('old');",
    ) else {
        return;
    };
    assert_eq!(v["cuts"], json!([]), "a cut line is left: {v}");
    assert_eq!(v["marked"], json!(false), "{v}");
    assert_eq!(
        v["old"],
        json!("newer messages of #a were not kept while you read this far back, and its history began anew without them"),
        "{v}"
    );
    assert_eq!(
        v["end"],
        json!([v["old"], "my own line", "began anew", "line 1"]),
        "the new history not below the line that says so: {v}"
    );
    assert_eq!(
        v["mineOld"],
        json!(true),
        "a line sent, shown below the cut line, not marked as from before: {v}"
    );
}

/// Notes said while the room is cut stay below its cut line when a
/// later cut takes more of its newest lines (the reader scrolled a
/// little further down, so the oldest lines cannot make all the room).
/// Before, the cut line moved to the bottom, below the notes left.
#[test]
fn notes_said_while_cut_stay_below_the_cut_line() {
    let Some(v) = drive(
        "notes_said_while_cut_stay_below",
        "cutIt();
  scroller.scrollTop += 2000;
  scroller.dispatchEvent(new Event('scroll'));
  const n = MAX_KEPT - r.events.childElementCount + 1;
  for (let i = 0; i < n; i++) v.note('a', `note ${i}`, 'notice');
  const t = texts();
  out.notes = t.filter((s) => s.startsWith('note ')).length;
  out.cuts = t.filter((s) => s === 'CUT').length;
  out.below = t.slice(t.indexOf('CUT') + 1).filter((s) => s.startsWith('note ')).length;
  out.count = t.length;",
    ) else {
        return;
    };
    assert!(v["count"].as_u64() <= v["maxKept"].as_u64(), "{v}");
    assert_eq!(v["cuts"], json!(1), "{v}");
    assert!(v["notes"].as_u64() > Some(0), "no note left to check: {v}");
    assert_eq!(v["below"], v["notes"], "notes above the cut line: {v}");
}

/// A line erin sent, whose echo comes once the room is cut (its
/// sending line showed it below the log until then): shown below the
/// cut line, not counted as new. Before, it was counted, not shown: her
/// line was nowhere.
#[test]
fn a_line_sent_and_echoed_once_cut_is_shown() {
    let Some(v) = drive(
        "a_line_sent_and_echoed_once_cut",
        "const p = { id: 'p1', room: 'a', to: [], text: 'my own line' };
  v.pending(p, 'erin');
  cutIt();
  const news = v.newBelow;
  v.newBelow = false;
  v.acked(p);
  out.shown = msg(seq, { from: 'erin', text: 'my own line', mine: true, sentHere: true, id: 'p1' });
  out.again = msg(seq, { from: 'erin', text: 'my own line', mine: true, sentHere: false, id: 'p1' });
  const t = texts();
  out.below = t.slice(t.indexOf('CUT') + 1);
  out.news = v.newBelow;
  out.cut = r.cut !== null;",
    ) else {
        return;
    };
    assert_eq!(v["shown"], json!(true), "{v}");
    assert_eq!(v["again"], json!(false), "a copy shown again: {v}");
    assert_eq!(v["below"], json!(["my own line"]), "{v}");
    assert_eq!(v["news"], json!(false), "counted as new: {v}");
    assert_eq!(v["cut"], json!(true), "{v}");
}

/// A log of notes alone, read scrolled up, past MAX_KEPT: within its
/// bound, and not cut (no message went), so a message that comes, and
/// a page of older ones, are shown. Before, it was cut "after seq 0":
/// every message that came was counted, not shown, older pages too.
#[test]
fn a_log_of_notes_alone_past_its_bound_is_not_cut() {
    let Some(v) = drive(
        "a_log_of_notes_alone_past_its_bound",
        "for (let i = 0; i < 1000; i++) v.note('a', `note ${i}`, 'notice');
  v.toBottom();
  scroller.scrollTop = (scroller.scrollHeight - scroller.clientHeight) / 2;
  scroller.dispatchEvent(new Event('scroll'));
  out.most = 0;
  for (let i = 1000; i < 9000; i++) {
    v.note('a', `note ${i}`, 'notice');
    out.most = Math.max(out.most, r.events.childElementCount);
  }
  out.cut = r.cut !== null;
  out.shown = msg(100);
  v.above('a', () => { for (let s = 50; s < 100; s++) msg(s); });
  out.seqs = [...r.seqs.keys()].length;
  out.last = texts().at(-1);",
    ) else {
        return;
    };
    assert!(v["most"].as_u64() <= v["maxKept"].as_u64(), "{v}");
    assert_eq!(v["cut"], json!(false), "{v}");
    assert_eq!(v["shown"], json!(true), "{v}");
    assert_eq!(v["last"], json!("line 100"), "{v}");
    assert_eq!(v["seqs"], json!(51), "the older page not shown: {v}");
}

/// A log of notes read from its top, cut by the first message that came
/// (no message kept above its cut line), then cut again by more notes:
/// a page of the messages before that one (Load older messages) shows,
/// above the cut line. Before, the second cut took the room as cut
/// "after seq 0" (the page was counted as new, not shown), and a page
/// in a cut log with no message kept went below its cut line.
#[test]
fn a_cut_log_with_no_message_kept_shows_older_pages_above_its_cut_line() {
    let Some(v) = drive(
        "a_cut_log_with_no_message_kept",
        "for (let i = 0; i < 1500; i++) v.note('a', `note ${i}`, 'notice');
  v.toBottom();
  scroller.scrollTop = 0;
  scroller.dispatchEvent(new Event('scroll'));
  let i = 1500;
  for (; i < 8100; i++) v.note('a', `note ${i}`, 'notice');
  while (r.events.childElementCount < MAX_KEPT && i < 20000) v.note('a', `note ${i++}`, 'notice');
  msg(100);
  out.firstCut = r.cut?.after ?? null;
  const cut = r.cut?.line;
  // Notes below the cut line until another cut takes them all.
  v.note('a', `note ${i++}`, 'notice');
  while (cut && r.cut && r.events.lastElementChild !== cut && i < 20000) v.note('a', `note ${i++}`, 'notice');
  out.secondCut = r.cut?.after ?? null;
  v.above('a', () => { for (let s = 50; s < 100; s++) msg(s); });
  const t = texts();
  out.shown = r.seqs.size;
  out.belowCut = t.slice(t.indexOf('CUT') + 1).filter((s) => s.startsWith('line ')).length;
  out.news = v.newBelow;",
    ) else {
        return;
    };
    assert_eq!(v["firstCut"], json!(99), "{v}");
    assert_eq!(v["secondCut"], json!(99), "{v}");
    assert_eq!(v["shown"], json!(50), "the older page not shown: {v}");
    assert_eq!(
        v["belowCut"],
        json!(0),
        "the older page below the cut line: {v}"
    );
}
