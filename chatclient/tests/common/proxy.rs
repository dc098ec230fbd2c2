//! A TCP proxy between chatclient and chatserver that a test controls: it
//! lets each connection through only when told to, can hold back what the
//! server sends, and can cut the connection (both sockets shut down) at a
//! chosen moment, losing whatever was in flight.
//!
//! Plain std threads on 127.0.0.1:0. Each wait is bounded by
//! [`WAIT`](super::WAIT); nothing sleeps.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use super::WAIT;

/// The most connections one proxy passes on (the first and its reconnects).
const MAX_CONNECTIONS: usize = 8;

/// A running proxy. Its threads end with the test process.
pub struct Proxy {
    /// `IP:PORT` for chatclient to connect to.
    pub addr: String,
    gate: Sender<()>,
    /// Both sockets of the connection being passed on, to cut it.
    current: Arc<Mutex<Option<(TcpStream, TcpStream)>>>,
    /// Held by the test to stop bytes from the server reaching the client.
    valve: Arc<Mutex<()>>,
}

impl Proxy {
    /// Listen on 127.0.0.1:0 and pass connections on to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let (gate, gate_rx) = mpsc::channel::<()>();
        let current = Arc::new(Mutex::new(None));
        let valve = Arc::new(Mutex::new(()));
        let upstream = upstream.to_owned();
        let (cur, val) = (current.clone(), valve.clone());
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
                std::thread::spawn(move || pipe(d2, u2, None));
                let v = val.clone();
                std::thread::spawn(move || pipe(up, down, Some(v)));
            }
        });
        Proxy {
            addr,
            gate,
            current,
            valve,
        }
    }

    /// Let the next connection (waiting or still to come) through.
    pub fn allow(&self) {
        self.gate.send(()).expect("the proxy is running");
    }

    /// Until the guard is dropped, what the server sends waits in the
    /// proxy; what the client sends still goes through.
    pub fn freeze(&self) -> MutexGuard<'_, ()> {
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Copy `from` to `to` until either side ends; with a valve, wait for it
/// before each write.
fn pipe(mut from: TcpStream, mut to: TcpStream, valve: Option<Arc<Mutex<()>>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _open = valve.as_deref().map(lock);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
