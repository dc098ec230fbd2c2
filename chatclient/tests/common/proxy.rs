//! A TCP proxy between chatclient and chatserver that a test controls: it
//! lets each connection through only when told to, can hold back what the
//! server sends, and can cut the connection (both sockets shut down) at a
//! chosen moment, losing whatever was in flight, or break the framing
//! right after what the server sent.
//!
//! Plain std threads on 127.0.0.1:0. Each wait is bounded by
//! [`WAIT`](super::WAIT); nothing sleeps.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::WAIT;

/// The most connections one proxy passes on (the first and its reconnects).
const MAX_CONNECTIONS: usize = 32;

/// A running proxy. Its threads end with the test process.
pub struct Proxy {
    /// `IP:PORT` for chatclient to connect to.
    pub addr: String,
    gate: Sender<()>,
    /// Both sockets of the connection being passed on, to cut it.
    current: Arc<Mutex<Option<(TcpStream, TcpStream)>>>,
    /// Held by the test to stop bytes from the server reaching the client;
    /// what it holds is written right after the next bytes from the server,
    /// in the same write.
    valve: Arc<Mutex<Vec<u8>>>,
    /// Set: the end of the client's side is not passed on to the server.
    hold: Arc<AtomicBool>,
}

impl Proxy {
    /// Listen on 127.0.0.1:0 and pass connections on to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let (gate, gate_rx) = mpsc::channel::<()>();
        let current = Arc::new(Mutex::new(None));
        let valve = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let hold = Arc::new(AtomicBool::new(false));
        let (cur, val, held) = (current.clone(), valve.clone(), hold.clone());
        std::thread::spawn(move || {
            for down in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(down) = down else { return };
                // The client is connected; it reaches the server only when
                // the test says so.
                if gate_rx.recv_timeout(WAIT).is_err() {
                    return;
                }
                let Ok(up) = TcpStream::connect(&upstream) else {
                    return;
                };
                let _ = up.set_nodelay(true);
                let _ = down.set_nodelay(true);
                let pair = (down.try_clone().unwrap(), up.try_clone().unwrap());
                *lock(&cur) = Some(pair);
                let (d2, u2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                let h = held.clone();
                std::thread::spawn(move || pipe(d2, u2, None, Some(h)));
                let v = val.clone();
                std::thread::spawn(move || pipe(up, down, Some(v), None));
            }
        });
        Proxy {
            addr,
            gate,
            current,
            valve,
            hold,
        }
    }

    /// Let the next connection (waiting or still to come) through.
    pub fn allow(&self) {
        self.gate.send(()).expect("the proxy is running");
    }

    /// Until the guard is dropped, what the server sends waits in the
    /// proxy; what the client sends still goes through. Bytes put in the
    /// guard reach the client right after the next bytes from the server,
    /// in one write with them.
    pub fn freeze(&self) -> MutexGuard<'_, Vec<u8>> {
        lock(&self.valve)
    }

    /// Cut the current connection: shut down both its sockets. Bytes on
    /// their way, in either direction, are lost.
    pub fn cut(&self) {
        let (down, up) = lock(&self.current).take().expect("a connection to cut");
        let _ = down.shutdown(Shutdown::Both);
        let _ = up.shutdown(Shutdown::Both);
    }
}

impl Proxy {
    /// Cut the client's side of the current connection only: the server's
    /// stays open, as after a cable pulled out (the server does not know
    /// the client is gone). Closing the socket returned ends it. (The
    /// proxy leaves later connections' server sides open too.)
    pub fn half_open(&self) -> TcpStream {
        let (down, up) = lock(&self.current).take().expect("a connection to cut");
        self.hold.store(true, Ordering::SeqCst);
        let _ = down.shutdown(Shutdown::Both);
        up
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copy `from` to `to` until either side ends; with a valve, wait for it
/// before each write; with `hold` set by then, leave `to` open.
fn pipe(
    mut from: TcpStream,
    mut to: TcpStream,
    valve: Option<Arc<Mutex<Vec<u8>>>>,
    hold: Option<Arc<AtomicBool>>,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut open = valve.as_deref().map(lock);
        let written = match open.as_deref_mut() {
            Some(tail) if !tail.is_empty() => {
                let mut both = buf[..n].to_vec();
                both.append(tail);
                to.write_all(&both)
            }
            _ => to.write_all(&buf[..n]),
        };
        if written.is_err() {
            break;
        }
    }
    if !hold.is_some_and(|h| h.load(Ordering::SeqCst)) {
        let _ = to.shutdown(Shutdown::Write);
    }
}
