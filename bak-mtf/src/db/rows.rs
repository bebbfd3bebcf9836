//! A table's rows, decoded from its pages and written as CSV or JSON lines.

use std::io::Write;

use bak_core::error::{Error, Location, Result};

use super::catalog::{Column, Scanner, Table};
use super::page::{records_end, slot_offset, Header};
use super::record::{self, Record};
use super::types::{self, json_string, Value};
use super::{lob, Database};

/// How `bak-read --table` writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowFormat {
    /// CSV with a header line of column names; NULL is an empty field, an empty string `""`.
    #[default]
    Csv,
    /// One JSON object per line, keys the column names, NULL as null.
    Jsonl,
}

/// What writing a table's rows did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowsOutcome {
    /// Rows written.
    pub rows: u64,
    /// Data pages read.
    pub pages: u64,
}

fn csv_field(s: &str) -> String {
    if s.is_empty() {
        "\"\"".into()
    } else if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The value of column `c` in a record written before the column was added by ALTER TABLE
/// (the record has fewer columns than the column's place): what SQL Server gives for it, the
/// default the catalog keeps for such rows (sysseobjvalues), or NULL when it keeps none.
/// `None` when the record holds the column.
fn added_later(rec: &Record<'_>, c: &Column) -> Option<std::result::Result<Value, String>> {
    let p = c.phys.as_ref()?;
    if p.nullbit == 0 || usize::from(p.nullbit) <= rec.columns {
        return None;
    }
    Some(match &p.default {
        Some(d) => types::variant(&c.ty, d).map_err(|e| format!("added by ALTER TABLE: {}", e.0)),
        // SQL Server rewrites every row when it adds a NOT NULL column it keeps no default for.
        None if !c.nullable => Err(
            "a NOT NULL column missing from a record written before it was added, and the catalog keeps no default for it".into(),
        ),
        None => Ok(Value::Null),
    })
}

/// Append `s` to `line` as [`csv_field`] writes it.
fn push_csv(line: &mut String, s: &str) {
    if s.is_empty() {
        line.push_str("\"\"");
    } else if s.contains([',', '"', '\n', '\r']) {
        line.push('"');
        for ch in s.chars() {
            if ch == '"' {
                line.push('"');
            }
            line.push(ch);
        }
        line.push('"');
    } else {
        line.push_str(s);
    }
}

impl Database<'_> {
    /// The table named `name`: `schema.table` (brackets and quotes allowed), or a table name
    /// alone when one schema has it; exact case first, then any case when that is unique.
    fn find(&self, name: &str) -> Result<&Table> {
        let clean = |s: &str| {
            s.trim()
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string()
        };
        let full = |t: &Table| format!("{}.{}", t.schema, t.name);
        let wanted = match name.split_once("].[").or_else(|| name.split_once("\".\"")) {
            Some((a, b)) => format!("{}.{}", clean(a), clean(b)),
            None => clean(name),
        };
        let tables = &self.catalog.tables;
        fn pick(m: Vec<&Table>) -> Option<&Table> {
            (m.len() == 1).then(|| m[0])
        }
        pick(tables.iter().filter(|t| full(t) == wanted).collect())
            .or_else(|| pick(tables.iter().filter(|t| t.name == wanted).collect()))
            .or_else(|| {
                pick(
                    tables
                        .iter()
                        .filter(|t| {
                            full(t).eq_ignore_ascii_case(&wanted)
                                || t.name.eq_ignore_ascii_case(&wanted)
                        })
                        .collect(),
                )
            })
            .ok_or_else(|| {
                let all: Vec<String> = tables.iter().map(full).collect();
                Error::refused(
                    bak_core::Refusal::Usage,
                    format!(
                        "backup set {} has no table {name}; its tables: {}",
                        self.position,
                        if all.is_empty() {
                            "none".into()
                        } else {
                            all.join(", ")
                        }
                    ),
                )
            })
    }

    /// The value of column `c` in record `rec`.
    fn value(&self, rec: &Record<'_>, c: &Column) -> std::result::Result<Value, String> {
        let Some(p) = &c.phys else {
            return Ok(Value::Null);
        };
        if let Some(v) = added_later(rec, c) {
            return v;
        }
        if rec.is_null(usize::from(p.nullbit)) {
            return Ok(Value::Null);
        }
        if p.offset > 0 {
            let off = p.offset as usize;
            if c.ty.xtype == types::x::BIT {
                return Ok(match rec.fixed(off, 1) {
                    Some(b) => Value::Bool(b[0] >> (p.bitpos & 7) & 1 == 1),
                    None => Value::Null,
                });
            }
            let len =
                p.ty.fixed_len()
                    .or_else(|| c.ty.fixed_len())
                    .ok_or_else(|| format!("{} stored as a fixed column", c.ty.name()))?;
            return match rec.fixed(off, len) {
                Some(b) => types::decode(&c.ty, b).map_err(|e| e.0),
                None => Ok(Value::Null),
            };
        }
        let Some(v) = rec.var(usize::from(p.offset.unsigned_abs())) else {
            return Ok(Value::Null);
        };
        // A 16-byte complex column is a text pointer: text, ntext and image always, the (max)
        // types with "large value types out of row" (SharePoint's); an in-row root is 12 bytes
        // and 12 per fragment, never 16.
        let bytes = if c.ty.is_lob() || (v.complex && v.bytes.len() == 16) {
            lob::text_pointer(&self.store, v.bytes)?
        } else if v.complex {
            lob::in_row_root(&self.store, v.bytes)?
        } else {
            return types::decode(&c.ty, v.bytes).map_err(|e| e.0);
        };
        types::decode(&c.ty, &bytes).map_err(|e| e.0)
    }

    /// Write the rows of table `name` to `out` (named `out_name` in messages). A table whose
    /// storage or columns this reader does not decode is refused, naming what.
    pub fn write_rows(
        &self,
        name: &str,
        format: RowFormat,
        out: &mut dyn Write,
        out_name: &str,
    ) -> Result<RowsOutcome> {
        let t = self.find(name)?;
        let shown = format!("{}.{}", t.schema, t.name);
        if !t.unsupported.is_empty() {
            return Err(Error::Unsupported {
                device: self.device.clone(),
                what: format!(
                    "table {shown} cannot be read: {} is not decoded",
                    t.unsupported.join("; ")
                ),
            });
        }
        let cols: Vec<&Column> = t.columns.iter().filter(|c| c.phys.is_some()).collect();
        let werr = |e: std::io::Error| Error::io(out_name, "write", e);
        let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
        if format == RowFormat::Csv {
            let head: Vec<String> = cols.iter().map(|c| csv_field(&c.name)).collect();
            writeln!(w, "{}", head.join(",")).map_err(werr)?;
        }
        let keys: Vec<String> = cols.iter().map(|c| json_string(&c.name)).collect();
        let mut scan = Scanner::default();
        let mut done = RowsOutcome::default();
        let mut line = String::new();
        for r in &t.rowsets {
            let Some(au) = &r.in_row else { continue };
            let pages = scan
                .data_pages(&self.store, au, r.index == 1)
                .map_err(|e| {
                    super::catalog_error(&self.device, self.position, self.partial(), e)
                })?;
            for id in pages {
                let p = self.store.page(id)?.ok_or_else(|| {
                    Error::corrupt(
                        Location::device(&self.device).set(self.position),
                        format!("page {id} of {shown} is not in the backup"),
                    )
                })?;
                done.pages += 1;
                let Some(h) = Header::parse(&p) else { continue };
                let end = records_end(h.slots);
                for slot in 0..h.slots {
                    let Some(off) = slot_offset(&p, h.slots, slot) else {
                        continue;
                    };
                    let bytes = &p[off..end];
                    if !record::is_row(bytes) {
                        continue;
                    }
                    let bad = |what: String| {
                        Error::corrupt(
                            Location::device(&self.device).set(self.position),
                            format!("table {shown}, page {id} slot {slot}: {what}"),
                        )
                    };
                    let rec = Record::parse(bytes)
                        .map_err(|e| bad(format!("record malformed: {}", e.0)))?;
                    line.clear();
                    if format == RowFormat::Jsonl {
                        line.push('{');
                    }
                    for (i, c) in cols.iter().enumerate() {
                        let v = self
                            .value(&rec, c)
                            .map_err(|e| bad(format!("column {}: {e}", c.name)))?;
                        match format {
                            RowFormat::Csv => {
                                if i > 0 {
                                    line.push(',');
                                }
                                // Straight into the line: text quoted as csv_field
                                // quotes it, the rest as Value::text writes it, with no
                                // String per value (the allocator was a quarter of the
                                // export's time).
                                match &v {
                                    Value::Null => {}
                                    Value::Text(s) => push_csv(&mut line, s),
                                    Value::Exact(s) | Value::Time(s) | Value::Guid(s) => {
                                        line.push_str(s)
                                    }
                                    Value::Int(i) => {
                                        use std::fmt::Write as _;
                                        let _ = write!(line, "{i}");
                                    }
                                    _ => {
                                        if let Some(s) = v.text() {
                                            line.push_str(&s);
                                        }
                                    }
                                }
                            }
                            RowFormat::Jsonl => {
                                if i > 0 {
                                    line.push(',');
                                }
                                line.push_str(&keys[i]);
                                line.push(':');
                                line.push_str(&v.json());
                            }
                        }
                    }
                    if format == RowFormat::Jsonl {
                        line.push('}');
                    }
                    line.push('\n');
                    w.write_all(line.as_bytes()).map_err(werr)?;
                    done.rows += 1;
                }
            }
        }
        w.flush().map_err(werr)?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::catalog::PhysCol;
    use crate::db::record::testkit::record;
    use crate::db::types::{x, ColType};

    fn int_col(colid: u32, nullbit: u16, offset: i16, nullable: bool) -> Column {
        let ty = ColType {
            xtype: x::INT,
            length: 4,
            precision: 10,
            scale: 0,
            collation: 0,
        };
        Column {
            colid,
            name: format!("c{colid}"),
            ty: ty.clone(),
            nullable,
            identity: false,
            user_type: None,
            phys: Some(PhysCol {
                colid,
                hbcolid: colid,
                offset,
                nullbit,
                bitpos: 0,
                dropped: false,
                sparse: false,
                ty,
                default: None,
            }),
        }
    }

    /// Columns added by ALTER TABLE after a row was written: the row (written with 2 int
    /// columns) reads them as SQL Server does: the stored default, or NULL.
    #[test]
    fn csv_fields_are_pushed_as_they_are_made() {
        for s in [
            "",
            "plain",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "cr\r",
            "\"",
            "é,ü",
        ] {
            let mut line = String::from("x,");
            push_csv(&mut line, s);
            assert_eq!(line, format!("x,{}", csv_field(s)), "{s:?}");
        }
    }

    #[test]
    fn columns_added_after_a_row_read_as_their_default_or_null() {
        let old = record(&[1, 0, 0, 0, 2, 0, 0, 0], 2, &[], &[]);
        let rec = Record::parse(&old).unwrap();
        // The columns the record holds.
        assert!(added_later(&rec, &int_col(1, 1, 4, false)).is_none());
        assert!(added_later(&rec, &int_col(2, 2, 8, true)).is_none());
        // ADD c3 int NULL: NULL for the old row.
        assert_eq!(
            added_later(&rec, &int_col(3, 3, 12, true)),
            Some(Ok(Value::Null))
        );
        // ADD c4 int NOT NULL DEFAULT 7 (online, SQL Server 2012+): the default sysseobjvalues
        // keeps, a sql_variant.
        let mut c4 = int_col(4, 4, 16, false);
        let mut v = vec![x::INT, 1];
        v.extend_from_slice(&7i32.to_le_bytes());
        c4.phys.as_mut().unwrap().default = Some(v);
        assert_eq!(added_later(&rec, &c4), Some(Ok(Value::Int(7))));
        // A NOT NULL column without one: refused, not made up.
        assert!(matches!(
            added_later(&rec, &int_col(5, 5, 20, false)),
            Some(Err(_))
        ));
        // A row written after the ADD holds its own value.
        let new = record(
            &[1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0],
            4,
            &[3],
            &[],
        );
        let rec = Record::parse(&new).unwrap();
        assert!(added_later(&rec, &c4).is_none());
    }
}
