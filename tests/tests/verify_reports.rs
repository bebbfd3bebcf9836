//! bak-verify's reports on bak media: one JSON object per set, --file, --fast, a missing family,
//! and --stop-on-error.

use crate::util::*;

fn tool(t: &str, a: &[std::ffi::OsString]) -> Output {
    run(t, &os(a), b"")
}

#[test]
fn verify_json_report_and_file_selection() {
    let t = temp_dir("vjson");
    let (devs, one, _) = two_sets_on_three_families(&t, "v");
    let v = tool("bak-verify", &args!["--json", &devs]);
    assert_eq!(v.code, 0, "{}", v.stderr);
    let reps = json_lines(&v.stdout);
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[0]["Verdict"], "valid");
    assert_eq!(reps[0]["OriginalBytesChecked"], one.len() as u64);
    assert!(reps[0]["Problems"].as_array().unwrap().is_empty());
    let f = tool(
        "bak-verify",
        &args!["--fast", "--file", "2", "--json", &devs],
    );
    assert_eq!(f.code, 0);
    let r: serde_json::Value = serde_json::from_slice(&f.stdout).unwrap();
    assert_eq!(r["Position"], 2);
    assert_eq!(r["OriginalBytesChecked"], 0);
    let missing = tool("bak-verify", &args![&devs[0], &devs[1]]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("family 3 is missing"),
        "{}",
        missing.stderr
    );
}

#[test]
fn stop_on_error_reports_only_the_first_problem() {
    let t = temp_dir("stop");
    let (devs, _, _) = two_sets_on_three_families(&t, "s");
    // Damage two blocks of set 1 on a family that holds at least two of them (blocks go to
    // whichever device is free, so which family that is varies).
    let (dev, payloads) = devs
        .iter()
        .find_map(|d| {
            let p: Vec<u64> = regions(d)
                .into_iter()
                .filter(|x| x.0 == "block payload" && set_of(d, x.1) == 1)
                .map(|x| x.1)
                .collect();
            (p.len() >= 2).then(|| (d.clone(), p))
        })
        .expect("some family holds two blocks of set 1");
    let mut b = std::fs::read(&dev).unwrap();
    for p in payloads.iter().take(2) {
        b[(p + 20) as usize] ^= 1;
    }
    std::fs::write(&dev, &b).unwrap();
    let all = tool("bak-verify", &args!["--json", "--file", "1", &devs]);
    let rep: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all.code, 1);
    assert!(rep["Problems"].as_array().unwrap().len() >= 2, "{rep}");
    let one = tool(
        "bak-verify",
        &args!["--json", "--stop-on-error", "--file", "1", &devs],
    );
    let rep: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(one.code, 1);
    assert_eq!(rep["Problems"].as_array().unwrap().len(), 1, "{rep}");
    assert_eq!(rep["Verdict"], "damaged");
    // Over every set: the report stops at set 1, whose one problem is the first; set 2
    // (intact, on the same media) is not reported after it.
    let every = tool("bak-verify", &args!["--json", "--stop-on-error", &devs]);
    assert_eq!(every.code, 1);
    let reps = json_lines(&every.stdout);
    assert_eq!(reps.len(), 1, "{reps:?}");
    assert_eq!(reps[0]["Position"], 1);
    assert_eq!(reps[0]["Problems"].as_array().unwrap().len(), 1);
    let without = tool("bak-verify", &args!["--json", &devs]);
    assert_eq!(
        String::from_utf8(without.stdout).unwrap().lines().count(),
        2
    );
}

#[test]
fn a_set_missing_from_the_end_of_one_family_is_incomplete_not_damaged() {
    let t = temp_dir("vinc");
    let devs = devices(&t, "v", 3);
    let one = data(5 * MTS + 3, 1);
    assert_eq!(write(&devs, &["--max-transfer-size", "64K"], &one).code, 0);
    // Family 3 as it was before set 2 was appended: set 2 is on families 1 and 2 only.
    let before = std::fs::read(&devs[2]).unwrap();
    assert_eq!(
        write(&devs, &["--max-transfer-size", "64K"], &data(MTS, 2)).code,
        0
    );
    std::fs::write(&devs[2], &before).unwrap();
    let v = tool("bak-verify", &args!["--json", &devs]);
    assert_eq!(v.code, 1, "{}", v.stderr);
    let reps = json_lines(&v.stdout);
    assert_eq!(reps[0]["Verdict"], "valid");
    assert_eq!(reps[1]["Verdict"], "incomplete", "{reps:?}");
    let p = reps[1]["Problems"][0]["What"].as_str().unwrap().to_string();
    assert!(p.contains("ends after set 1"), "{p}");
    let text = tool("bak-verify", &args![&devs]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("The backup set on file 2 is incomplete"),
        "{out}"
    );
    // bak-read of set 2 says which family it is missing on (exit 1); set 1 restores.
    let r = tool("bak-read", &args!["--quiet", "--file", "2", &devs]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("v3.bak") && r.stderr.contains("incomplete"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    assert_eq!(tool("bak-read", &args!["--quiet", &devs]).stdout, one);
}
