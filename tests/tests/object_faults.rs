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
    let r = run_env("bak-read", &args!["--quiet", &devs], b"", &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == input, "restored bytes differ");
    let v = run_env("bak-verify", &args![&devs], b"", &env);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let st = proxy.stats();
    let (d, s, u) = (
        st.drops.load(Ordering::SeqCst),
        st.stalls.load(Ordering::SeqCst),
        st.unavailable.load(Ordering::SeqCst),
    );
    assert!(
        d > 0 && s > 0 && u > 0,
        "faults: {d} drops, {s} stalls, {u} 503s"
    );
    assert!(s3.uploads(&b).is_empty(), "{:?}", s3.uploads(&b));
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
