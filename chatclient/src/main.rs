//! `chatclient`: a terminal client for chatserver.
//!
//! Files, one job each: `cli` (flags), `input` (what a typed line means),
//! `render` (how an event looks), `session` (the client's state, no I/O),
//! `net` (the socket loop), `console` (stdin, stdout and line editing),
//! `error` (why it stops, exit codes).
#![forbid(unsafe_code)]

mod cli;
mod console;
mod error;
mod input;
mod net;
mod render;
mod session;

use std::process::ExitCode;

use clap::Parser;

use crate::console::{Console, Look};
use crate::error::{code, fail};
use crate::net::Outcome;
use crate::session::End;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}"), code::DROPPED),
    };

    let joined = match runtime.block_on(net::join(
        &args.addr,
        &args.nick,
        args.timeout,
        args.max_frame_bytes,
    )) {
        Ok(joined) => joined,
        Err(e) => return fail(&e, e.exit_code()),
    };

    let look = Look::detect();
    let mut console = match Console::start(look, &joined.nick) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot read the terminal: {e}"), code::DROPPED),
    };
    let outcome = runtime.block_on(net::run(joined, &mut console, args.max_frame_bytes));
    console.finish();
    // Threads still blocked on stdin must not hold the exit up.
    runtime.shutdown_background();

    match outcome {
        Outcome::Ended(End::Left) => ExitCode::from(code::OK),
        Outcome::Ended(End::Dropped(None)) => {
            fail("the server closed the connection", code::DROPPED)
        }
        Outcome::Ended(End::Dropped(Some((err, message)))) => fail(
            format!(
                "the server ended the session: {err}: {}",
                chatproto::escape_control(&message)
            ),
            code::DROPPED,
        ),
        Outcome::Lost(why) => fail(why, code::DROPPED),
        Outcome::Interrupted => ExitCode::from(code::INTERRUPTED),
    }
}
