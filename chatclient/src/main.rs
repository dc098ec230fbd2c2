//! `chatclient`: a terminal client for chatserver.
//!
//! Files, one job each: `cli` (flags), `input` (what a typed line means),
//! `render` (how a line looks), `session` (what the user sees, over the
//! protocol core `chatproto::Client`; no I/O), `reconnect` (when to try
//! again, and which address), `net` (sockets and the run loop), `tls`
//! (TLS settings and certificate errors), `ui` (what the run loop talks
//! to on the user's side), `console` (the line mode: stdin, stdout and
//! line editing), `tui` (the full-screen client), `error` (why it stops,
//! exit codes); for the line mode (`--json`, `--verbatim`, `--stay`):
//! `ledger` (each input line's outcome, in order), `json` (the JSON
//! lines), `stop` (SIGINT and SIGTERM).
#![forbid(unsafe_code)]

mod cli;
mod console;
mod error;
mod input;
mod json;
mod ledger;
mod net;
mod reconnect;
mod render;
mod session;
mod stop;
mod tls;
mod tui;
mod ui;

use std::process::ExitCode;
use std::time::Duration;

use crate::console::{Console, Look};
use crate::error::{code, fail};
use crate::net::{Clock, Config, Outcome};
use crate::reconnect::{random_u64, Backoff, MAX_DELAY};
use crate::session::{Mode, Session};
use crate::tui::Tui;

/// `why`, naming `CHATCLIENT_CA_CERT` beside `--ca-cert` when the path
/// came from that variable (as clap's own errors name a variable, see
/// `cli`): whoever set it may not know it stands for the flag.
fn ca_cert_named(why: String) -> String {
    let on_command_line = std::env::args_os()
        .skip(1)
        .any(|a| a == "--ca-cert" || a.to_string_lossy().starts_with("--ca-cert="));
    if on_command_line || std::env::var_os("CHATCLIENT_CA_CERT").is_none() {
        return why;
    }
    why.replacen("--ca-cert", "--ca-cert (from CHATCLIENT_CA_CERT)", 1)
}

fn main() -> ExitCode {
    let args = cli::Args::parse_env_tidy();
    // Before anything else: a --ca-cert that cannot be read is a bad
    // command line, and the same settings serve every reconnect.
    let tls = if args.use_tls() {
        match tls::Tls::new(&args.addr.host_port, args.ca_cert.as_deref()) {
            Ok(tls) => Some(tls),
            Err(e) => return fail(ca_cert_named(e.to_string()), e.exit_code()),
        }
    } else {
        None
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}"), code::DROPPED),
    };
    let config = Config {
        addr: args.addr.host_port.clone(),
        tls,
        timeout: args.timeout,
        max_frame_bytes: args.max_frame_bytes,
        backoff: Backoff {
            min: Duration::from_millis(args.reconnect_min_ms),
            max: MAX_DELAY,
            attempts: args.reconnect_attempts,
        },
        first: args.first_addr,
    };
    // Message ids differ between runs, so a resumed session never takes a
    // new message for an old one.
    let id_prefix = format!("{:08x}-", random_u64() as u32);
    let mut session = Session::new(&args.nick, &args.rooms(), &id_prefix, args.max_frame_bytes);
    session.set_keepalive(args.ping_after, args.dead_after);
    let look = Look {
        json: args.json,
        verbatim: args.verbatim,
        ..Look::detect()
    };
    session.set_mode(Mode {
        verbatim: args.verbatim,
        stay: args.stay,
        echo_frames: args.json,
        wait_for_rooms: !std::io::IsTerminal::is_terminal(&std::io::stdin()),
        hold_departures: look.interactive && !args.json,
    });
    // Full-screen where a person sits at a terminal; lines for pipes,
    // scripts and bots.
    let full_screen = look.interactive
        && !(args.plain || args.json || args.verbatim || args.stay)
        && !dumb_terminal();
    if full_screen {
        // The screen files every line under its room.
        session.name_every_room();
    }
    // With --stay the end of input does not end the client: SIGINT and
    // SIGTERM do (caught from the start, so none is lost). In a terminal
    // (full-screen, or line editing, which turns echo off) they leave as
    // /quit does, giving the terminal back.
    let mut stop = if args.stay || look.interactive {
        match runtime.block_on(async { stop::Stop::on_signals() }) {
            Ok(stop) => stop,
            Err(e) => return fail(format!("cannot catch signals: {e}"), code::DROPPED),
        }
    } else {
        stop::Stop::never()
    };
    let clock = Clock::start();

    let mut held = Vec::new();
    // A signal while connecting (which may take --timeout at each address
    // given) leaves at once, as /quit would: nothing was sent yet.
    let dialed = runtime.block_on(async {
        tokio::select! {
            dialed = net::dial(&config, &clock, &mut session, &mut held) => Some(dialed),
            () = stop.recv() => None,
        }
    });
    let link = match dialed {
        Some(Ok(link)) => link,
        Some(Err(e)) => {
            // What the pass said of each address it went past (with
            // --json, each node's `error` frame too), then the failure.
            if !held.is_empty() {
                let plain = Look {
                    interactive: false,
                    ..look
                };
                if let Ok(console) = Console::start(plain, "", args.max_frame_bytes) {
                    runtime.block_on(net::show_held(&console, held));
                    console.finish();
                }
            }
            return fail(&e, e.exit_code());
        }
        None => {
            runtime.shutdown_background();
            return ExitCode::from(code::OK);
        }
    };

    let outcome = if full_screen {
        let options = tui::Options {
            color: look.style.color,
            bell: args.bell,
        };
        let mut screen = match Tui::start(options, &session, stop) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot use the terminal: {e}"), code::DROPPED),
        };
        let outcome = runtime.block_on(net::run(
            &config,
            &clock,
            &mut session,
            &mut screen,
            link,
            held,
        ));
        screen.finish(&session);
        outcome
    } else {
        let mut console = match Console::start(look, &session.prompt(), args.max_frame_bytes) {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot read the terminal: {e}"), code::DROPPED),
        };
        console.stop = stop;
        let outcome = runtime.block_on(net::run(
            &config,
            &clock,
            &mut session,
            &mut console,
            link,
            held,
        ));
        console.finish();
        if !args.json {
            // Named, as the full-screen client names them: the lines said
            // nothing of it (`--json` reported each line `unconfirmed`).
            let pending: Vec<_> = session.pending().collect();
            let each = pending
                .iter()
                .map(|p| (p.room, p.to, p.text, p.may_have_arrived));
            if let Some(report) = session::unconfirmed_report("sent", each) {
                use std::io::Write;
                let _ = std::io::stderr().lock().write_all(report.as_bytes());
            }
        }
        outcome
    };
    // Threads still blocked on stdin must not hold the exit up.
    runtime.shutdown_background();

    match outcome {
        Outcome::Left => {
            let mut why = Vec::new();
            // Refused messages were not delivered; unconfirmed ones may
            // have been, and are counted apart, as are the commands that
            // failed (mistyped, a room refused): never meant to be sent.
            let unsure = session.lines_unconfirmed();
            let commands = session.commands_failed();
            let refused = session.lines_failed() - unsure - commands;
            for (n, what) in [
                (refused, "not delivered"),
                (
                    unsure,
                    "not confirmed: {it} may or may not have been delivered",
                ),
            ] {
                if n == 0 {
                    continue;
                }
                let were = if n == 1 { "was" } else { "were" };
                let what = what.replace("{it}", if n == 1 { "it" } else { "they" });
                why.push(if full_screen {
                    // The screen counts room switches (Ctrl-N) as lines
                    // too: a total would count more lines than were typed.
                    let lines = if n == 1 { "line" } else { "lines" };
                    format!("{n} typed {lines} {were} {what}")
                } else {
                    format!("{n} of {} input lines {were} {what}", session.lines_read())
                });
            }
            if commands > 0 {
                let failed = if commands == 1 { "command" } else { "commands" };
                why.push(format!("{commands} {failed} failed"));
            }
            // A script that names its rooms means its lines for them: a
            // room the server kept it out of fails the run as a refused
            // line does (on the screen, a person saw it refused).
            let refused: Vec<String> = match full_screen {
                true => Vec::new(),
                false => session
                    .rooms_refused()
                    .iter()
                    .map(|r| format!("#{r}"))
                    .collect(),
            };
            if !refused.is_empty() {
                why.push(format!(
                    "{} not entered: refused by the server",
                    refused.join(", ")
                ));
            }
            match why.is_empty() {
                true => ExitCode::from(code::OK),
                false => fail(why.join("; "), code::UNDELIVERED),
            }
        }
        Outcome::Interrupted => ExitCode::from(code::INTERRUPTED),
        Outcome::Lost(why) => fail(why, code::DROPPED),
        Outcome::ResumedElsewhere => fail(
            "resumed_elsewhere: the session was resumed on another connection \
             (a client that had its token), which continues it; not reconnecting",
            code::RESUMED_ELSEWHERE,
        ),
        Outcome::Refused(e) => fail(&e, e.exit_code()),
    }
}

/// `TERM=dumb` (or, on Unix, no `TERM`): a terminal that cannot move the
/// cursor.
fn dumb_terminal() -> bool {
    match std::env::var_os("TERM") {
        Some(term) => term.is_empty() || term == "dumb",
        None => cfg!(unix),
    }
}
