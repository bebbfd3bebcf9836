//! Object-store servers for the tests, on 127.0.0.1 only: moto's S3 server, started once per
//! test binary on a free port and ended with it, and a bare HTTP client to look at the
//! server's state (buckets, objects, unfinished uploads) without going through the tools.
//!
//! The servers are installed by `bash tests/test.sh` (tests/servers.sh) into
//! `$BAK_TEST_SERVERS` (default: `test-servers/` in the target directory). A test whose server
//! is not there skips, saying so.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util::*;

pub mod proxy;

/// Where tests/servers.sh installs the servers.
pub fn servers_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BAK_TEST_SERVERS") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/integration-xxxx -> target/
    exe.ancestors()
        .nth(3)
        .expect("target dir")
        .join("test-servers")
}

/// A port nobody listens on now (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Wait until something accepts connections on the port.
pub fn wait_listening(port: u16, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Start a server from a thread that lives as long as the test binary: the child gets
/// `PR_SET_PDEATHSIG`, which follows the thread that started it, so the server ends with the
/// tests whatever way they end.
pub fn start_for_the_run(mut cmd: Command) -> std::io::Result<u32> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(mut c) => {
                let _ = tx.send(Ok(c.id()));
                let _ = c.wait();
                // Keep the thread (and so the death signal's parent) alive to the end.
                loop {
                    std::thread::park();
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    });
    rx.recv().expect("server thread")
}

/// The moto S3 server of this test run.
pub struct S3 {
    pub port: u16,
}

/// The moto server, started on first use; `None` (after saying SKIPPED) when moto is not
/// installed.
pub fn moto() -> Option<&'static S3> {
    static MOTO: OnceLock<Option<S3>> = OnceLock::new();
    let s = MOTO.get_or_init(|| {
        let exe = servers_dir().join("moto/bin/moto_server");
        if !exe.exists() {
            return None;
        }
        let port = free_port();
        let mut cmd = Command::new(&exe);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        start_for_the_run(cmd).ok()?;
        wait_listening(port, 30).then_some(S3 { port })
    });
    if s.is_none() {
        skip(&format!(
            "moto's S3 server not installed in {} (bash tests/test.sh installs it)",
            servers_dir().display()
        ));
    }
    s.as_ref()
}

/// What an HTTP request got.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// One plain HTTP/1.1 request to a server on 127.0.0.1 (moto takes requests unsigned).
pub fn http(port: u16, method: &str, target: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = match text.split_once("\r\n\r\n") {
        Some((h, b))
            if h.to_ascii_lowercase()
                .contains("transfer-encoding: chunked") =>
        {
            dechunk(b)
        }
        Some((_, b)) => b.to_string(),
        None => String::new(),
    };
    Reply { status, body }
}

fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = b.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        b = rest[n..].trim_start_matches("\r\n");
    }
    out
}

impl S3 {
    /// A new, empty bucket named after the test (and `tag`).
    pub fn bucket(&self, tag: &str) -> String {
        let name: String = format!("{}-{tag}", test_name().rsplit("::").next().unwrap_or("t"))
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches('-').chars().take(60).collect::<String>();
        let r = http(self.port, "PUT", &format!("/{name}"), b"");
        assert!(
            r.status == 200,
            "create bucket {name}: {} {}",
            r.status,
            r.body
        );
        name
    }

    /// The keys in a bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let r = http(self.port, "GET", &format!("/{bucket}?list-type=2"), b"");
        let mut v = tags(&r.body, "Key");
        v.sort();
        v
    }

    /// The keys in a bucket with their sizes, sorted by key.
    pub fn sizes(&self, bucket: &str) -> Vec<(String, u64)> {
        let r = http(self.port, "GET", &format!("/{bucket}?list-type=2"), b"");
        let mut v: Vec<(String, u64)> = tags(&r.body, "Contents")
            .iter()
            .map(|c| {
                let key = tags(c, "Key").pop().unwrap_or_default();
                let size = tags(c, "Size")
                    .pop()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                (key, size)
            })
            .collect();
        v.sort();
        v
    }

    /// Remove an object.
    pub fn delete(&self, bucket: &str, key: &str) {
        let r = http(self.port, "DELETE", &format!("/{bucket}/{key}"), b"");
        assert!(r.status == 204 || r.status == 200, "delete: {}", r.status);
    }

    /// True when the bucket exists.
    pub fn bucket_exists(&self, bucket: &str) -> bool {
        http(self.port, "HEAD", &format!("/{bucket}"), b"").status == 200
    }

    /// The keys of the unfinished multipart uploads in a bucket.
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        let r = http(self.port, "GET", &format!("/{bucket}?uploads"), b"");
        assert_eq!(r.status, 200, "list uploads: {}", r.body);
        tags(&r.body, "Key")
    }

    /// The environment a tool needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        s3_env(&format!("http://127.0.0.1:{}", self.port))
    }
}

/// The secret key the tests hand the tools: it must never appear in anything they print.
pub const SECRET: &str = "bak-test-secret-key-never-printed";

/// The standard AWS environment for an endpoint.
pub fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "bak-test-key-id"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every `<tag>value</tag>` in an XML answer.
pub fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut v = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        v.push(after[..j].to_string());
        rest = &after[j..];
    }
    v
}

/// Run a tool with extra environment variables, stdin fed through a pipe.
pub fn run_env(
    tool: &str,
    args: &[std::ffi::OsString],
    stdin: &[u8],
    env: &[(String, String)],
) -> Output {
    let mut cmd = Command::new(bin(tool));
    cmd.args(args);
    run_env_cmd(cmd, stdin, env)
}

/// Run a tool's command (its arguments given) with extra environment variables, stdin fed
/// through a pipe.
pub fn run_env_cmd(mut cmd: Command, stdin: &[u8], env: &[(String, String)]) -> Output {
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn tool");
    let mut si = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = si.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = feeder.join();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A server process of one test, ended (killed and waited for) when dropped.
pub struct Server {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The access key s3s-fs is started with (it checks every request's signature).
pub const S3S_KEY: &str = "bak-s3s-key";

/// s3s-fs serving `root` (each folder in it a bucket) on a free port; `None` (after saying
/// SKIPPED) when it is not installed.
pub fn s3s_fs(root: &std::path::Path) -> Option<Server> {
    let exe = servers_dir().join("s3s-fs/bin/s3s-fs");
    if !exe.exists() {
        skip(&format!(
            "s3s-fs not installed in {} (bash tests/test.sh installs it)",
            servers_dir().display()
        ));
        return None;
    }
    let port = free_port();
    let child = Command::new(exe)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3S_KEY, "--secret-key", SECRET])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let s = Server { child, port };
    assert!(wait_listening(port, 20), "s3s-fs did not start");
    Some(s)
}

/// The environment for s3s-fs: its access key, and the secret given (right or wrong).
pub fn s3s_env(port: u16, secret: &str) -> Vec<(String, String)> {
    let mut e = s3_env(&format!("http://127.0.0.1:{port}"));
    for (k, v) in e.iter_mut() {
        if k == "AWS_ACCESS_KEY_ID" {
            *v = S3S_KEY.into();
        }
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = secret.into();
        }
    }
    e
}

/// Azurite's well-known development account and key (public: the emulator's own).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's blob service on a free port, its data in `dir`; `None` (after saying SKIPPED)
/// when it is not installed.
pub fn azurite(dir: &std::path::Path) -> Option<Server> {
    let exe = servers_dir().join("azurite/node_modules/.bin/azurite-blob");
    if !exe.exists() {
        skip(&format!(
            "Azurite not installed in {} (bash tests/test.sh installs it)",
            servers_dir().display()
        ));
        return None;
    }
    let port = free_port();
    let child = Command::new(exe)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .arg("--location")
        .arg(dir)
        .args(["--disableTelemetry", "--skipApiVersionCheck"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let s = Server { child, port };
    assert!(wait_listening(port, 30), "Azurite did not start");
    Some(s)
}

/// The environment that points the tools at Azurite.
pub fn azurite_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        (
            "AZURITE_BLOB_STORAGE_URL".into(),
            format!("http://127.0.0.1:{port}"),
        ),
    ]
}

/// An HTTP date (RFC 7231) for now.
fn http_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Create a container in Azurite (the tools never create one), signed with the
/// emulator's shared key.
pub fn azure_container(port: u16, name: &str) {
    use base64::Engine as _;
    let date = http_date();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{a}/{a}/{name}\nrestype:container",
        a = AZURITE_ACCOUNT
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &b64.decode(AZURITE_KEY).unwrap());
    let sig = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to Azurite");
    write!(
        s,
        "PUT /{AZURITE_ACCOUNT}/{name}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
         Authorization: SharedKey {AZURITE_ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(
        reply.starts_with("HTTP/1.1 201"),
        "create container {name}: {reply}"
    );
}
