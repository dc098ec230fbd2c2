//! `chatclient`: a terminal client for chatserver.
//!
//! Files, one job each: `cli` (flags), `input` (what a typed line means),
//! `render` (how a line looks), `session` (what the user sees, over the
//! protocol core `chatproto::Client`; no I/O), `reconnect` (when to try
//! again), `net` (sockets and the run loop), `tls` (TLS settings and
//! certificate errors), `console` (stdin, stdout and line editing),
//! `error` (why it stops, exit codes).
#![forbid(unsafe_code)]

mod cli;
mod console;
mod error;
mod input;
mod net;
mod reconnect;
mod render;
mod session;
mod tls;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::console::{Console, Look};
use crate::error::{code, fail};
use crate::net::{Clock, Config, Outcome};
use crate::reconnect::{random_u64, Backoff, MAX_DELAY};
use crate::session::Session;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    // Before anything else: a --ca-cert that cannot be read is a bad
    // command line, and the same settings serve every reconnect.
    let tls = if args.use_tls() {
        match tls::Tls::new(&args.addr.host_port, args.ca_cert.as_deref()) {
            Ok(tls) => Some(tls),
            Err(e) => return fail(&e, e.exit_code()),
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
    };
    // Message ids differ between runs, so a resumed session never takes a
    // new message for an old one.
    let id_prefix = format!("{:08x}-", random_u64() as u32);
    let mut session = Session::new(&args.nick, &args.rooms(), &id_prefix, args.max_frame_bytes);
    let clock = Clock::start();

    let mut held = Vec::new();
    let link = match runtime.block_on(net::dial(&config, &clock, &mut session, &mut held)) {
        Ok(link) => link,
        Err(e) => return fail(&e, e.exit_code()),
    };

    let look = Look::detect();
    let mut console = match Console::start(look, &session.prompt()) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot read the terminal: {e}"), code::DROPPED),
    };
    let outcome = runtime.block_on(net::run(
        &config,
        &clock,
        &mut session,
        &mut console,
        link,
        held,
    ));
    console.finish();
    // Threads still blocked on stdin must not hold the exit up.
    runtime.shutdown_background();

    match outcome {
        Outcome::Left => ExitCode::from(code::OK),
        Outcome::Interrupted => ExitCode::from(code::INTERRUPTED),
        Outcome::Lost(why) => fail(why, code::DROPPED),
        Outcome::Refused(e) => fail(&e, e.exit_code()),
    }
}
