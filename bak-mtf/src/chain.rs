//! The restore sequence of a database, from the HEADERONLY rows of its backups (`bak-header
//! --chain`): the latest full backup, the latest differential based on it, then the log
//! backups that follow on by LSN; and where the sequence breaks. Over typed report values
//! ([`SetInfo`], [`Lsn`]): it reads no media, so any listing can be put in order.
//!
//! The rules are SQL Server's (RESTORE's own checks, as DBAs' tools such as dbatools apply
//! them to HEADERONLY output):
//!
//! * a differential belongs to the full backup whose BackupSetGUID is its DifferentialBaseGUID
//!   (or, without GUIDs, whose CheckpointLSN is its DatabaseBackupLSN);
//! * a log backup can be restored next when it holds the point the restore has reached (the
//!   LastLSN of the full or differential before it, then of the log before it): `FirstLSN <=
//!   point < LastLSN`; one that ends at or before the point is not needed; one that starts after
//!   it leaves a gap, log backups that are missing.
//!
//! Backups are grouped by database: DatabaseName and FamilyGUID together (two databases
//! restored from one may share a family GUID; two unrelated ones, a name).

use serde::Serialize;

use bak_core::report::{Lsn, SetInfo, Timestamp};

/// What a row is in a restore sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The full backup the sequence starts from.
    Full,
    /// The differential restored after the full.
    Differential,
    /// A log backup restored in the sequence.
    Log,
    /// A backup the sequence needs that was not given (a full backup, or log backups filling a
    /// gap): the chain breaks there.
    Missing,
    /// Given, but not in the sequence: an older full or differential, a log that ends before
    /// the point reached, a backup of another kind.
    NotNeeded,
}

impl Role {
    /// The word: "full", "differential", "log", "missing", "not-needed".
    pub fn word(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::Differential => "differential",
            Role::Log => "log",
            Role::Missing => "missing",
            Role::NotNeeded => "not-needed",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

/// One row of `bak-header --chain`: a backup given, or one the sequence lacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChainRow {
    /// The database.
    pub database_name: Option<String>,
    /// Its family GUID.
    #[serde(rename = "FamilyGUID")]
    pub family_guid: Option<String>,
    /// The place in the restore sequence, from 1 (missing backups count); null for a backup
    /// that is not in it.
    pub step: Option<u32>,
    /// What the row is in the sequence.
    pub role: Role,
    /// The device(s) the backup is on; null for a missing one.
    pub device: Option<String>,
    /// Its position on them (RESTORE's FILE = n).
    pub position: Option<u32>,
    /// Its type, in SQL Server's words.
    pub backup_type_description: Option<String>,
    /// When it started.
    pub backup_start_date: Option<Timestamp>,
    /// First LSN it holds (a missing log range: where it starts).
    #[serde(rename = "FirstLSN")]
    pub first_lsn: Option<Lsn>,
    /// The LSN after the last it holds (a missing log range: where it ends).
    #[serde(rename = "LastLSN")]
    pub last_lsn: Option<Lsn>,
    /// Its CheckpointLSN.
    #[serde(rename = "CheckpointLSN")]
    pub checkpoint_lsn: Option<Lsn>,
    /// Its DatabaseBackupLSN.
    #[serde(rename = "DatabaseBackupLSN")]
    pub database_backup_lsn: Option<Lsn>,
    /// Its BackupSetGUID.
    #[serde(rename = "BackupSetGUID")]
    pub backup_set_guid: Option<String>,
    /// False when the chain of this database breaks somewhere (every row of it says so).
    pub chain_whole: bool,
    /// Why the row is where it is, in a sentence.
    pub note: String,
}

/// The restore sequence of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The database.
    pub database_name: Option<String>,
    /// Its family GUID.
    pub family_guid: Option<String>,
    /// The sequence, then the backups not in it (by LSN).
    pub rows: Vec<ChainRow>,
    /// Where the sequence breaks, a sentence each; empty when it is whole.
    pub breaks: Vec<String>,
}

impl Chain {
    /// True when the sequence is whole: every backup it needs was given and can be restored.
    pub fn is_whole(&self) -> bool {
        self.breaks.is_empty()
    }
}

/// The backup types the chain places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Full,
    Differential,
    Log,
    Other,
}

fn kind(s: &SetInfo) -> Kind {
    match s.backup_type {
        Some(1) => Kind::Full,
        Some(5) => Kind::Differential,
        Some(2) => Kind::Log,
        _ => Kind::Other,
    }
}

fn first(s: &SetInfo) -> Option<Lsn> {
    s.sql.as_ref()?.first_lsn
}

fn last(s: &SetInfo) -> Option<Lsn> {
    s.sql.as_ref()?.last_lsn
}

fn checkpoint(s: &SetInfo) -> Option<Lsn> {
    s.sql.as_ref()?.checkpoint_lsn
}

fn db_backup(s: &SetInfo) -> Option<Lsn> {
    s.sql.as_ref()?.database_backup_lsn
}

fn lsn_text(l: Option<Lsn>) -> String {
    l.map_or_else(|| "(unknown)".to_string(), |l| l.to_string())
}

/// Whether differential `d` is based on full backup `f`.
fn based_on(d: &SetInfo, f: &SetInfo) -> bool {
    let dq = d.sql.as_ref();
    match (
        dq.and_then(|q| q.differential_base_guid.as_ref()),
        f.backup_set_guid.as_ref(),
    ) {
        (Some(base), Some(guid)) => base == guid,
        _ => db_backup(d).is_some() && db_backup(d) == checkpoint(f),
    }
}

/// True for a copy-only backup (HEADERONLY's IsCopyOnly).
fn copy_only(s: &SetInfo) -> bool {
    s.sql.as_ref().and_then(|q| q.is_copy_only) == Some(true)
}

/// Whether differential `d`, not based on full backup `f`, is based on a later full: then a
/// full made after `f` is missing. Every differential made after a full is based on it or a
/// later one, unless that full is copy-only (COPY_ONLY leaves the differential base as it
/// was): after a copy-only full, what counts is the base the differential names, whose
/// CheckpointLSN is its DatabaseBackupLSN.
fn base_after(d: &SetInfo, f: &SetInfo) -> bool {
    if copy_only(f) {
        db_backup(d).or(checkpoint(d)) > checkpoint(f)
    } else {
        checkpoint(d) > checkpoint(f)
    }
}

/// The name of a backup in a note.
fn named(s: &SetInfo) -> String {
    let what = s
        .backup_type_description
        .as_deref()
        .unwrap_or("backup")
        .to_lowercase();
    match &s.origin {
        Some(o) => format!("the {what} backup on {} (set {})", o.device, s.position),
        None => format!("the {what} backup of set {}", s.position),
    }
}

/// What tells databases apart: DatabaseName and FamilyGUID.
type Database = (Option<String>, Option<String>);

/// The rows of every database among `sets`, each database's restore sequence worked out on
/// its own; databases in the order their first backup was given.
pub fn chains(sets: &[SetInfo]) -> Vec<Chain> {
    let mut groups: Vec<(Database, Vec<&SetInfo>)> = Vec::new();
    for s in sets {
        let key = (
            s.database_name.clone(),
            s.sql.as_ref().and_then(|q| q.family_guid.clone()),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(s),
            None => groups.push((key, vec![s])),
        }
    }
    groups
        .into_iter()
        .map(|((db, family), v)| chain_of(db, family, &v))
        .collect()
}

/// One database's sequence.
struct Builder<'a> {
    db: Option<String>,
    family: Option<String>,
    rows: Vec<ChainRow>,
    breaks: Vec<String>,
    step: u32,
    placed: Vec<&'a SetInfo>,
}

impl<'a> Builder<'a> {
    fn row(&self, s: &SetInfo, step: Option<u32>, role: Role, note: String) -> ChainRow {
        ChainRow {
            database_name: self.db.clone(),
            family_guid: self.family.clone(),
            step,
            role,
            device: s.origin.as_ref().map(|o| o.device.clone()),
            position: Some(s.position),
            backup_type_description: s.backup_type_description.clone(),
            backup_start_date: s.backup_start_date,
            first_lsn: first(s),
            last_lsn: last(s),
            checkpoint_lsn: checkpoint(s),
            database_backup_lsn: db_backup(s),
            backup_set_guid: s.backup_set_guid.clone(),
            chain_whole: true,
            note,
        }
    }

    /// `s` is the next step of the sequence.
    fn restore(&mut self, s: &'a SetInfo, role: Role, mut note: String) {
        self.step += 1;
        if !s.is_complete {
            let why = format!(
                "{} is not complete (a family is missing or the set is cut short): it cannot \
                 be restored as given",
                named(s)
            );
            note = format!("{note}; {why}");
            self.breaks.push(why);
        }
        let r = self.row(s, Some(self.step), role, note);
        self.rows.push(r);
        self.placed.push(s);
    }

    /// A backup the sequence needs and lacks: the chain breaks here. `known`: its
    /// CheckpointLSN and BackupSetGUID, where a backup given names them.
    fn missing(
        &mut self,
        what: &str,
        first: Option<Lsn>,
        last: Option<Lsn>,
        known: (Option<Lsn>, Option<String>),
        why: String,
    ) {
        self.step += 1;
        self.breaks.push(why.clone());
        self.rows.push(ChainRow {
            database_name: self.db.clone(),
            family_guid: self.family.clone(),
            step: Some(self.step),
            role: Role::Missing,
            device: None,
            position: None,
            backup_type_description: Some(what.to_string()),
            backup_start_date: None,
            first_lsn: first,
            last_lsn: last,
            checkpoint_lsn: known.0,
            database_backup_lsn: None,
            backup_set_guid: known.1,
            chain_whole: true,
            note: why,
        });
    }
}

fn chain_of(db: Option<String>, family: Option<String>, sets: &[&SetInfo]) -> Chain {
    let mut b = Builder {
        db: db.clone(),
        family: family.clone(),
        rows: Vec::new(),
        breaks: Vec::new(),
        step: 0,
        placed: Vec::new(),
    };
    let name = db.as_deref().unwrap_or("(unnamed database)");
    let with_lsns = |k: Kind| -> Vec<&SetInfo> {
        sets.iter()
            .copied()
            .filter(|s| kind(s) == k && first(s).is_some() && last(s).is_some())
            .collect()
    };
    let (fulls, diffs, logs) = (
        with_lsns(Kind::Full),
        with_lsns(Kind::Differential),
        with_lsns(Kind::Log),
    );
    // The latest full backup, a complete one where there is one.
    let latest = fulls
        .iter()
        .copied()
        .max_by_key(|s| (s.is_complete, last(s), s.backup_start_date));
    // Unless it is copy-only and a differential made since, on an earlier full given (as
    // COPY_ONLY leaves the base), reaches further: then the sequence starts from that full.
    let full = match latest {
        Some(c) if copy_only(c) => diffs
            .iter()
            .copied()
            .filter(|d| last(d) > last(c))
            .filter_map(|d| {
                fulls
                    .iter()
                    .copied()
                    .find(|g| !copy_only(g) && based_on(d, g))
                    .map(|g| (d, g))
            })
            .max_by_key(|(d, _)| (d.is_complete, last(d), d.backup_start_date))
            .map(|(_, g)| g)
            .or(latest),
        _ => latest,
    };
    // The latest differential: based on that full; without a full, the latest of all (it
    // tells which full is missing).
    let diff = diffs
        .iter()
        .copied()
        .filter(|d| full.is_none_or(|f| based_on(d, f)))
        .max_by_key(|s| (s.is_complete, last(s), s.backup_start_date));
    // A differential made after the latest full but on another base: a later full is missing.
    let orphan = full.and_then(|f| {
        diffs
            .iter()
            .copied()
            .filter(|d| !based_on(d, f) && base_after(d, f))
            .max_by_key(|s| last(s))
    });
    let mut point: Option<Lsn> = None;
    match (full, diff) {
        (Some(f), _) => {
            b.restore(
                f,
                Role::Full,
                format!("the latest full backup of {name}: the restore starts here"),
            );
            point = last(f);
        }
        (None, Some(d)) => {
            let guid = d
                .sql
                .as_ref()
                .and_then(|q| q.differential_base_guid.clone());
            let base = guid
                .as_ref()
                .map_or_else(String::new, |g| format!(", BackupSetGUID {g}"));
            b.missing(
                "Database",
                None,
                None,
                (db_backup(d), guid),
                format!(
                    "no full backup of {name} given: {} is based on the full backup with \
                     CheckpointLSN {}{base}",
                    named(d),
                    lsn_text(db_backup(d)),
                ),
            );
        }
        (None, None) => {
            let earliest = logs.iter().copied().min_by_key(|s| first(s));
            let why = match earliest {
                Some(l) => format!(
                    "no full backup of {name} given: the log backups need one whose LastLSN \
                     lies in {} (the first log's range, from {}); the latest full before them \
                     had CheckpointLSN {}",
                    named(l),
                    lsn_text(first(l)),
                    lsn_text(db_backup(l)),
                ),
                None => format!("no full backup of {name} given"),
            };
            b.missing("Database", None, None, (None, None), why);
            point = earliest.and_then(first);
        }
    }
    if let Some(o) = orphan {
        let base = o
            .sql
            .as_ref()
            .and_then(|q| q.differential_base_guid.clone())
            .map_or_else(String::new, |g| format!(", BackupSetGUID {g}"));
        let why = format!(
            "{} is based on a full backup that was not given (CheckpointLSN {}{base}), made \
             after the latest full given",
            named(o),
            lsn_text(db_backup(o)),
        );
        b.breaks.push(why);
    }
    if let Some(d) = diff {
        let note = match full {
            Some(f) => format!("the latest differential based on {}", named(f)),
            None => "the latest differential; its full backup is missing".to_string(),
        };
        b.restore(d, Role::Differential, note);
        point = last(d);
    }
    // The log backups, from the point reached: each one that holds it, the one reaching
    // furthest first; a gap when none does and later ones remain.
    let mut left: Vec<&SetInfo> = logs.clone();
    while let Some(at) = point {
        left.retain(|l| last(l) > Some(at));
        let next = left
            .iter()
            .copied()
            .filter(|l| first(l) <= Some(at))
            .max_by_key(|l| (l.is_complete, last(l), l.backup_start_date));
        if let Some(l) = next {
            let note = if b.placed.is_empty() {
                "the earliest log backup given".to_string()
            } else {
                format!("follows on: holds LSN {at}, where the restore has got to")
            };
            b.restore(l, Role::Log, note);
            point = last(l);
            continue;
        }
        let Some(after) = left.iter().copied().min_by_key(|l| first(l)) else {
            break;
        };
        let gap_end = first(after);
        b.missing(
            "Transaction Log",
            Some(at),
            gap_end,
            (None, None),
            format!(
                "log backups of {name} from LSN {at} to {} are missing: {} starts there, \
                 after the point the restore has got to",
                lsn_text(gap_end),
                named(after),
            ),
        );
        point = gap_end;
    }
    // Everything else given, by LSN, with the reason it is not in the sequence.
    let mut rest: Vec<&SetInfo> = sets
        .iter()
        .copied()
        .filter(|s| !b.placed.iter().any(|p| std::ptr::eq(*p, *s)))
        .collect();
    rest.sort_by_key(|s| (first(s), s.position));
    for s in rest {
        let note = not_needed(s, full, diff, &b);
        let r = b.row(s, None, Role::NotNeeded, note);
        b.rows.push(r);
    }
    let whole = b.breaks.is_empty();
    for r in &mut b.rows {
        r.chain_whole = whole;
    }
    Chain {
        database_name: db,
        family_guid: family,
        rows: b.rows,
        breaks: b.breaks,
    }
}

/// Why a backup given is not in the sequence.
fn not_needed(s: &SetInfo, full: Option<&SetInfo>, diff: Option<&SetInfo>, b: &Builder) -> String {
    if first(s).is_none() || last(s).is_none() {
        return "its LSNs are not known: not placed".to_string();
    }
    match kind(s) {
        Kind::Other => "file, filegroup and partial backups are not placed in the chain".into(),
        Kind::Full => match full {
            Some(f) if copy_only(s) && checkpoint(s) > checkpoint(f) => format!(
                "a copy-only full backup: a differential based on {} reaches further",
                named(f)
            ),
            Some(f) => format!("an earlier full backup: {} is later", named(f)),
            None => "a full backup".into(),
        },
        Kind::Differential => match (full, diff) {
            (Some(f), _) if !based_on(s, f) && base_after(s, f) => {
                "based on a later full backup that was not given".into()
            }
            (Some(f), _) if !based_on(s, f) => {
                format!("based on an earlier full backup, not on {}", named(f))
            }
            (_, Some(d)) => format!("an earlier differential: {} is later", named(d)),
            _ => "a differential".into(),
        },
        Kind::Log => {
            let reached = b
                .placed
                .iter()
                .filter_map(|p| last(p))
                .max()
                .map_or_else(|| "(unknown)".to_string(), |l| l.to_string());
            match b
                .placed
                .iter()
                .find(|p| kind(p) != Kind::Log && last(p) >= last(s))
            {
                Some(p) => format!(
                    "ends at LSN {}, which {} already covers",
                    lsn_text(last(s)),
                    named(p)
                ),
                None => format!(
                    "ends at LSN {}: the log backups placed reach {reached}",
                    lsn_text(last(s))
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bak_core::report::{Origin, SqlServerSet};

    fn l(seq: u32, block: u32) -> Option<Lsn> {
        Some(Lsn {
            seq,
            block,
            slot: 1,
        })
    }

    /// A backup: type code, position, First/Last/Checkpoint/DatabaseBackup LSN blocks (seq 1).
    fn set(code: u32, pos: u32, lsns: [u32; 4]) -> SetInfo {
        SetInfo {
            position: pos,
            backup_type: Some(code),
            backup_type_description: Some(
                match code {
                    1 => "Database",
                    5 => "Database Differential",
                    _ => "Transaction Log",
                }
                .into(),
            ),
            backup_set_guid: Some(format!("guid-{pos}")),
            database_name: Some("db".into()),
            is_complete: true,
            sql: Some(SqlServerSet {
                first_lsn: l(1, lsns[0]),
                last_lsn: l(1, lsns[1]),
                checkpoint_lsn: l(1, lsns[2]),
                database_backup_lsn: l(1, lsns[3]),
                family_guid: Some("fam".into()),
                ..Default::default()
            }),
            origin: Some(Origin {
                device: format!("dev{pos}.bak"),
                media_set_id: None,
            }),
            ..Default::default()
        }
    }

    fn diff_of(pos: u32, lsns: [u32; 4], base: &SetInfo) -> SetInfo {
        let mut d = set(5, pos, lsns);
        d.sql.as_mut().unwrap().differential_base_guid = base.backup_set_guid.clone();
        d
    }

    fn roles(c: &Chain) -> Vec<(Option<u32>, Role, Option<u32>)> {
        c.rows
            .iter()
            .map(|r| (r.step, r.role, r.position))
            .collect()
    }

    #[test]
    fn full_differential_and_logs_in_order() {
        let full = set(1, 1, [100, 120, 100, 0]);
        let old_log = set(2, 2, [50, 110, 100, 0]);
        let log1 = set(2, 3, [110, 150, 130, 100]);
        let diff = diff_of(4, [160, 170, 160, 100], &full);
        let log2 = set(2, 5, [150, 200, 180, 100]);
        let log3 = set(2, 6, [200, 230, 210, 100]);
        let c = &chains(&[log3.clone(), full.clone(), old_log, log1, diff, log2, log3])[0];
        assert!(c.is_whole(), "{:?}", c.breaks);
        assert_eq!(
            roles(c),
            vec![
                (Some(1), Role::Full, Some(1)),
                (Some(2), Role::Differential, Some(4)),
                (Some(3), Role::Log, Some(5)),
                (Some(4), Role::Log, Some(6)),
                (None, Role::NotNeeded, Some(2)),
                (None, Role::NotNeeded, Some(3)),
                (None, Role::NotNeeded, Some(6)),
            ]
        );
        assert!(c.rows.iter().all(|r| r.chain_whole));
        assert!(
            c.rows[5].note.contains("already covers"),
            "{}",
            c.rows[5].note
        );
    }

    #[test]
    fn a_gap_in_the_logs_is_a_missing_step_and_breaks_the_chain() {
        let full = set(1, 1, [100, 120, 100, 0]);
        let log1 = set(2, 2, [110, 150, 130, 100]);
        let log3 = set(2, 3, [180, 230, 210, 100]);
        let c = &chains(&[full, log1, log3])[0];
        assert!(!c.is_whole());
        assert_eq!(
            roles(c),
            vec![
                (Some(1), Role::Full, Some(1)),
                (Some(2), Role::Log, Some(2)),
                (Some(3), Role::Missing, None),
                (Some(4), Role::Log, Some(3)),
            ]
        );
        assert_eq!(
            (c.rows[2].first_lsn, c.rows[2].last_lsn),
            (l(1, 150), l(1, 180))
        );
        assert!(c.breaks[0].contains("from LSN 1000000015000001 to 1000000018000001"));
        assert!(c.rows.iter().all(|r| !r.chain_whole));
    }

    #[test]
    fn a_log_that_starts_after_the_full_ends_does_not_follow() {
        let full = set(1, 1, [100, 120, 100, 0]);
        let late = set(2, 2, [130, 150, 140, 100]);
        let c = &chains(&[full, late])[0];
        assert!(!c.is_whole());
        assert_eq!(c.rows[1].role, Role::Missing);
    }

    #[test]
    fn no_full_backup_is_a_break_that_names_the_base() {
        let full = set(1, 9, [100, 120, 100, 0]);
        let diff = diff_of(1, [160, 170, 160, 100], &full);
        let log = set(2, 2, [90, 140, 100, 100]);
        let c = &chains(&[diff, log])[0];
        assert!(!c.is_whole());
        assert_eq!(
            roles(c),
            vec![
                (Some(1), Role::Missing, None),
                (Some(2), Role::Differential, Some(1)),
                (None, Role::NotNeeded, Some(2)),
            ]
        );
        assert!(c.breaks[0].contains("guid-9"), "{}", c.breaks[0]);
        // The missing full is known by what the differential names.
        assert_eq!(
            (
                c.rows[0].checkpoint_lsn,
                c.rows[0].backup_set_guid.as_deref()
            ),
            (l(1, 100), Some("guid-9"))
        );
        // Only a log: the full it needs is missing, the log is still placed after it.
        let only = set(2, 2, [90, 140, 100, 80]);
        let c = &chains(&[only])[0];
        assert_eq!(
            roles(c),
            vec![
                (Some(1), Role::Missing, None),
                (Some(2), Role::Log, Some(2))
            ]
        );
        assert!(!c.is_whole());
    }

    #[test]
    fn a_differential_on_a_full_not_given_breaks_the_chain() {
        let full = set(1, 1, [100, 120, 100, 0]);
        let other = set(1, 7, [300, 320, 300, 100]);
        let diff = diff_of(2, [400, 420, 400, 300], &other);
        let c = &chains(&[full.clone(), diff])[0];
        assert!(!c.is_whole());
        assert_eq!(c.rows[1].role, Role::NotNeeded);
        assert!(c.rows[1].note.contains("later full backup"));
        // An older differential of an older full: simply not needed.
        let older = set(1, 3, [10, 20, 10, 0]);
        let old_diff = diff_of(4, [30, 40, 30, 10], &older);
        let c = &chains(&[full, old_diff, older])[0];
        assert!(c.is_whole(), "{:?}", c.breaks);
    }

    #[test]
    fn a_copy_only_full_is_no_differential_base() {
        let full = set(1, 1, [100, 120, 100, 0]);
        let mut copy = set(1, 2, [200, 220, 200, 100]);
        copy.sql.as_mut().unwrap().is_copy_only = Some(true);
        // A differential on full 1 made before the copy-only full, logs from the copy-only
        // full: the copy-only full and the logs; the differential is on an earlier base.
        let early = diff_of(3, [150, 170, 150, 100], &full);
        let log = set(2, 4, [210, 400, 210, 100]);
        let c = &chains(&[full.clone(), copy.clone(), early, log])[0];
        assert!(c.is_whole(), "{:?}", c.breaks);
        assert_eq!(
            roles(c)[..2],
            [
                (Some(1), Role::Full, Some(2)),
                (Some(2), Role::Log, Some(4))
            ]
        );
        let d = c.rows.iter().find(|r| r.position == Some(3)).unwrap();
        assert_eq!(d.role, Role::NotNeeded);
        assert!(d.note.contains("earlier full backup"), "{}", d.note);
        // A differential on full 1 made after the copy-only full (COPY_ONLY leaves the base):
        // it reaches further, so full 1 and the differential; the copy-only full not needed.
        let diff = diff_of(5, [300, 320, 300, 100], &full);
        let c = &chains(&[full.clone(), copy.clone(), diff.clone()])[0];
        assert!(c.is_whole(), "{:?}", c.breaks);
        assert_eq!(
            roles(c)[..2],
            [
                (Some(1), Role::Full, Some(1)),
                (Some(2), Role::Differential, Some(5))
            ]
        );
        let n = c.rows.iter().find(|r| r.position == Some(2)).unwrap();
        assert!(n.note.contains("copy-only"), "{}", n.note);
        // The same full 2 not copy-only: the differential after it is on another base, so a
        // later full is missing.
        let mut plain = copy.clone();
        plain.sql.as_mut().unwrap().is_copy_only = Some(false);
        assert!(!chains(&[full.clone(), plain, diff])[0].is_whole());
        // After a copy-only full, a differential whose base is later than it still breaks.
        let other = set(1, 7, [250, 260, 250, 100]);
        let late = diff_of(6, [300, 320, 300, 250], &other);
        let c = &chains(&[full, copy, late])[0];
        assert!(!c.is_whole());
        assert!(c.breaks[0].contains("not given"), "{:?}", c.breaks);
    }

    #[test]
    fn an_incomplete_step_breaks_the_chain() {
        let mut full = set(1, 1, [100, 120, 100, 0]);
        full.is_complete = false;
        let c = &chains(&[full])[0];
        assert!(!c.is_whole() && c.rows[0].note.contains("not complete"));
    }

    #[test]
    fn databases_are_told_apart_by_name_and_family() {
        let a = set(1, 1, [100, 120, 100, 0]);
        let mut b = set(1, 2, [100, 120, 100, 0]);
        b.sql.as_mut().unwrap().family_guid = Some("other".into());
        let mut c = set(1, 3, [100, 120, 100, 0]);
        c.database_name = Some("copy".into());
        let all = chains(&[a, b, c]);
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(Chain::is_whole));
    }
}
