//! Media concatenated on one device (`bak-write - | ssh host 'cat >> x.bak'`, run twice) are one
//! media after another, not one media set: every tool lists or reads what comes before the
//! second media and says, naming the device, the offset where it begins, its media set id and
//! the bytes that follow, that it is there and how to reach it. Other bytes past the end of the
//! media are reported too. Never in silence.

use std::path::Path;
use std::process::Command;

use crate::util::*;

fn tool(t: &str, a: &[std::ffi::OsString], stdin: &[u8]) -> Output {
    run(t, &os(a), stdin)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Media with one set holding `input`, as `bak-write -` writes them to a pipe.
fn media_to_pipe(input: &[u8]) -> Vec<u8> {
    let w = tool(
        "bak-write",
        &args!["--quiet", "--max-transfer-size", "64K", "-"],
        input,
    );
    assert_eq!(w.code, 0, "{}", w.stderr);
    w.stdout
}

/// The media set id in a media label, as bak-header reads it from a pipe.
fn media_set_id(media: &[u8]) -> String {
    let h = tool("bak-header", &args!["--labelonly", "--json", "-"], media);
    assert_eq!(h.code, 0, "{}", h.stderr);
    json_lines(&h.stdout)[0]["MediaSetId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `cat FILE >> DEVICE` for each file, through the shell, as the user ran it.
fn cat_append(device: &Path, files: &[&Path]) {
    for f in files {
        let st = Command::new("sh")
            .arg("-c")
            .arg("cat \"$1\" >> \"$2\"")
            .arg("sh")
            .arg(f)
            .arg(device)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// The N of the first `tail -c +N` in a message.
fn tail_start(msg: &str) -> u64 {
    let i = msg
        .find("tail -c +")
        .unwrap_or_else(|| panic!("no recipe: {msg}"));
    msg[i + 9..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Two media, one set each, concatenated with `cat >>` onto `x.bak`.
struct Concatenated {
    _t: tempfile::TempDir,
    x: std::path::PathBuf,
    one: Vec<u8>,
    two: Vec<u8>,
    /// Where the second media begins: the length of the first.
    start: u64,
    /// Bytes of the second media.
    second_len: u64,
    second_id: String,
}

fn concatenated() -> Concatenated {
    let t = temp_dir("concat");
    let one = data(5 * MTS + 123, 41);
    let two = data(3 * MTS + 7, 42);
    let (m1, m2) = (media_to_pipe(&one), media_to_pipe(&two));
    let (p1, p2) = (t.path().join("m1.bak"), t.path().join("m2.bak"));
    std::fs::write(&p1, &m1).unwrap();
    std::fs::write(&p2, &m2).unwrap();
    let x = t.path().join("x.bak");
    cat_append(&x, &[&p1, &p2]);
    let second_id = media_set_id(&m2);
    assert_ne!(second_id, media_set_id(&m1));
    Concatenated {
        x,
        one,
        two,
        start: m1.len() as u64,
        second_len: m2.len() as u64,
        second_id,
        _t: t,
    }
}

/// A message names the device, the offset, the second media's set id and the bytes after it,
/// says that concatenated media are not one media set, and how to reach the second.
fn says_second_media(msg: &str, device: &str, c: &Concatenated) {
    for needle in [
        format!("{device}: family 1, offset {}", c.start),
        "a second bak media begins here".to_string(),
        format!("media set {}", c.second_id),
        format!("{} bytes to the end of the device", c.second_len),
        "media concatenated on one device, as `cat >>` makes, are not one media set".to_string(),
    ] {
        assert!(msg.contains(&needle), "no {needle:?} in: {msg}");
    }
    assert_eq!(tail_start(msg), c.start + 1, "{msg}");
}

#[test]
fn header_lists_the_first_media_and_names_the_second() {
    let c = concatenated();
    let x = c.x.to_str().unwrap();
    // A file, and the same bytes through a pipe.
    for (dev, name, stdin) in [
        (x, x, Vec::new()),
        ("-", "stdin", std::fs::read(&c.x).unwrap()),
    ] {
        let h = tool("bak-header", &args!["--json", dev], &stdin);
        assert_eq!(h.code, 1, "{name}: {}", h.stderr);
        let rows = json_lines(&h.stdout);
        assert_eq!(rows.len(), 1, "{name}: {}", stdout(&h));
        assert_eq!(rows[0]["Position"], 1);
        assert_eq!(rows[0]["IsComplete"], true);
        assert_eq!(rows[0]["BackupSize"], c.one.len() as u64);
        says_second_media(&h.stderr, name, &c);

        let l = tool("bak-header", &args!["--labelonly", "--json", dev], &stdin);
        assert_eq!(l.code, 1, "{name}: {}", l.stderr);
        let label = &json_lines(&l.stdout)[0];
        assert_eq!(label["BackupSetCount"], 1);
        assert_ne!(label["MediaSetId"].as_str(), Some(c.second_id.as_str()));
        says_second_media(&l.stderr, name, &c);
    }
}

#[test]
fn verify_reports_the_second_media_outside_any_set() {
    let c = concatenated();
    let x = c.x.to_str().unwrap();
    for (dev, name, stdin) in [
        (x, x, Vec::new()),
        ("-", "stdin", std::fs::read(&c.x).unwrap()),
    ] {
        let v = tool("bak-verify", &args!["--json", dev], &stdin);
        assert_eq!(v.code, 1, "{name}: {}", v.stderr);
        let reports = json_lines(&v.stdout);
        assert_eq!(reports.len(), 2, "{name}: {}", stdout(&v));
        let outside = &reports[0];
        assert_eq!(outside["Position"], 0);
        assert_eq!(outside["Verdict"], "damaged");
        let p = &outside["Problems"][0];
        assert_eq!(p["Device"], name);
        assert_eq!(p["Offset"], c.start);
        assert_eq!(p["Position"], serde_json::Value::Null);
        let text = format!("{}: family 1, offset {}: {}", name, c.start, p["What"]);
        says_second_media(&text, name, &c);
        assert_eq!(reports[1]["Position"], 1);
        assert_eq!(reports[1]["Verdict"], "valid");

        // The text report says the same.
        let v = tool("bak-verify", &args![dev], &stdin);
        assert_eq!(v.code, 1);
        says_second_media(&stdout(&v), name, &c);
        assert!(stdout(&v).contains("The backup set on file 1 is valid."));
    }
}

#[test]
fn read_restores_set_1_and_says_set_2_is_a_second_media() {
    let c = concatenated();
    let x = c.x.to_str().unwrap();
    let bytes = std::fs::read(&c.x).unwrap();

    // Set 1, exactly, from the file: a note unless --quiet; from a pipe it is not read past.
    let r = tool("bak-read", &args![x], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == c.one, "set 1 restored wrong");
    assert!(r.stderr.contains("bak-read: note: "), "{}", r.stderr);
    says_second_media(&r.stderr, x, &c);
    let r = tool("bak-read", &args!["--quiet", x], b"");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(r.stdout == c.one);
    let r = tool("bak-read", &args!["--quiet", "-"], &bytes);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout == c.one);

    // Set 2 is not on the media; the message says what is there instead.
    for (dev, name, stdin) in [(x, x, &[][..]), ("-", "stdin", &bytes[..])] {
        let r = tool("bak-read", &args!["--quiet", "--file", "2", dev], stdin);
        assert_eq!(r.code, 1, "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        assert!(
            r.stderr
                .contains("backup set 2 is not on the media (they hold 1 set)"),
            "{}",
            r.stderr
        );
        says_second_media(&r.stderr, name, &c);
    }
}

#[test]
fn the_recipe_in_the_message_reaches_the_second_media() {
    let c = concatenated();
    let x = c.x.to_str().unwrap();
    let h = tool("bak-header", &args![x], b"");
    let n = tail_start(&h.stderr);
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("tail -c +{n} \"$1\" | \"$2\" --quiet -"))
        .arg("sh")
        .arg(&c.x)
        .arg(bin("bak-read"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == c.two,
        "the second media's set 1 restored wrong"
    );
    // Cut out, it is whole media of its own.
    let second = c.x.with_file_name("second.bak");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("tail -c +{n} \"$1\" > \"$2\""))
        .arg("sh")
        .arg(&c.x)
        .arg(&second)
        .status()
        .unwrap();
    assert!(st.success());
    let v = tool("bak-verify", &args![&second], b"");
    assert_eq!(v.code, 0, "{}{}", stdout(&v), v.stderr);
}

#[test]
fn bytes_past_the_end_of_the_media_are_reported() {
    let t = temp_dir("pastend");
    let one = data(2 * MTS + 5, 43);
    let m1 = media_to_pipe(&one);
    let g = t.path().join("g.bak");
    let mut bytes = m1.clone();
    // Not a bak record frame: no skippable frame magic.
    let junk = b"not media\n".repeat(500);
    bytes.extend_from_slice(&junk);
    std::fs::write(&g, &bytes).unwrap();
    let gs = g.to_str().unwrap();
    let says = |msg: &str, dev: &str| {
        let needle = format!(
            "{dev}: family 1, offset {}: {} bytes past the end of the media",
            m1.len(),
            junk.len()
        );
        assert!(msg.contains(&needle), "no {needle:?} in: {msg}");
    };
    for (dev, name, stdin) in [(gs, gs, &[][..]), ("-", "stdin", &bytes[..])] {
        let v = tool("bak-verify", &args![dev], stdin);
        assert_eq!(v.code, 1, "{name}: {}", v.stderr);
        says(&stdout(&v), name);
        assert!(stdout(&v).contains("The media have 1 problem outside any backup set."));
        assert!(stdout(&v).contains("The backup set on file 1 is valid."));
        let h = tool("bak-header", &args![dev], stdin);
        assert_eq!(h.code, 1, "{name}: {}", h.stderr);
        says(&h.stderr, name);
        assert!(!h.stderr.contains("second bak media"), "{}", h.stderr);
        let r = tool("bak-read", &args!["--quiet", dev], stdin);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        assert!(r.stdout == one);
    }
}

#[test]
fn a_set_cut_short_by_a_second_media_is_incomplete() {
    // The first bak-write was cut off halfway (the connection dropped), the second whole.
    let t = temp_dir("cutconcat");
    let one = data(6 * MTS, 44);
    let m1 = media_to_pipe(&one);
    let m2 = media_to_pipe(&data(MTS, 45));
    let cut = m1.len() / 2;
    let x = t.path().join("x.bak");
    let mut bytes = m1[..cut].to_vec();
    bytes.extend_from_slice(&m2);
    std::fs::write(&x, &bytes).unwrap();
    let id = media_set_id(&m2);
    let v = tool("bak-verify", &args!["--json", &x], b"");
    assert_eq!(v.code, 1, "{}", v.stderr);
    let reports = json_lines(&v.stdout);
    assert_eq!(reports.len(), 2, "{}", stdout(&v));
    assert_eq!(reports[0]["Position"], 0);
    let p = &reports[0]["Problems"][0];
    assert_eq!(p["Offset"], cut as u64);
    assert!(p["What"].as_str().unwrap().contains(&id), "{p}");
    assert_eq!(reports[1]["Position"], 1);
    assert_eq!(reports[1]["Verdict"], "incomplete", "{}", reports[1]);

    let h = tool("bak-header", &args!["--json", &x], b"");
    assert_eq!(h.code, 1, "{}", h.stderr);
    let rows = json_lines(&h.stdout);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["IsComplete"], false);
    assert!(
        h.stderr
            .contains(&format!("offset {cut}: a second bak media"))
            && h.stderr.contains(&id)
            && h.stderr.contains("where backup set 1 was not finished"),
        "{}",
        h.stderr
    );
}

#[test]
fn appending_after_a_second_media_is_refused() {
    // Two sets written to the file directly, then a second media concatenated onto it.
    let t = temp_dir("concatappend");
    let x = t.path().join("x.bak");
    let (a, b) = (data(MTS + 1, 46), data(2 * MTS, 47));
    for input in [&a, &b] {
        let w = write(
            std::slice::from_ref(&x),
            &["--max-transfer-size", "64K"],
            input,
        );
        assert_eq!(w.code, 0, "{}", w.stderr);
    }
    let start = std::fs::metadata(&x).unwrap().len();
    let m2 = media_to_pipe(&data(MTS, 48));
    let p2 = t.path().join("m2.bak");
    std::fs::write(&p2, &m2).unwrap();
    cat_append(&x, &[&p2]);
    let id = media_set_id(&m2);

    let h = tool("bak-header", &args!["--json", &x], b"");
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert_eq!(json_lines(&h.stdout).len(), 2);
    assert!(
        h.stderr
            .contains(&format!("offset {start}: a second bak media"))
            && h.stderr.contains(&id),
        "{}",
        h.stderr
    );
    for (pos, want) in [(1, &a), (2, &b)] {
        let r = read(std::slice::from_ref(&x), &["--file", &pos.to_string()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout == *want, "set {pos} restored wrong");
    }

    let before = std::fs::read(&x).unwrap();
    let w = write(std::slice::from_ref(&x), &[], b"more");
    assert_eq!(w.code, 2, "{}", w.stderr);
    assert!(
        w.stderr.contains("refusing to append") && w.stderr.contains(&format!("offset {start}")),
        "{}",
        w.stderr
    );
    assert!(
        std::fs::read(&x).unwrap() == before,
        "the refused append changed the file"
    );
}

#[test]
fn a_copy_of_the_media_after_themselves_is_named_as_such() {
    let t = temp_dir("concatcopy");
    let one = data(MTS + 9, 49);
    let m1 = media_to_pipe(&one);
    let x = t.path().join("x.bak");
    std::fs::write(&x, [&m1[..], &m1[..]].concat()).unwrap();
    let h = tool("bak-header", &args![&x], b"");
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert!(
        h.stderr.contains(&format!(
            "offset {}: a second bak media begins here (media set {}, family 1 of 1, the same media set as the first media; {} bytes",
            m1.len(),
            media_set_id(&m1),
            m1.len()
        )),
        "{}",
        h.stderr
    );
}
