//! `TOOL --generate KIND`: a man page or a shell completion script, made from the tool's own
//! clap definition (as ripgrep does), so the documents cannot drift from the options.
//!
//! The man page carries the long help of the tool and of every option, the examples of the
//! tool's `after_help` in their own section, the prose beside them in DESCRIPTION, and the exit
//! codes in EXIT STATUS.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap_complete::{Generator, Shell};
use roff::{roman, Roff};

/// What `--generate` writes on standard output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A man page (roff): TOOL.1 in the man1 folder of a man path, or man -l FILE.
    Man,
    /// A bash completion script.
    CompleteBash,
    /// A zsh completion script (a file named _TOOL in a folder of fpath).
    CompleteZsh,
    /// A fish completion script (TOOL.fish in fish's completions directory).
    CompleteFish,
}

/// Write `kind` for the tool that `cmd` defines to standard output, as the tool's whole run: an
/// I/O error is printed as `tool: ...` (exit 2), a closed standard output ends quietly.
pub fn print(cmd: clap::Command, kind: Kind) -> ExitCode {
    let tool = cmd.get_name().to_string();
    crate::run(&tool, true, || {
        let text = generate(cmd, kind)?;
        let mut out = std::io::stdout().lock();
        out.write_all(&text)
            .and_then(|()| out.flush())
            .context("cannot write to standard output")?;
        Ok(crate::EXIT_OK)
    })
}

/// The bytes of `kind` for the tool that `cmd` defines. Made in memory: the generators' own
/// write errors would be panics, and a `Vec` cannot fail.
pub fn generate(mut cmd: clap::Command, kind: Kind) -> anyhow::Result<Vec<u8>> {
    let name = cmd.get_name().to_string();
    let mut buf = Vec::new();
    let shell = match kind {
        Kind::Man => {
            man_page(cmd, &mut buf)
                .with_context(|| format!("cannot make the man page of {name}"))?;
            return Ok(buf);
        }
        Kind::CompleteBash => Shell::Bash,
        Kind::CompleteZsh => Shell::Zsh,
        Kind::CompleteFish => Shell::Fish,
    };
    cmd.set_bin_name(&name);
    cmd.build();
    shell
        .try_generate(&cmd, &mut buf)
        .with_context(|| format!("cannot make the {shell} completions of {name}"))?;
    Ok(buf)
}

/// NAME, SYNOPSIS, DESCRIPTION (the long about and the prose of `after_help`), OPTIONS,
/// EXAMPLES, EXIT STATUS, VERSION.
fn man_page(mut cmd: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    cmd.build();
    if cmd.get_overridden_usage().is_none() {
        let usage = synopsis(&cmd);
        cmd = cmd.override_usage(usage);
    }
    // clap_mangen drops the help of an option hidden from the short help unless it has a long
    // help of its own (`--generate` has not).
    let cmd = cmd.mut_args(|a| match (a.is_hide_short_help_set(), a.get_long_help()) {
        (true, None) => match a.get_help().cloned() {
            Some(help) => a.long_help(help),
            None => a,
        },
        _ => a,
    });
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let parts = AfterHelp::split(&after);
    let name = cmd.get_name().to_uppercase();
    let has_version = cmd.get_version().is_some();
    let man = clap_mangen::Man::new(cmd)
        .title(name)
        .manual("User Commands");
    // Each part rendered on its own starts with the roff crate's preamble; the page needs it
    // once.
    let mut preamble = Vec::new();
    Roff::new().to_writer(&mut preamble)?;
    let mut page = Vec::new();
    let w = &mut page;

    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    let mut roff = Roff::new();
    for p in &parts.prose {
        roff.control("PP", []);
        for line in p {
            roff.text([roman(*line)]);
        }
    }
    roff.to_writer(w)?;
    man.render_options_section(w)?;

    let mut roff = Roff::new();
    if !parts.examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        // No-fill: one command a line, as typed.
        roff.control("nf", []);
        roff.control("RS", ["4"]);
        for line in &parts.examples {
            roff.text([roman(line.trim_start())]);
        }
        roff.control("RE", []);
        roff.control("fi", []);
    }
    roff.control("SH", ["EXIT STATUS"]);
    let status = parts.exit_status.as_deref().unwrap_or(crate::EXIT_HELP);
    match exit_codes(status) {
        Some(codes) => {
            for (code, meaning) in codes {
                roff.control("TP", []);
                roff.text([roman(code)]);
                roff.text([roman(meaning)]);
            }
        }
        None => {
            roff.text([roman(status)]);
        }
    }
    roff.to_writer(w)?;
    if has_version {
        man.render_version_section(w)?;
    }

    out.extend_from_slice(&preamble);
    let mut rest = &page[..];
    while !rest.is_empty() {
        if rest.starts_with(&preamble) {
            rest = &rest[preamble.len()..];
            continue;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        out.extend_from_slice(&rest[..end]);
        rest = &rest[end..];
    }
    Ok(())
}

/// `TOOL [OPTIONS] DEVICE...`, and `TOOL --generate KIND` when the tool has that option: clap's
/// own usage marks DEVICE optional, since `--generate` needs none.
fn synopsis(cmd: &clap::Command) -> String {
    let name = cmd.get_name();
    let mut usage = format!("{name} [OPTIONS]");
    for p in cmd.get_positionals().filter(|p| !p.is_hide_set()) {
        let value = p
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| p.get_id().to_string().to_uppercase(), |v| v.to_string());
        let many = p.get_num_args().is_some_and(|n| n.max_values() > 1);
        usage.push_str(&format!(" {value}{}", if many { "..." } else { "" }));
    }
    if let Some(g) = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some("generate"))
    {
        let value = g
            .get_value_names()
            .and_then(|v| v.first())
            .map_or("KIND", |v| v.as_str());
        usage.push_str(&format!("\n{name} --generate {value}"));
    }
    usage
}

/// A tool's `after_help` taken apart: the indented lines under `Examples:`, the other
/// paragraphs, and the `Exit status:` paragraph.
#[derive(Debug, Default, PartialEq)]
struct AfterHelp<'a> {
    examples: Vec<&'a str>,
    prose: Vec<Vec<&'a str>>,
    /// The paragraph's lines joined by spaces.
    exit_status: Option<String>,
}

impl<'a> AfterHelp<'a> {
    fn split(text: &'a str) -> AfterHelp<'a> {
        let mut parts = AfterHelp::default();
        let mut para: Vec<&'a str> = Vec::new();
        for line in text.lines().chain([""]) {
            if !line.trim().is_empty() {
                para.push(line);
                continue;
            }
            match para.first().map(|l| l.trim()) {
                None => {}
                Some("Examples:") => parts.examples.extend(&para[1..]),
                Some(l) if l.starts_with("Exit status:") => {
                    parts.exit_status =
                        Some(para.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "))
                }
                Some(_) => parts.prose.push(para.clone()),
            }
            para.clear();
        }
        parts
    }
}

/// `Exit status: 0 good; 1 damaged; 2 usage.` as `[("0", "good"), ..]`; `None` when the text
/// is not in that form.
fn exit_codes(text: &str) -> Option<Vec<(&str, &str)>> {
    let list = text
        .strip_prefix("Exit status:")?
        .trim()
        .trim_end_matches('.');
    list.split(';')
        .map(|item| {
            let (code, meaning) = item.trim().split_once(' ')?;
            code.parse::<u8>().ok()?;
            Some((code, meaning.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: &str = "Examples:
  tool a b        # one
  tool --x c

Some prose
on two lines.

Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error.";

    #[test]
    fn after_help_splits_into_examples_prose_and_exit_status() {
        let p = AfterHelp::split(AFTER);
        assert_eq!(p.examples, ["  tool a b        # one", "  tool --x c"]);
        assert_eq!(p.prose, [vec!["Some prose", "on two lines."]]);
        assert_eq!(
            p.exit_status.as_deref(),
            Some("Exit status: 0 good; 1 media damaged or incomplete; 2 usage or I/O error.")
        );
        assert_eq!(AfterHelp::split(""), AfterHelp::default());
    }

    #[test]
    fn exit_codes_are_parsed_or_refused() {
        assert_eq!(
            exit_codes(crate::EXIT_HELP).unwrap(),
            [
                ("0", "good"),
                ("1", "media damaged or incomplete"),
                ("2", "usage or I/O error, or unsupported media"),
                ("130", "interrupted (SIGINT or SIGTERM)")
            ]
        );
        assert_eq!(exit_codes("Exit status: zero is good."), None);
        assert_eq!(exit_codes("0 good"), None);
    }

    fn tool() -> clap::Command {
        clap::Command::new("tool")
            .version("1.2.3")
            .about("Do a thing.")
            .after_help(AFTER)
            .arg(
                clap::Arg::new("max-size")
                    .long("max-size")
                    .help("The size."),
            )
    }

    #[test]
    fn man_page_has_every_section() {
        let page = String::from_utf8(generate(tool(), Kind::Man).unwrap()).unwrap();
        assert!(page.contains(".TH TOOL 1"), "{page}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXAMPLES",
            "\"EXIT STATUS\"",
            "VERSION",
        ] {
            assert!(
                page.contains(&format!(".SH {section}\n")),
                "{section}: {page}"
            );
        }
        assert!(page.contains("\\-\\-max\\-size"), "{page}");
        assert!(page.contains("tool \\-\\-x c\n"), "{page}");
        assert!(page.contains(".TP\n2\nusage or I/O error\n"), "{page}");
        // The exit status is not repeated as prose, nor left in an EXTRA section.
        assert!(!page.contains("Exit status:"), "{page}");
        assert!(!page.contains("EXTRA"), "{page}");
        let preamble = page.lines().next().unwrap();
        assert!(preamble.starts_with(".ie"), "{page}");
        assert_eq!(page.matches(preamble).count(), 1, "{page}");
    }

    #[test]
    fn completions_name_the_tool() {
        let bash = generate(tool(), Kind::CompleteBash).unwrap();
        assert!(String::from_utf8(bash)
            .unwrap()
            .contains("complete -F _tool"));
        let fish = String::from_utf8(generate(tool(), Kind::CompleteFish).unwrap()).unwrap();
        assert!(fish.contains("complete -c tool -l max-size"), "{fish}");
        let zsh = String::from_utf8(generate(tool(), Kind::CompleteZsh).unwrap()).unwrap();
        assert!(zsh.starts_with("#compdef tool"), "{zsh}");
    }
}
