//! A TCP proxy that delays every byte by a fixed time in each direction, put
//! between the runtime and Azurite so that a Blob Storage call costs what it
//! costs across an Azure region (milliseconds), not Azurite's loopback
//! microseconds.
//!
//! Each direction of a connection has a reader that stamps every chunk with
//! its due time and a writer that sends it then: a round trip gains twice the
//! one-way delay, and throughput is not limited (chunks in flight overlap).
//! Bounded: at most [`MAX_CONNECTIONS`] connections at once, and each
//! direction holds at most [`MAX_CHUNKS_IN_FLIGHT`] chunks.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// Connections served at once; more wait for one to close.
pub const MAX_CONNECTIONS: usize = 256;
/// Chunks one direction holds while they wait out the delay.
pub const MAX_CHUNKS_IN_FLIGHT: usize = 1024;

/// A running proxy; stops accepting when dropped.
pub struct DelayProxy {
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl DelayProxy {
    /// Forward 127.0.0.1:`port` to 127.0.0.1:`upstream`, delaying each
    /// direction by `one_way`.
    pub fn start(upstream: u16, one_way: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let stopping = stop.clone();
        thread::Builder::new()
            .name("delay-proxy".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    while open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                        thread::sleep(Duration::from_millis(1));
                    }
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    open.fetch_add(1, Ordering::Relaxed);
                    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone())
                    else {
                        open.fetch_sub(1, Ordering::Relaxed);
                        continue;
                    };
                    let done = Arc::new(AtomicUsize::new(0));
                    for (from, to) in [(client, server2), (server, client2)] {
                        let (open, done) = (open.clone(), done.clone());
                        let _ = thread::Builder::new()
                            .name("delay-pipe".into())
                            .spawn(move || {
                                pipe(from, to, one_way);
                                // The second direction to finish frees the slot.
                                if done.fetch_add(1, Ordering::Relaxed) == 1 {
                                    open.fetch_sub(1, Ordering::Relaxed);
                                }
                            });
                    }
                }
            })?;
        Ok(Self { port, stop })
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copy `from` to `to`, each chunk `delay` after it was read; then close
/// `to`'s write side.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (sender, receiver) = mpsc::sync_channel::<(Instant, Vec<u8>)>(MAX_CHUNKS_IN_FLIGHT);
    let writer = thread::Builder::new()
        .name("delay-write".into())
        .spawn(move || {
            for (due, chunk) in receiver {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                if to.write_all(&chunk).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if sender
                    .send((Instant::now() + delay, buffer[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(sender);
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_trip_through_the_proxy_gains_twice_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap().port();
        thread::spawn(move || {
            let (mut conn, _) = echo.accept().unwrap();
            let mut buf = [0u8; 16];
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let proxy = DelayProxy::start(upstream, Duration::from_millis(25)).unwrap();
        let mut conn = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
        let started = Instant::now();
        conn.write_all(b"ping").unwrap();
        let mut reply = [0u8; 4];
        conn.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ping");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
