//! Slow clients against the real `rrstitch-ingest` HTTP function on the GCP emulators:
//! connections that send half a request head, or a head and part of its body, and then stall.
//!
//! With small limits set through the environment (header and body timeouts of 2 s, at most
//! 64 connections) the function must stay responsive while they are held, close every one of
//! them within its timeout (plus a margin), give its file descriptors back, and still exit
//! promptly on SIGTERM while they are open.
//!
//! Each test prints `FIGURE slow_clients.<name>: <value>` lines.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rrstitch_edge::http::{BODY_TIMEOUT_VAR, HEADER_TIMEOUT_VAR, MAX_CONNECTIONS_VAR};
use rrstitch_tests::bins::HttpFunction;
use rrstitch_tests::GcpStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_SECS: u64 = 2;
const BODY_SECS: u64 = 2;
const MAX_CONNECTIONS: usize = 64;
/// How much later than its timeout the server may close a stalled connection.
const MARGIN: Duration = Duration::from_millis(2500);

const HALF_HEAD: &[u8] = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applica";
const HALF_BODY: &[u8] =
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
ce-specversion: 1.0\r\nContent-Length: 1000\r\n\r\n{\"kind\": \"storage#object\", \"name\": \"";

fn figure(name: &str, value: impl std::fmt::Display) {
    println!("FIGURE slow_clients.{name}: {value}");
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn start(stack: &GcpStack, header: u64, body: u64) -> HttpFunction {
    let (header, body, max) = (
        header.to_string(),
        body.to_string(),
        MAX_CONNECTIONS.to_string(),
    );
    HttpFunction::start(
        "rrstitch-ingest",
        &stack.with(&[
            (HEADER_TIMEOUT_VAR, &header),
            (BODY_TIMEOUT_VAR, &body),
            (MAX_CONNECTIONS_VAR, &max),
        ]),
    )
}

fn addr(function: &HttpFunction) -> String {
    function.url.trim_start_matches("http://").to_owned()
}

/// The process's open file descriptors.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Samples `fds(pid)` every 10 ms, keeping the peak, until dropped.
struct FdPeak {
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FdPeak {
    fn start(pid: u32) -> FdPeak {
        let peak = Arc::new(AtomicUsize::new(fds(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(fds(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        FdPeak {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for FdPeak {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `GET /healthz` on a fresh connection that asks to be closed: the status and how long the
/// answer took, or an error after 15 s.
async fn healthz(addr: &str) -> Result<(u16, Duration), String> {
    let start = Instant::now();
    let work = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ')
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: {text:?}"))
    };
    match tokio::time::timeout(Duration::from_secs(15), work).await {
        Ok(Ok(status)) => Ok((status, start.elapsed())),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer in 15 s".into()),
    }
}

/// What happened to one stalled connection.
struct Held {
    /// From its last byte sent to the server closing it; `None` if still open at the limit.
    held: Option<Duration>,
    /// When the server closed it.
    closed_at: Option<Instant>,
    /// What the server sent before closing.
    answer: String,
}

/// Opens a connection, sends `bytes`, and waits (up to `limit`) for the server to close it.
async fn stall(addr: String, bytes: &'static [u8], limit: Duration) -> Held {
    let mut s = match TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => panic!("connecting to {addr}: {e}"),
    };
    if let Err(e) = s.write_all(bytes).await {
        panic!("sending to {addr}: {e}");
    }
    let sent = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((sent + limit).into(), s.read(&mut buf)).await {
            Err(_) => {
                return Held {
                    held: None,
                    closed_at: None,
                    answer: String::from_utf8_lossy(&answer).into_owned(),
                }
            }
            // Closed: a FIN, or a reset if it closed with our bytes unread.
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    Held {
        held: Some(sent.elapsed()),
        closed_at: Some(Instant::now()),
        answer: String::from_utf8_lossy(&answer).into_owned(),
    }
}

/// Starts `heads` half-head and `bodies` half-body stalled connections, each waiting up to
/// `limit` for its close.
fn stall_many(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    heads: usize,
    bodies: usize,
    limit: Duration,
) -> (
    Vec<tokio::task::JoinHandle<Held>>,
    Vec<tokio::task::JoinHandle<Held>>,
) {
    let heads = (0..heads)
        .map(|_| rt.spawn(stall(addr.to_owned(), HALF_HEAD, limit)))
        .collect();
    let bodies = (0..bodies)
        .map(|_| rt.spawn(stall(addr.to_owned(), HALF_BODY, limit)))
        .collect();
    (heads, bodies)
}

async fn all(tasks: Vec<tokio::task::JoinHandle<Held>>) -> Vec<Held> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a stalled client task"));
    }
    out
}

/// The held times of `conns`; panics naming `what` if any was not closed.
fn held_times(what: &str, conns: &[Held], limit: Duration) -> Vec<Duration> {
    let open = conns.iter().filter(|c| c.held.is_none()).count();
    assert_eq!(
        open,
        0,
        "{open} of {} {what} connections still open {limit:?} after stalling",
        conns.len()
    );
    let mut times: Vec<Duration> = conns.iter().filter_map(|c| c.held).collect();
    times.sort();
    times
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

#[test]
fn stalled_connections_are_closed_and_the_function_stays_responsive() {
    let stack = GcpStack::start();
    let ingest = start(&stack, HEADER_SECS, BODY_SECS);
    let addr = addr(&ingest);
    let pid = ingest.group.pid();
    let header = Duration::from_secs(HEADER_SECS);
    let body = Duration::from_secs(BODY_SECS);
    let rt = runtime();

    // Warm up, then count the descriptors a quiet function holds.
    let (status, _) = rt.block_on(healthz(&addr)).expect("healthz answers");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = fds(pid);
    let peak = FdPeak::start(pid);

    // 1. Under the cap: each stalled connection is closed by its own timeout.
    let (heads, bodies) = stall_many(&rt, &addr, 40, 10, header.max(body) + MARGIN + MARGIN);
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = rt
        .block_on(healthz(&addr))
        .expect("healthz answers while 50 connections stall");
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(1),
        "healthz took {took:?} while connections stalled"
    );
    figure("healthz_ms_while_50_stall", took.as_millis());
    let heads = rt.block_on(all(heads));
    let bodies = rt.block_on(all(bodies));
    let head_times = held_times("half-head", &heads, header + MARGIN);
    let body_times = held_times("half-body", &bodies, body + MARGIN);
    let (h_min, h_max) = (head_times[0], head_times[head_times.len() - 1]);
    let (b_min, b_max) = (body_times[0], body_times[body_times.len() - 1]);
    figure("half_head_held_secs_min", secs(h_min));
    figure("half_head_held_secs_max", secs(h_max));
    figure("half_body_held_secs_min", secs(b_min));
    figure("half_body_held_secs_max", secs(b_max));
    assert!(
        h_min >= header - Duration::from_millis(300) && h_max <= header + MARGIN,
        "half-head connections held {h_min:?}..{h_max:?}; the header timeout is {header:?}"
    );
    assert!(
        b_min >= body - Duration::from_millis(300) && b_max <= body + MARGIN,
        "half-body connections held {b_min:?}..{b_max:?}; the body timeout is {body:?}"
    );
    for c in &bodies {
        assert!(
            c.answer.starts_with("HTTP/1.1 408"),
            "a stalled body is answered 408, got {:?}",
            c.answer
        );
    }

    // 2. A flood over the cap: 200 stalled heads and 20 stalled bodies against 64 slots.
    let flood_start = Instant::now();
    let (heads, bodies) = stall_many(&rt, &addr, 200, 20, header.max(body) + MARGIN + MARGIN);
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = rt.block_on(healthz(&addr)).unwrap_or_else(|e| {
        panic!(
            "healthz under a flood of stalled connections: {e}; log:\n{}",
            ingest.group.tail()
        )
    });
    assert_eq!(status, 200);
    figure("healthz_ms_under_flood_of_220", took.as_millis());
    assert!(
        took < header + Duration::from_secs(2),
        "healthz took {took:?} under the flood; the header timeout is {header:?}"
    );
    let heads = rt.block_on(all(heads));
    let bodies = rt.block_on(all(bodies));
    let head_times = held_times("flooding half-head", &heads, header + MARGIN);
    let body_times = held_times("flooding half-body", &bodies, body + MARGIN);
    let all_closed = flood_start.elapsed();
    let displaced = head_times
        .iter()
        .filter(|t| **t < header - Duration::from_millis(300))
        .count();
    figure("flood_all_closed_secs", secs(all_closed));
    figure(
        "flood_half_head_held_secs_max",
        secs(head_times[head_times.len() - 1]),
    );
    figure("flood_half_head_displaced_at_cap", displaced);
    figure(
        "flood_half_body_held_secs_max",
        secs(body_times[body_times.len() - 1]),
    );
    assert!(
        head_times[head_times.len() - 1] <= header + MARGIN,
        "{:?}",
        head_times.last()
    );
    assert!(
        body_times[body_times.len() - 1] <= body + MARGIN,
        "{:?}",
        body_times.last()
    );
    let answered_408 = bodies
        .iter()
        .filter(|c| c.answer.starts_with("HTTP/1.1 408"))
        .count();
    assert_eq!(answered_408, bodies.len(), "stalled bodies answered 408");
    // At most 64 connections were open at once: the other 156 waited in the kernel's
    // backlog, or displaced an older stalled connection.
    assert!(
        displaced >= 200 + 20 - MAX_CONNECTIONS - 20,
        "only {displaced} of 200 stalled heads were displaced at the cap"
    );

    // 3. Descriptors: bounded by the cap while held, given back after.
    std::thread::sleep(Duration::from_millis(500));
    let fds_peak = peak.peak();
    drop(peak);
    let fds_after = fds(pid);
    figure("fds_before", fds_before);
    figure("fds_peak", fds_peak);
    figure("fds_after", fds_after);
    assert!(
        fds_peak <= fds_before + MAX_CONNECTIONS + 8,
        "{fds_peak} descriptors open at the peak; {fds_before} before, cap {MAX_CONNECTIONS}"
    );
    assert!(
        fds_peak >= fds_before + 40,
        "the stalled connections were never open at once ({fds_peak} at the peak)"
    );
    assert!(
        fds_after <= fds_before + 2,
        "{fds_after} descriptors open after the stalled connections closed; {fds_before} before"
    );

    // Still serving.
    let (status, _) = rt.block_on(healthz(&addr)).expect("healthz answers after");
    assert_eq!(status, 200);
}

#[test]
fn sigterm_exits_promptly_with_stalled_connections_open() {
    let stack = GcpStack::start();
    // Timeouts far longer than the shutdown: only the shutdown itself may close them.
    let mut ingest = start(&stack, 60, 60);
    let addr = addr(&ingest);
    let pid = ingest.group.pid();
    let rt = runtime();

    let (heads, bodies) = stall_many(&rt, &addr, 30, 10, Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(500));
    let (status, _) = rt.block_on(healthz(&addr)).expect("healthz answers");
    assert_eq!(status, 200);

    let term = Instant::now();
    // SAFETY: kill(2) on the child's own pid.
    assert_eq!(
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) },
        0,
        "SIGTERM to {pid}"
    );
    let mut exited = None;
    while term.elapsed() < Duration::from_secs(12) {
        if ingest.group.exited() {
            exited = Some(term.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exited = exited.unwrap_or_else(|| {
        panic!(
            "rrstitch-ingest still running 12 s after SIGTERM; log:\n{}",
            ingest.group.tail()
        )
    });
    let status = ingest.group.wait();
    figure("sigterm_exit_secs", secs(exited));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        ingest.group.tail()
    );
    assert!(
        exited < Duration::from_secs(10),
        "exited {exited:?} after SIGTERM"
    );

    let heads = rt.block_on(all(heads));
    let bodies = rt.block_on(all(bodies));
    // Stalled heads have no request in flight: they close as soon as the drain starts.
    // Stalled bodies are requests in flight: they get the shutdown grace, then are closed.
    let after_term = |what: &str, conns: &[Held]| -> Duration {
        conns
            .iter()
            .map(|c| match c.closed_at {
                Some(at) => at.saturating_duration_since(term),
                None => panic!("a stalled {what} connection outlived the process"),
            })
            .max()
            .unwrap_or_default()
    };
    let head_closed = after_term("half-head", &heads);
    let body_closed = after_term("half-body", &bodies);
    figure("sigterm_half_head_closed_secs_after", secs(head_closed));
    figure("sigterm_half_body_closed_secs_after", secs(body_closed));
    assert!(
        head_closed < Duration::from_secs(1),
        "stalled heads closed {head_closed:?} after SIGTERM: they have no request to finish"
    );
    assert!(body_closed <= exited, "{body_closed:?} > {exited:?}");
    let log = std::fs::read_to_string(&ingest.group.log).unwrap_or_default();
    assert!(log.contains("draining connections"), "log:\n{log}");
}
