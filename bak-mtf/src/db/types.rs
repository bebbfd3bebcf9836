//! Column types: their names as T-SQL writes them, their size in a record, and their values
//! decoded from the stored bytes (all little-endian), bounded by the bytes given.

use time::{Date, Duration, Month};

use super::collation::{self, Charset};

/// A column's type as syscolpars (or, for base tables, sysrscols) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ColType {
    /// System type id (xtype).
    pub xtype: u8,
    /// Maximum length in bytes; -1 for (max).
    pub length: i32,
    pub precision: u8,
    pub scale: u8,
    pub collation: u32,
}

/// System type ids.
pub(crate) mod x {
    pub const IMAGE: u8 = 34;
    pub const TEXT: u8 = 35;
    pub const GUID: u8 = 36;
    pub const DATE: u8 = 40;
    pub const TIME: u8 = 41;
    pub const DATETIME2: u8 = 42;
    pub const DATETIMEOFFSET: u8 = 43;
    pub const TINYINT: u8 = 48;
    pub const SMALLINT: u8 = 52;
    pub const INT: u8 = 56;
    pub const SMALLDATETIME: u8 = 58;
    pub const REAL: u8 = 59;
    pub const MONEY: u8 = 60;
    pub const DATETIME: u8 = 61;
    pub const FLOAT: u8 = 62;
    pub const SQL_VARIANT: u8 = 98;
    pub const NTEXT: u8 = 99;
    pub const BIT: u8 = 104;
    pub const DECIMAL: u8 = 106;
    pub const NUMERIC: u8 = 108;
    pub const SMALLMONEY: u8 = 122;
    pub const BIGINT: u8 = 127;
    pub const VARBINARY: u8 = 165;
    pub const VARCHAR: u8 = 167;
    pub const BINARY: u8 = 173;
    pub const CHAR: u8 = 175;
    pub const TIMESTAMP: u8 = 189;
    pub const NVARCHAR: u8 = 231;
    pub const NCHAR: u8 = 239;
    pub const CLR: u8 = 240;
    pub const XML: u8 = 241;
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer type.
    Int(i64),
    /// bit.
    Bool(bool),
    /// real (kept as its 32 bits) and float.
    Real(f32),
    /// float.
    Float(f64),
    /// decimal, numeric, money, smallmoney: the exact digits, e.g. `19.9900`.
    Exact(String),
    /// Text of the character types, in UTF-8.
    Text(String),
    /// binary, varbinary, image, timestamp.
    Bytes(Vec<u8>),
    /// Dates and times, as `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS[.fff]`.
    Time(String),
    /// uniqueidentifier, as SQL Server prints it.
    Guid(String),
}

impl Value {
    /// The value as a CSV field's text (`None` for NULL: an empty field).
    pub fn text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Exact(s) | Value::Text(s) | Value::Time(s) | Value::Guid(s) => s.clone(),
            Value::Bytes(b) => hex(b),
        })
    }

    /// The value as a JSON token.
    pub fn json(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Float(f) => f.to_string(),
            // Exact digits are a JSON number as they stand.
            Value::Exact(s) => s.clone(),
            Value::Text(s) | Value::Time(s) | Value::Guid(s) => json_string(s),
            Value::Bytes(b) => json_string(&hex(b)),
        }
    }
}

/// `0x` and the bytes in upper-case hex, as T-SQL writes a binary literal.
pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("0x");
    for x in b {
        s.push_str(&format!("{x:02X}"));
    }
    s
}

/// A JSON string literal.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What this reader does not decode, named.
pub(crate) fn unsupported(t: &ColType) -> Option<String> {
    Some(match t.xtype {
        x::XML => "xml".into(),
        x::CLR => "a CLR type (hierarchyid, geometry, geography or a user CLR type)".into(),
        x::SQL_VARIANT => "sql_variant".into(),
        x::IMAGE
        | x::TEXT
        | x::NTEXT
        | x::GUID
        | x::DATE
        | x::TIME
        | x::DATETIME2
        | x::DATETIMEOFFSET
        | x::TINYINT
        | x::SMALLINT
        | x::INT
        | x::SMALLDATETIME
        | x::REAL
        | x::MONEY
        | x::DATETIME
        | x::FLOAT
        | x::BIT
        | x::DECIMAL
        | x::NUMERIC
        | x::SMALLMONEY
        | x::BIGINT
        | x::VARBINARY
        | x::VARCHAR
        | x::BINARY
        | x::CHAR
        | x::TIMESTAMP
        | x::NVARCHAR
        | x::NCHAR => {
            if matches!(t.xtype, x::CHAR | x::VARCHAR | x::TEXT) {
                match collation::charset(t.collation) {
                    Charset::Known(cp) if cp.encoding().is_some() => return None,
                    Charset::Known(cp) => format!("text in code page {}", cp.0),
                    Charset::Unknown(why) => why,
                }
            } else {
                return None;
            }
        }
        other => format!("system type id {other}"),
    })
}

impl ColType {
    /// The type as T-SQL writes it: `nvarchar(40)`, `decimal(10,2)`, `varchar(max)`.
    pub fn name(&self) -> String {
        let len = |div: i32| {
            if self.length < 0 {
                "max".to_string()
            } else {
                (self.length / div).to_string()
            }
        };
        match self.xtype {
            x::IMAGE => "image".into(),
            x::TEXT => "text".into(),
            x::GUID => "uniqueidentifier".into(),
            x::DATE => "date".into(),
            x::TIME => format!("time({})", self.scale),
            x::DATETIME2 => format!("datetime2({})", self.scale),
            x::DATETIMEOFFSET => format!("datetimeoffset({})", self.scale),
            x::TINYINT => "tinyint".into(),
            x::SMALLINT => "smallint".into(),
            x::INT => "int".into(),
            x::SMALLDATETIME => "smalldatetime".into(),
            x::REAL => "real".into(),
            x::MONEY => "money".into(),
            x::DATETIME => "datetime".into(),
            x::FLOAT => "float".into(),
            x::SQL_VARIANT => "sql_variant".into(),
            x::NTEXT => "ntext".into(),
            x::BIT => "bit".into(),
            x::DECIMAL => format!("decimal({},{})", self.precision, self.scale),
            x::NUMERIC => format!("numeric({},{})", self.precision, self.scale),
            x::SMALLMONEY => "smallmoney".into(),
            x::BIGINT => "bigint".into(),
            x::VARBINARY => format!("varbinary({})", len(1)),
            x::VARCHAR => format!("varchar({})", len(1)),
            x::BINARY => format!("binary({})", len(1)),
            x::CHAR => format!("char({})", len(1)),
            x::TIMESTAMP => "timestamp".into(),
            x::NVARCHAR => format!("nvarchar({})", len(2)),
            x::NCHAR => format!("nchar({})", len(2)),
            x::CLR => "clr".into(),
            x::XML => "xml".into(),
            other => format!("type{other}"),
        }
    }

    /// Bytes the type takes in the fixed part of a record; `None` for variable-length types.
    pub fn fixed_len(&self) -> Option<usize> {
        let time_len = |s: u8| match s {
            0..=2 => 3,
            3..=4 => 4,
            _ => 5,
        };
        Some(match self.xtype {
            x::TINYINT => 1,
            x::SMALLINT => 2,
            x::INT | x::REAL | x::SMALLMONEY | x::SMALLDATETIME => 4,
            x::BIGINT | x::FLOAT | x::MONEY | x::DATETIME | x::TIMESTAMP => 8,
            x::BIT => 1,
            x::GUID => 16,
            x::DATE => 3,
            x::TIME => time_len(self.scale),
            x::DATETIME2 => time_len(self.scale) + 3,
            x::DATETIMEOFFSET => time_len(self.scale) + 5,
            x::DECIMAL | x::NUMERIC => match self.precision {
                0..=9 => 5,
                10..=19 => 9,
                20..=28 => 13,
                _ => 17,
            },
            x::CHAR | x::BINARY | x::NCHAR => usize::try_from(self.length).ok()?,
            _ => return None,
        })
    }

    /// Whether the type's values are stored through a 16-byte text pointer (or inline, with
    /// "text in row").
    pub fn is_lob(&self) -> bool {
        matches!(self.xtype, x::TEXT | x::NTEXT | x::IMAGE)
    }
}

/// Why a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadValue(pub String);

fn int_le(b: &[u8]) -> u128 {
    b.iter()
        .rev()
        .fold(0u128, |acc, &x| (acc << 8) | u128::from(x))
}

/// Exact digits of `mag` with `scale` decimals.
fn scaled(neg: bool, mag: u128, scale: u8) -> String {
    let digits = mag.to_string();
    let s = usize::from(scale);
    let (int, frac) = if digits.len() > s {
        let (a, b) = digits.split_at(digits.len() - s);
        (a.to_string(), b.to_string())
    } else {
        ("0".to_string(), format!("{digits:0>s$}"))
    };
    let sign = if neg && mag != 0 { "-" } else { "" };
    if s == 0 {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn day(base: Date, days: i64) -> Result<Date, BadValue> {
    base.checked_add(Duration::days(days))
        .ok_or_else(|| BadValue(format!("day {days} is out of range")))
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `HH:MM:SS` and, when non-zero, `.` and `digits` digits of `frac` (units of 10^-digits s).
fn hms(secs: u64, frac: u64, digits: u8) -> String {
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 && digits > 0 {
        s.push_str(&format!(".{:0w$}", frac, w = usize::from(digits)));
    }
    s
}

fn date0() -> Date {
    Date::from_calendar_date(1, Month::January, 1).unwrap_or(Date::MIN)
}

fn date1900() -> Date {
    Date::from_calendar_date(1900, Month::January, 1).unwrap_or(Date::MIN)
}

/// A time of `scale` (the time part of time, datetime2 and datetimeoffset).
fn time_of(b: &[u8], scale: u8) -> Result<(u64, u64), BadValue> {
    let units = int_le(b) as u64;
    let per = 10u64.pow(u32::from(scale.min(7)));
    let secs = units / per;
    if secs >= 86_400 {
        return Err(BadValue(format!(
            "time {units} x 10^-{scale} s is past midnight"
        )));
    }
    Ok((secs, units % per))
}

/// Decode the stored bytes `b` of a value of type `t` (not NULL; LOB values already gathered).
pub(crate) fn decode(t: &ColType, b: &[u8]) -> Result<Value, BadValue> {
    let need = |n: usize| {
        if b.len() < n {
            Err(BadValue(format!(
                "{} value needs {n} bytes, {} are stored",
                t.name(),
                b.len()
            )))
        } else {
            Ok(&b[..n])
        }
    };
    let i = |n: usize| -> Result<i64, BadValue> {
        let s = need(n)?;
        let v = int_le(s) as u64;
        // Sign-extend from n bytes.
        let shift = 64 - 8 * n as u32;
        Ok(((v << shift) as i64) >> shift)
    };
    Ok(match t.xtype {
        x::TINYINT => Value::Int(i64::from(need(1)?[0])),
        x::SMALLINT => Value::Int(i(2)?),
        x::INT => Value::Int(i(4)?),
        x::BIGINT => Value::Int(i(8)?),
        x::BIT => Value::Bool(need(1)?[0] != 0),
        x::REAL => {
            let s = need(4)?;
            Value::Real(f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        }
        x::FLOAT => {
            let s = need(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            Value::Float(f64::from_le_bytes(a))
        }
        x::MONEY => {
            let v = i(8)?;
            Value::Exact(scaled(v < 0, u128::from(v.unsigned_abs()), 4))
        }
        x::SMALLMONEY => {
            let v = i(4)?;
            Value::Exact(scaled(v < 0, u128::from(v.unsigned_abs()), 4))
        }
        x::DECIMAL | x::NUMERIC => {
            let s = need(t.fixed_len().unwrap_or(5).min(b.len()).max(1))?;
            let mag = int_le(&s[1..]);
            Value::Exact(scaled(s[0] == 0, mag, t.scale))
        }
        x::DATETIME => {
            // The time (1/300 s ticks since midnight), then the days since 1900-01-01.
            let s = need(8)?;
            let ticks = u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
            let days = i64::from(i32::from_le_bytes([s[4], s[5], s[6], s[7]]));
            // 1/300 s ticks, shown to the millisecond as SQL Server rounds them.
            let ms = (ticks * 10 + 1) / 3;
            if ms >= 86_400_000 {
                return Err(BadValue(format!(
                    "datetime time part {ticks} is past midnight"
                )));
            }
            let d = day(date1900(), days)?;
            Value::Time(format!("{} {}", ymd(d), hms(ms / 1000, ms % 1000, 3)))
        }
        x::SMALLDATETIME => {
            let s = need(4)?;
            let mins = u64::from(u16::from_le_bytes([s[0], s[1]]));
            let days = i64::from(u16::from_le_bytes([s[2], s[3]]));
            if mins >= 1440 {
                return Err(BadValue(format!(
                    "smalldatetime minute {mins} is past midnight"
                )));
            }
            Value::Time(format!(
                "{} {}",
                ymd(day(date1900(), days)?),
                hms(mins * 60, 0, 0)
            ))
        }
        x::DATE => Value::Time(ymd(day(date0(), int_le(need(3)?) as i64)?)),
        x::TIME => {
            let n = t.fixed_len().unwrap_or(5);
            let (secs, frac) = time_of(need(n)?, t.scale)?;
            Value::Time(hms(secs, frac, t.scale))
        }
        x::DATETIME2 | x::DATETIMEOFFSET => {
            let tl = t.fixed_len().unwrap_or(8) - if t.xtype == x::DATETIME2 { 3 } else { 5 };
            let s = need(t.fixed_len().unwrap_or(8))?;
            let (secs, frac) = time_of(&s[..tl], t.scale)?;
            let days = int_le(&s[tl..tl + 3]) as i64;
            if t.xtype == x::DATETIME2 {
                Value::Time(format!(
                    "{} {}",
                    ymd(day(date0(), days)?),
                    hms(secs, frac, t.scale)
                ))
            } else {
                // Stored in UTC, with the offset in minutes: shown in its own zone.
                let off = i64::from(i16::from_le_bytes([s[tl + 3], s[tl + 4]]));
                let total = days * 86_400 + secs as i64 + off * 60;
                let d = day(date0(), total.div_euclid(86_400))?;
                let sign = if off < 0 { '-' } else { '+' };
                Value::Time(format!(
                    "{} {} {sign}{:02}:{:02}",
                    ymd(d),
                    hms(total.rem_euclid(86_400) as u64, frac, t.scale),
                    off.abs() / 60,
                    off.abs() % 60
                ))
            }
        }
        x::GUID => {
            let s = need(16)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            Value::Guid(
                uuid::Uuid::from_bytes_le(a)
                    .hyphenated()
                    .to_string()
                    .to_uppercase(),
            )
        }
        x::BINARY | x::VARBINARY | x::IMAGE | x::TIMESTAMP => Value::Bytes(b.to_vec()),
        x::NCHAR | x::NVARCHAR | x::NTEXT => Value::Text(crate::le::utf16le(b)),
        x::CHAR | x::VARCHAR | x::TEXT => match collation::charset(t.collation) {
            Charset::Known(cp) => Value::Text(collation::decode(cp, b).ok_or_else(|| {
                BadValue(format!(
                    "text in code page {}, which this reader does not decode",
                    cp.0
                ))
            })?),
            Charset::Unknown(why) => return Err(BadValue(why)),
        },
        _ => return Err(BadValue(format!("{} is not decoded", t.name()))),
    })
}

/// A `sql_variant` (as sysseobjvalues keeps a column's stored default) read as a value of
/// column type `t`: byte 0 the base type, byte 1 the variant's version, then the base type's
/// properties (precision and scale; a scale; a max length; a max length and a 5-byte
/// collation), then the value's bytes, decoded as `t` decodes them. A variant of another base
/// type than the column's is refused, not converted.
pub(crate) fn variant(t: &ColType, b: &[u8]) -> Result<Value, BadValue> {
    let (&base, rest) = b
        .split_first()
        .ok_or_else(|| BadValue("empty sql_variant".into()))?;
    let props = match base {
        x::DECIMAL | x::NUMERIC => 2,
        x::TIME | x::DATETIME2 | x::DATETIMEOFFSET => 1,
        x::BINARY | x::VARBINARY => 2,
        x::CHAR | x::VARCHAR | x::NCHAR | x::NVARCHAR => 7,
        _ => 0,
    };
    let value = rest
        .get(1 + props..)
        .ok_or_else(|| BadValue(format!("sql_variant of type {base} cut short")))?;
    if base != t.xtype {
        let shown = ColType {
            xtype: base,
            ..t.clone()
        };
        return Err(BadValue(format!(
            "its stored default is a {}, not a {}",
            shown.name(),
            t.name()
        )));
    }
    decode(t, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_default_is_read_from_its_variant() {
        let v = |ty: &ColType, b: &[u8]| variant(ty, b).map(|v| v.text());
        let mut int = vec![x::INT, 1];
        int.extend_from_slice(&42i32.to_le_bytes());
        assert_eq!(v(&t(x::INT, 4, 10, 0), &int), Ok(Some("42".into())));
        // decimal(10,2) 12.50: precision, scale, then sign byte and magnitude.
        let mut dec = vec![x::DECIMAL, 1, 10, 2, 1];
        dec.extend_from_slice(&1250u64.to_le_bytes());
        assert_eq!(v(&t(x::DECIMAL, 9, 10, 2), &dec), Ok(Some("12.50".into())));
        // varchar(10) 'new': max length, 5-byte collation, the bytes.
        let mut s = vec![x::VARCHAR, 1, 10, 0, 9, 4, 0xd0, 0, 52];
        s.extend_from_slice(b"new");
        assert_eq!(v(&t(x::VARCHAR, 10, 0, 0), &s), Ok(Some("new".into())));
        // Of another type than the column's, cut short, empty: refused, no panic.
        assert!(v(&t(x::BIGINT, 8, 19, 0), &int).is_err());
        assert!(v(&t(x::DECIMAL, 9, 10, 2), &dec[..3]).is_err());
        assert!(v(&t(x::INT, 4, 10, 0), &[]).is_err());
    }

    fn t(xtype: u8, length: i32, precision: u8, scale: u8) -> ColType {
        ColType {
            xtype,
            length,
            precision,
            scale,
            collation: 53256,
        }
    }

    #[test]
    fn names_as_tsql_writes_them() {
        assert_eq!(t(x::NVARCHAR, 80, 0, 0).name(), "nvarchar(40)");
        assert_eq!(t(x::DECIMAL, 9, 10, 2).name(), "decimal(10,2)");
        assert_eq!(t(x::VARCHAR, -1, 0, 0).name(), "varchar(max)");
        assert_eq!(t(x::NCHAR, 10, 0, 0).name(), "nchar(5)");
        assert_eq!(t(x::DATETIME2, 8, 27, 7).name(), "datetime2(7)");
    }

    #[test]
    fn values_decode_exactly() {
        let v = |ty: &ColType, b: &[u8]| decode(ty, b).unwrap().text().unwrap();
        assert_eq!(v(&t(x::INT, 4, 10, 0), &(-5i32).to_le_bytes()), "-5");
        assert_eq!(v(&t(x::SMALLINT, 2, 5, 0), &(-2i16).to_le_bytes()), "-2");
        // money 19.99: 199900 ten-thousandths.
        assert_eq!(
            v(&t(x::MONEY, 8, 19, 4), &199_900i64.to_le_bytes()),
            "19.9900"
        );
        assert_eq!(
            v(&t(x::MONEY, 8, 19, 4), &(-12_345i64).to_le_bytes()),
            "-1.2345"
        );
        // decimal(10,2) -123.45: sign 0, magnitude 12345 in 8 bytes.
        let mut d = vec![0u8];
        d.extend_from_slice(&12345u64.to_le_bytes());
        assert_eq!(v(&t(x::DECIMAL, 9, 10, 2), &d), "-123.45");
        let mut d = vec![1u8];
        d.extend_from_slice(&5u32.to_le_bytes());
        assert_eq!(v(&t(x::NUMERIC, 5, 5, 3), &d), "0.005");
        // datetime 1996-07-04 00:00:00: the time (ticks), then 35248 days after 1900-01-01.
        let mut dt = 0u32.to_le_bytes().to_vec();
        dt.extend_from_slice(&35248i32.to_le_bytes());
        assert_eq!(v(&t(x::DATETIME, 8, 23, 3), &dt), "1996-07-04 00:00:00");
        let mut dt = (300u32 * 3661 + 1).to_le_bytes().to_vec();
        dt.extend_from_slice(&0i32.to_le_bytes());
        assert_eq!(v(&t(x::DATETIME, 8, 23, 3), &dt), "1900-01-01 01:01:01.003");
        // date 0001-01-03.
        assert_eq!(v(&t(x::DATE, 3, 10, 0), &[2, 0, 0]), "0001-01-03");
        assert_eq!(v(&t(x::BIT, 1, 1, 0), &[1]), "1");
        assert_eq!(v(&t(x::VARBINARY, 10, 0, 0), &[0x47, 0x0a]), "0x470A");
        assert_eq!(v(&t(x::NVARCHAR, 20, 0, 0), &[b'h', 0, b'i', 0]), "hi");
        assert_eq!(
            v(
                &t(x::GUID, 16, 0, 0),
                &[
                    0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                    0xdd, 0xee, 0xff
                ]
            ),
            "00112233-4455-6677-8899-AABBCCDDEEFF"
        );
        // time(7) 12:00:00.5.
        let u: u64 = 12 * 3600 * 10_000_000 + 5_000_000;
        assert_eq!(
            v(&t(x::TIME, 5, 16, 7), &u.to_le_bytes()[..5]),
            "12:00:00.5000000"
        );
        // Short bytes are an error, not a panic.
        assert!(decode(&t(x::BIGINT, 8, 19, 0), &[1, 2]).is_err());
        assert!(decode(&t(x::DATETIME, 8, 23, 3), &[0xff; 8]).is_err());
        assert_eq!(Value::Exact("1.50".into()).json(), "1.50");
        assert_eq!(Value::Text("a\"b".into()).json(), "\"a\\\"b\"");
    }
}
