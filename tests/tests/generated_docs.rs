//! `TOOL --generate KIND`: the man page and the bash, zsh and fish completions of each tool come
//! from its own clap definition, so each names the tool and every option its `--help` lists.

use std::process::Command;

use crate::util::*;

const TOOLS: [&str; 4] = ["bak-write", "bak-read", "bak-verify", "bak-header"];

/// `TOOL --generate KIND`, which must succeed quietly; its standard output as text.
fn generated(tool: &str, kind: &str) -> String {
    let out = run(tool, &os(&args!["--generate", kind]), b"");
    assert_eq!(out.code, 0, "{tool} --generate {kind}: {}", out.stderr);
    assert!(
        out.stderr.is_empty(),
        "{tool} --generate {kind}: {}",
        out.stderr
    );
    let text = String::from_utf8(out.stdout).expect("generated text is UTF-8");
    assert!(
        !text.trim().is_empty(),
        "{tool} --generate {kind} wrote nothing"
    );
    text
}

fn help(tool: &str) -> String {
    let out = run(tool, &os(&args!["--help"]), b"");
    assert_eq!(out.code, 0, "{tool} --help: {}", out.stderr);
    String::from_utf8(out.stdout).expect("--help is UTF-8")
}

/// The long options `--help` lists (`--compress`, `--help`, ..), from its option lines: clap
/// indents those by 2 or 6 spaces, their descriptions by 10.
fn long_options(tool: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in help(tool).lines() {
        let indent = line.len() - line.trim_start().len();
        if indent > 6 || !line.trim_start().starts_with('-') {
            continue;
        }
        for word in line.split([' ', ',']) {
            if let Some(name) = word.strip_prefix("--") {
                let name = name.split(['=', '[', '<']).next().unwrap_or("");
                if !name.is_empty() {
                    v.push(name.to_string());
                }
            }
        }
    }
    assert!(
        v.iter().any(|o| o == "help") && v.iter().any(|o| o == "generate"),
        "{tool} --help lists --help and --generate: {v:?}"
    );
    v
}

/// The first example of `--help` (the line under `Examples:`), trimmed.
fn first_example(tool: &str) -> String {
    let h = help(tool);
    let mut lines = h.lines().skip_while(|l| l.trim() != "Examples:");
    lines.next();
    let ex = lines.next().unwrap_or_default().trim().to_string();
    assert!(ex.contains(tool), "{tool} --help has examples: {h}");
    ex
}

/// roff source as the words it prints: `\-` is `-`, `\*(Aq` an apostrophe, font changes gone.
fn unroff(page: &str) -> String {
    let mut s = page.replace("\\-", "-").replace("\\*(Aq", "'");
    for font in ["\\fB", "\\fI", "\\fR"] {
        s = s.replace(font, "");
    }
    s
}

#[test]
fn man_pages_carry_the_tool_its_options_examples_and_exit_status() {
    for tool in TOOLS {
        let page = generated(tool, "man");
        let title = format!(".TH {} 1 ", tool.to_uppercase());
        assert!(
            page.lines().any(|l| l.starts_with(&title)),
            "{tool}: no `{title}` line:\n{page}"
        );
        let text = unroff(&page);
        for opt in long_options(tool) {
            assert!(
                text.contains(&format!("--{opt}")),
                "{tool}: --{opt} of --help is not in the man page:\n{page}"
            );
        }
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES"] {
            assert!(
                page.contains(&format!("\n.SH {section}\n")),
                "{tool}: no {section} section:\n{page}"
            );
        }
        assert!(page.contains("\n.SH \"EXIT STATUS\"\n"), "{tool}:\n{page}");
        let status = &text[text.find("\"EXIT STATUS\"").unwrap()..];
        for code in ["0", "1", "2"] {
            assert!(
                status.contains(&format!(".TP\n{code}\n")),
                "{tool}: exit code {code} is not listed:\n{status}"
            );
        }
        assert!(status.contains("usage or I/O error"), "{tool}:\n{status}");
        let example = first_example(tool);
        assert!(
            text.lines().any(|l| l == example),
            "{tool}: the example `{example}` is not a line of the man page:\n{page}"
        );
        assert!(
            text.contains(&format!("{tool} [OPTIONS] DEVICE...")),
            "{tool}: the synopsis:\n{page}"
        );
    }
}

#[test]
fn bash_completions_register_the_tool_with_every_option() {
    for tool in TOOLS {
        let script = generated(tool, "complete-bash");
        assert!(
            script
                .lines()
                .map(str::trim)
                .any(|l| l.starts_with("complete -F ") && l.ends_with(&format!(" {tool}"))),
            "{tool}: no `complete -F .. {tool}` line:\n{script}"
        );
        for opt in long_options(tool) {
            assert!(
                script
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .any(|w| w == format!("--{opt}")),
                "{tool}: --{opt} is not completed:\n{script}"
            );
        }
    }
}

#[test]
fn zsh_completions_are_a_compdef_of_the_tool() {
    for tool in TOOLS {
        let script = generated(tool, "complete-zsh");
        assert_eq!(
            script.lines().next(),
            Some(format!("#compdef {tool}").as_str()),
            "{tool}:\n{script}"
        );
        for opt in long_options(tool) {
            assert!(
                script.contains(&format!("--{opt}[")) || script.contains(&format!("--{opt}=[")),
                "{tool}: --{opt} is not completed:\n{script}"
            );
        }
    }
}

#[test]
fn fish_completions_complete_every_long_option() {
    for tool in TOOLS {
        let script = generated(tool, "complete-fish");
        let head = format!("complete -c {tool} ");
        for opt in long_options(tool) {
            assert!(
                script.lines().any(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    l.starts_with(&head) && words.windows(2).any(|w| w == ["-l", opt.as_str()])
                }),
                "{tool}: no `{head}.. -l {opt}` line:\n{script}"
            );
        }
    }
}

#[test]
fn an_unknown_kind_is_a_usage_error() {
    for tool in TOOLS {
        let out = run(tool, &os(&args!["--generate", "bogus"]), b"");
        assert_eq!(out.code, 2, "{tool}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{tool}");
        assert!(
            out.stderr.contains("bogus") && out.stderr.contains("complete-fish"),
            "{tool}: the error names the value and the kinds: {}",
            out.stderr
        );
    }
}

#[test]
fn devices_are_still_required_without_generate() {
    for tool in TOOLS {
        let out = run(tool, &[], b"");
        assert_eq!(out.code, 2, "{tool}: {}", out.stderr);
        assert!(out.stderr.contains("<DEVICE>"), "{tool}: {}", out.stderr);
    }
}

/// The page as a reader sees it, through groff (or man), without bold or underlining.
fn rendered(page: &std::path::Path) -> Option<(String, String)> {
    let out = if have("groff") {
        Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou"])
            .arg(page)
            .output()
    } else if have("man") {
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "80")
            .output()
    } else {
        return None;
    };
    let out = out.expect("run groff or man");
    assert!(out.status.success(), "{out:?}");
    // man may still overstrike (`X\bX`) for bold: keep the last character of each pair.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    Some((text, String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[test]
fn man_pages_render() {
    let t = temp_dir("man");
    for tool in TOOLS {
        let path = t.path().join(format!("{tool}.1"));
        std::fs::write(&path, generated(tool, "man")).unwrap();
        let Some((text, warnings)) = rendered(&path) else {
            skip("neither groff nor man is installed");
            return;
        };
        assert!(warnings.is_empty(), "{tool}: {warnings}");
        let title = format!("{}(1)", tool.to_uppercase());
        assert!(
            text.lines().next().is_some_and(|l| l.contains(&title)),
            "{tool}:\n{text}"
        );
        for heading in ["NAME", "SYNOPSIS", "OPTIONS", "EXAMPLES", "EXIT STATUS"] {
            assert!(
                text.lines().any(|l| l == heading),
                "{tool}: no {heading} heading:\n{text}"
            );
        }
        assert!(text.contains("--generate"), "{tool}:\n{text}");
    }
}
