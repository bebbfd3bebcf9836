//! Object storage when things go wrong and what reading costs: a server that checks
//! signatures refusing wrong credentials, requests dropped, stalled and answered 503 by the
//! tests' fault proxy and retried to a byte-exact restore, the server dying in the middle of
//! an upload, and the bytes bak-header fetches whatever the size of the set.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::store_support::proxy::{Fault, Plan, Proxy};
use crate::store_support::*;
use crate::util::*;

fn url(bucket: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("s3://{bucket}/{key}"))
}

fn no_secret(o: &Output) {
    assert!(
        !o.stderr.contains(SECRET),
        "printed the secret: {}",
        o.stderr
    );
}

#[test]
fn s3s_fs_round_trips_and_refuses_wrong_credentials() {
    let t = temp_dir("s3s");
    std::fs::create_dir(t.path().join("bkt")).unwrap();
    let Some(srv) = s3s_fs(t.path()) else { return };
    let env = s3s_env(srv.port, SECRET);
    let devs = vec![url("bkt", "one.bak"), url("bkt", "two.bak")];
    let input = data(7 << 20, 41);
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--compress", "zstd", &devs],
        &input,
        &env,
    );
    no_secret(&w);
    assert_eq!(w.code, 0, "{}", w.stderr);
    let r = run_env("bak-read", &args!["--quiet", &devs], b"", &env);
    assert!(r.code == 0 && r.stdout == input, "{}", r.stderr);
    // The secret is wrong: the signature does not match, the store says no.
    let mut wrong = s3s_env(srv.port, "not-the-secret-key");
    wrong.push(("BAK_STORE_RETRIES".into(), "1".into()));
    for (tool, stdin) in [("bak-read", &b""[..]), ("bak-write", b"x")] {
        let o = run_env(tool, &args!["--quiet", &devs], stdin, &wrong);
        assert_eq!(o.code, 2, "{tool}: {}", o.stderr);
        assert!(
            o.stderr.contains("s3://bkt/one.bak"),
            "{tool}: {}",
            o.stderr
        );
        assert!(o.stderr.contains("access denied"), "{tool}: {}", o.stderr);
        assert!(
            !o.stderr.contains("not-the-secret-key"),
            "{tool}: {}",
            o.stderr
        );
    }
}

#[test]
fn dropped_stalled_and_throttled_requests_are_retried_to_a_byte_exact_restore() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("faults");
    let proxy = Proxy::start(
        s3.port,
        Plan {
            seed: 0xBAC0_FFEE,
            every: 4,
            kinds: vec![Fault::Drop, Fault::Stall, Fault::Unavailable],
            max_faults: 12,
            stall: Duration::from_secs(3),
        },
    );
    let mut env = s3_env(&proxy.endpoint());
    // A stalled request times out after 1 s and is sent again.
    env.push(("BAK_STORE_TIMEOUT".into(), "1".into()));
    let devs = vec![url(&b, "f1.bak"), url(&b, "f2.bak"), url(&b, "f3.bak")];
    let input = data(24 << 20, 42);
    let w = run_env(
        "bak-write",
        &args!["--quiet", "--part-size", "5M", &devs],
        &input,
        &env,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    let faults = |p: &Proxy| {
        let st = p.stats();
        (
            st.drops.load(Ordering::SeqCst),
            st.stalls.load(Ordering::SeqCst),
            st.unavailable.load(Ordering::SeqCst),
        )
    };
    let (d, s, u) = faults(&proxy);
    assert!(
        d > 0 && s > 0 && u > 0,
        "faults while writing: {d} drops, {s} stalls, {u} 503s"
    );
    assert!(s3.uploads(&b).is_empty(), "{:?}", s3.uploads(&b));
    // Reading, through a proxy of its own: its faults fall on the ranged GETs.
    let reading = Proxy::start(
        s3.port,
        Plan {
            seed: 0x5EED_0F6E,
            every: 3,
            kinds: vec![Fault::Drop, Fault::Stall, Fault::Unavailable],
            max_faults: 9,
            stall: Duration::from_secs(3),
        },
    );
    let mut env = s3_env(&reading.endpoint());
    env.push(("BAK_STORE_TIMEOUT".into(), "1".into()));
    let r = run_env("bak-read", &args!["--quiet", &devs], b"", &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let v = run_env("bak-verify", &args![&devs], b"", &env);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let (d, s, u) = faults(&reading);
    let get_faults = reading.stats().get_faults.load(Ordering::SeqCst);
    assert!(
        get_faults >= 2 && d + s > 0 && u > 0,
        "faults while reading: {get_faults} on GETs, {d} drops, {s} stalls, {u} 503s"
    );
}

#[test]
fn a_restore_keeps_several_ranged_gets_in_flight_per_family() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("ahead");
    let dev = url(&b, "one.bak");
    let input = data(40 << 20, 45);
    let w = run_env("bak-write", &args!["--quiet", &dev], &input, &s3.env());
    assert_eq!(w.code, 0, "{}", w.stderr);
    let proxy = Proxy::start(s3.port, Plan::none());
    let r = run_env(
        "bak-read",
        &args!["--quiet", &dev],
        b"",
        &s3_env(&proxy.endpoint()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let st = proxy.stats();
    let (gets, at_once) = (
        st.gets.load(Ordering::SeqCst),
        st.gets_at_once.load(Ordering::SeqCst),
    );
    eprintln!("bak-read of one 40 MiB family: {gets} GETs, at most {at_once} at once");
    // One family, one reader: only its read-ahead puts GETs side by side.
    assert!(at_once >= 2, "{gets} GETs, at most {at_once} at once");
}

#[test]
fn the_server_dying_during_an_upload_is_exit_2_and_leaves_no_set() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("dies");
    let proxy = Proxy::start(s3.port, Plan::none());
    let mut env = s3_env(&proxy.endpoint());
    env.push(("BAK_STORE_RETRIES".into(), "2".into()));
    let dev = url(&b, "d.bak");
    let mut child = std::process::Command::new(bin("bak-write"))
        .args(args!["--quiet", "--part-size", "5M", &dev])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = data(1 << 20, 43);
        for _ in 0..200 {
            if std::io::Write::write_all(&mut si, &chunk).is_err() {
                break;
            }
        }
    });
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while s3.uploads(&b).is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!s3.uploads(&b).is_empty(), "the upload never started");
    proxy.kill();
    let st = wait_within(&mut child, 60, "bak-write with its server dead");
    let _ = feeder.join();
    let err = stderr_text(&mut child);
    assert_eq!(st.code(), Some(2), "{err}");
    assert!(err.contains("s3://") && err.contains("d.bak"), "{err}");
    assert!(
        s3.keys(&b).is_empty(),
        "an object was left: {:?}",
        s3.keys(&b)
    );
    // The server is back: what the dead one kept of the upload is found and aborted.
    proxy.revive();
    let l = run_env(
        "bak-write",
        &args!["--uploads", "list", "--json", &dev],
        b"",
        &env,
    );
    assert_eq!(l.code, 0, "{}", l.stderr);
    assert_eq!(
        json_lines(&l.stdout).len(),
        1,
        "{}",
        String::from_utf8_lossy(&l.stdout)
    );
    let a = run_env(
        "bak-write",
        &args!["--uploads", "abort", "--quiet", &dev],
        b"",
        &env,
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert!(s3.uploads(&b).is_empty());
    let h = run_env("bak-header", &args![&dev], b"", &env);
    assert_eq!(h.code, 2, "{}", h.stderr);
    assert!(h.stderr.contains("no such object"), "{}", h.stderr);
}

#[test]
fn bak_header_on_urls_fetches_a_bounded_number_of_bytes() {
    let Some(s3) = moto() else { return };
    let b = s3.bucket("cost");
    let mut fetched = Vec::new();
    for (i, mib) in [4usize, 64].into_iter().enumerate() {
        let dev = url(&b, &format!("c{i}.bak"));
        // Three sets, the last of the given size.
        for n in [1 << 16, 1 << 20, mib << 20] {
            let w = run_env(
                "bak-write",
                &args!["--quiet", &dev],
                &data(n, 44),
                &s3.env(),
            );
            assert_eq!(w.code, 0, "{}", w.stderr);
        }
        let proxy = Proxy::start(s3.port, Plan::none());
        let h = run_env(
            "bak-header",
            &args!["--json", &dev],
            b"",
            &s3_env(&proxy.endpoint()),
        );
        assert_eq!(h.code, 0, "{}", h.stderr);
        assert_eq!(json_lines(&h.stdout).len(), 3);
        let bytes = proxy.stats().bytes_down.load(Ordering::SeqCst);
        let reqs = proxy.stats().requests.load(Ordering::SeqCst);
        eprintln!("bak-header on a family of {mib} MiB: {reqs} requests, {bytes} bytes");
        fetched.push(bytes);
    }
    // Headers, trailing records and back pointers only: tens of KiB, whatever the size.
    assert!(fetched.iter().all(|&n| n < 256 << 10), "{fetched:?}");
    assert!(fetched[1] < fetched[0] * 2, "{fetched:?}");
}

/// The header cost of a large set, measured by hand (docs and bench figures), not in the
/// suite: `BAK_HEADER_COST_SIZE` bytes of zeros (default 4G), `BAK_HEADER_COST_CODEC` (default
/// none), written to s3s-fs in a temporary folder (its disk must hold the set twice over),
/// then listed through the proxy. Run:
/// `cargo test -p bak-tests --release --test integration header_cost_of_a_large_set -- --ignored --nocapture`
#[test]
#[ignore]
fn header_cost_of_a_large_set() {
    let size = std::env::var("BAK_HEADER_COST_SIZE").unwrap_or_else(|_| "4G".into());
    let codec = std::env::var("BAK_HEADER_COST_CODEC").unwrap_or_else(|_| "none".into());
    let (digits, unit) = size.split_at(size.trim_end_matches(['K', 'M', 'G']).len());
    let shift = match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => 0,
    };
    let bytes = digits
        .parse::<u64>()
        .expect("BAK_HEADER_COST_SIZE: N, NK, NM or NG")
        << shift;
    let t = temp_dir("hdrcost");
    std::fs::create_dir(t.path().join("big")).unwrap();
    let Some(srv) = s3s_fs(t.path()) else { return };
    let env = s3s_env(srv.port, SECRET);
    let dev = url("big", "large.bak");
    // Two small sets, then the large one: the listing must find all three.
    for n in [1u64 << 16, 1 << 20] {
        let w = run_env(
            "bak-write",
            &args!["--quiet", &dev],
            &data(n as usize, 46),
            &env,
        );
        assert_eq!(w.code, 0, "{}", w.stderr);
    }
    let mut child = std::process::Command::new(bin("bak-write"))
        .args(args!["--quiet", "--compress", codec.as_str(), &dev])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        std::io::Write::write_all(&mut si, &zeros[..n]).unwrap();
        left -= n as u64;
    }
    drop(si);
    let st = child.wait().unwrap();
    assert!(st.success(), "{}", stderr_text(&mut child));
    let proxy = Proxy::start(srv.port, Plan::none());
    let mut penv = s3s_env(srv.port, SECRET);
    for (k, v) in penv.iter_mut() {
        if k == "AWS_ENDPOINT_URL" {
            *v = proxy.endpoint();
        }
    }
    let h = run_env("bak-header", &args!["--json", &dev], b"", &penv);
    assert_eq!(h.code, 0, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[2]["BackupSize"], bytes, "{rows:?}");
    let object: u64 = std::fs::metadata(t.path().join("big/large.bak"))
        .unwrap()
        .len();
    let (reqs, got) = (
        proxy.stats().requests.load(Ordering::SeqCst),
        proxy.stats().bytes_down.load(Ordering::SeqCst),
    );
    eprintln!(
        "bak-header on a family of three sets, the last of {bytes} bytes ({codec}; the \
         object {object} bytes): {reqs} requests, {got} bytes fetched"
    );
    assert!(got < 256 << 10, "{got} bytes fetched");
}
