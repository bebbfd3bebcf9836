//! A fault proxy of the tests' own, on 127.0.0.1, between the tools and a test server: it
//! passes HTTP requests through one by one and, at points a seeded generator picks, drops the
//! connection, stalls past the client's timeout, or answers 503. It counts what it passed
//! (requests, response bytes) and can be killed and brought back on the same port, as a
//! server that dies and restarts. Everything it does is bounded: faults by count, stalls by
//! time, and its threads end when it is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::Rng;

/// What the proxy does to a request it picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, then close the connection without an answer.
    Drop,
    /// Hold the request without an answer for the plan's stall, then close.
    Stall,
    /// Answer `503 Slow Down` (as S3 does when it throttles).
    Unavailable,
}

/// Which requests get which fault.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    /// One request in `every` is faulted (0: none).
    pub every: u64,
    pub kinds: Vec<Fault>,
    /// At most this many faults in all.
    pub max_faults: u64,
    pub stall: Duration,
}

impl Plan {
    pub fn none() -> Plan {
        Plan {
            seed: 1,
            every: 0,
            kinds: Vec::new(),
            max_faults: 0,
            stall: Duration::ZERO,
        }
    }
}

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub bytes_down: AtomicU64,
    pub faults: AtomicU64,
    pub drops: AtomicU64,
    pub stalls: AtomicU64,
    pub unavailable: AtomicU64,
    /// GET requests (ranged reads among them), faulted or passed.
    pub gets: AtomicU64,
    /// Faults given to GET requests.
    pub get_faults: AtomicU64,
    /// GETs being passed to the server now, and the most there were at once.
    pub gets_now: AtomicU64,
    pub gets_at_once: AtomicU64,
}

struct Shared {
    upstream: u16,
    plan: Plan,
    rng: Mutex<Rng>,
    stats: Stats,
    stop: AtomicBool,
    down: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 in front of `upstream`.
    pub fn start(upstream: u16, plan: Plan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(Rng::new(plan.seed)),
            plan,
            stats: Stats::default(),
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        serve(listener, Arc::clone(&shared));
        Proxy { port, shared }
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Stop listening and cut every open connection: the server is dead.
    pub fn kill(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        // Wake the accept loop so it drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    /// Listen again on the same port.
    pub fn revive(&self) {
        let l = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the proxy again");
        self.shared.down.store(false, Ordering::SeqCst);
        serve(l, Arc::clone(&self.shared));
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.kill();
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        for c in listener.incoming() {
            if shared.stop.load(Ordering::SeqCst) || shared.down.load(Ordering::SeqCst) {
                break;
            }
            let Ok(c) = c else { continue };
            if let Ok(k) = c.try_clone() {
                shared.conns.lock().unwrap().push(k);
            }
            let s = Arc::clone(&shared);
            std::thread::spawn(move || {
                let _ = connection(c, &s);
            });
        }
    });
}

/// One request: its head (request line and headers) and body.
fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(Some((head, body)))
}

fn connection(c: TcpStream, s: &Shared) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut out = c.try_clone()?;
    let mut r = BufReader::new(c);
    while let Some((head, body)) = read_request(&mut r)? {
        if s.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        s.stats.requests.fetch_add(1, Ordering::SeqCst);
        let method = head.split_whitespace().next().unwrap_or("").to_string();
        // A client cannot know whether a dropped or stalled POST (create or complete an
        // upload) was done, so it does not retry those: faults other than 503 go to requests
        // that are safe to repeat.
        let repeatable = matches!(method.as_str(), "GET" | "HEAD" | "PUT" | "DELETE");
        let get = method == "GET";
        if get {
            s.stats.gets.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(f) = pick(s, repeatable) {
            s.stats.faults.fetch_add(1, Ordering::SeqCst);
            if get {
                s.stats.get_faults.fetch_add(1, Ordering::SeqCst);
            }
            match f {
                Fault::Drop => {
                    s.stats.drops.fetch_add(1, Ordering::SeqCst);
                    let _ = out.shutdown(Shutdown::Both);
                    return Ok(());
                }
                Fault::Stall => {
                    s.stats.stalls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(s.plan.stall);
                    let _ = out.shutdown(Shutdown::Both);
                    return Ok(());
                }
                Fault::Unavailable => {
                    s.stats.unavailable.fetch_add(1, Ordering::SeqCst);
                    let msg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                    write!(
                        out,
                        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{msg}",
                        msg.len()
                    )?;
                    continue;
                }
            }
        }
        // Pass it on, on a connection of its own that the server closes after answering.
        let _counted = get.then(|| GetInFlight::new(&s.stats));
        let mut up = TcpStream::connect(("127.0.0.1", s.upstream))?;
        let head = head
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\r\n");
        write!(up, "{head}\r\nConnection: close\r\n\r\n")?;
        up.write_all(&body)?;
        let mut resp = Vec::new();
        up.read_to_end(&mut resp)?;
        let resp = keep_alive(&resp);
        s.stats
            .bytes_down
            .fetch_add(resp.len() as u64, Ordering::SeqCst);
        out.write_all(&resp)?;
    }
    Ok(())
}

/// One GET being passed on, counted in `gets_now` while it lives.
struct GetInFlight<'a>(&'a Stats);

impl<'a> GetInFlight<'a> {
    fn new(st: &'a Stats) -> Self {
        let now = st.gets_now.fetch_add(1, Ordering::SeqCst) + 1;
        st.gets_at_once.fetch_max(now, Ordering::SeqCst);
        GetInFlight(st)
    }
}

impl Drop for GetInFlight<'_> {
    fn drop(&mut self) {
        self.0.gets_now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server's answer with its `Connection: close` taken out, so the client may send its
/// next request on the same connection (the proxy reads requests one by one).
fn keep_alive(resp: &[u8]) -> Vec<u8> {
    let Some(end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return resp.to_vec();
    };
    let head = String::from_utf8_lossy(&resp[..end]);
    let framed = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("content-length:") || l.starts_with("transfer-encoding:")
    });
    if !framed {
        return resp.to_vec();
    }
    let kept: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    let mut v = kept.join("\r\n").into_bytes();
    v.extend_from_slice(&resp[end..]);
    v
}

fn pick(s: &Shared, repeatable: bool) -> Option<Fault> {
    let p = &s.plan;
    if p.every == 0 || p.kinds.is_empty() {
        return None;
    }
    let mut rng = s.rng.lock().unwrap();
    if rng.below(p.every) != 0 || s.stats.faults.load(Ordering::SeqCst) >= p.max_faults {
        return None;
    }
    let f = p.kinds[rng.below(p.kinds.len() as u64) as usize];
    (repeatable || f == Fault::Unavailable).then_some(f)
}
