//! The code page of a collation id, as sysrscols, syscolpars and the boot page store it
//! (COLLATIONPROPERTY(name, 'CollationId')).
//!
//! The id packs: bits 0-7 the collation designator (an index SQL Server numbers its Windows
//! collations by: 8 Latin1_General, 40 Modern_Spanish ...), bits 12-15 the comparison flags,
//! bit 16 BIN, bit 11 BIN2, bit 8 SC, bits 17-19 the version (_90, _100), bits 24-31 the sort
//! order id of a SQL collation (52 = SQL_Latin1_General_CP1_CI_AS). A SQL collation's code page
//! is that of its sort order; a Windows collation's is that of its designator's locale.
//! Only designators and sort orders whose ids were confirmed against a published list of
//! `sys.fn_helpcollations()` ids are known here; any other id is named as unknown, never
//! guessed.

/// A code page: a single-byte or double-byte Windows code page, decodable with encoding_rs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodePage(pub u16);

impl CodePage {
    /// The encoding, where encoding_rs has it (it has the Windows ANSI code pages, not the
    /// OEM ones, 437 and 850).
    pub fn encoding(self) -> Option<&'static encoding_rs::Encoding> {
        Some(match self.0 {
            874 => encoding_rs::WINDOWS_874,
            932 => encoding_rs::SHIFT_JIS,
            936 => encoding_rs::GBK,
            949 => encoding_rs::EUC_KR,
            950 => encoding_rs::BIG5,
            1250 => encoding_rs::WINDOWS_1250,
            1251 => encoding_rs::WINDOWS_1251,
            1252 => encoding_rs::WINDOWS_1252,
            1253 => encoding_rs::WINDOWS_1253,
            1254 => encoding_rs::WINDOWS_1254,
            1255 => encoding_rs::WINDOWS_1255,
            1256 => encoding_rs::WINDOWS_1256,
            1257 => encoding_rs::WINDOWS_1257,
            1258 => encoding_rs::WINDOWS_1258,
            _ => return None,
        })
    }
}

/// Windows collation designators of version 0 (SQL Server 2000 names) whose index is known:
/// (index, name, code page).
const DESIGNATORS: &[(u32, &str, u16)] = &[
    (1, "Arabic", 1256),
    (4, "Czech", 1250),
    (5, "Danish_Norwegian", 1252),
    (7, "Greek", 1253),
    (8, "Latin1_General", 1252),
    (9, "Traditional_Spanish", 1252),
    (10, "Finnish_Swedish", 1252),
    (11, "French", 1252),
    (13, "Hungarian", 1250),
    (14, "Icelandic", 1252),
    (19, "Polish", 1250),
    (20, "Romanian", 1250),
    (22, "Croatian", 1250),
    (23, "Slovak", 1250),
    (24, "Albanian", 1250),
    (25, "Thai", 874),
    (26, "Turkish", 1254),
    (27, "Ukrainian", 1251),
    (28, "Slovenian", 1250),
    (29, "Estonian", 1257),
    (30, "Latvian", 1257),
    (31, "Lithuanian", 1257),
    (40, "Modern_Spanish", 1252),
    (41, "German_PhoneBook", 1252),
];

/// Designators that exist only from a later version, by (version bits, index).
const LATER: &[(u32, u32, &str, u16)] = &[
    (1, 57, "Tatar_90", 1251),
    (1, 58, "Macedonian_FYROM_90", 1251),
    (2, 6, "Yakut_100", 1251),
    (2, 63, "Mohawk_100", 1252),
    (2, 82, "Mapudungan_100", 1252),
    (2, 88, "Turkmen_100", 1250),
    (2, 93, "Welsh_100", 1252),
    (2, 97, "Tamazight_100", 1252),
];

/// Designators of version 0 that version 100 numbers alike (confirmed one by one).
const SAME_IN_100: &[u32] = &[1, 8, 9, 24, 26, 30, 31, 40];

/// SQL collation sort order ids, as ranges, and their code page.
const SORT_ORDERS: &[(u32, u32, u16)] = &[
    (30, 34, 437),
    (40, 44, 850),
    (49, 49, 850),
    (51, 54, 1252),
    (55, 61, 850),
    (81, 96, 1250),
    (105, 108, 1251),
    (113, 124, 1253),
    (129, 130, 1254),
    (137, 138, 1255),
    (145, 146, 1256),
    (153, 160, 1257),
    (183, 186, 1252),
    (210, 219, 1252),
];

/// What a collation id says about the bytes of char, varchar and text columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Charset {
    Known(CodePage),
    /// The id is not one this reader knows: text cannot be decoded without guessing.
    Unknown(String),
}

/// The code page of collation id `id`.
pub(crate) fn charset(id: u32) -> Charset {
    let sort = id >> 24;
    let unknown_bits = id & 0x00f0_0000;
    if unknown_bits != 0 {
        return Charset::Unknown(format!(
            "collation id {id} ({id:#010x}) has flags this reader does not know (a UTF-8 collation?)"
        ));
    }
    if sort != 0 {
        return match SORT_ORDERS.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&sort)) {
            Some((_, _, cp)) => Charset::Known(CodePage(*cp)),
            None => Charset::Unknown(format!(
                "collation id {id}: SQL collation sort order {sort}, whose code page this reader does not know"
            )),
        };
    }
    let index = id & 0xff;
    let version = (id >> 17) & 7;
    let found = match version {
        0 => DESIGNATORS.iter().find(|d| d.0 == index).map(|d| d.2),
        _ => LATER
            .iter()
            .find(|d| d.0 == version && d.1 == index)
            .map(|d| d.3)
            .or_else(|| {
                (version == 2 && SAME_IN_100.contains(&index))
                    .then(|| DESIGNATORS.iter().find(|d| d.0 == index).map(|d| d.2))
                    .flatten()
            }),
    };
    match found {
        Some(cp) => Charset::Known(CodePage(cp)),
        None => Charset::Unknown(format!(
            "collation id {id}: Windows collation designator {index} (version {version}), whose code page this reader does not know"
        )),
    }
}

/// Text of `bytes` in code page `cp`; `None` when encoding_rs lacks it.
pub(crate) fn decode(cp: CodePage, bytes: &[u8]) -> Option<String> {
    let enc = cp.encoding()?;
    let (s, _) = enc.decode_without_bom_handling(bytes);
    Some(s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixtures_collations_are_known() {
        // Ids from COLLATIONPROPERTY(name, 'CollationId'), seen in the fixtures' catalogs.
        let cases = [
            (53256, 1252),      // Latin1_General_CI_AS
            (53288, 1252),      // Modern_Spanish_CI_AS (pubs_UGR95)
            (53267, 1250),      // Polish_CI_AS (the 2005 Northwind)
            (4104, 1252),       // Latin1_General_CI_AS_KS_WS (SharePoint)
            (872468488, 1252),  // SQL_Latin1_General_CP1_CI_AS
            (315656, 1252),     // Latin1_General_100_CI_AS_SC
            (1778438152, 1251), // SQL_Latin1_General_CP1251_CI_AS
            (536924168, 437),   // SQL_Latin1_General_CP437_CI_AS
        ];
        for (id, cp) in cases {
            assert_eq!(charset(id), Charset::Known(CodePage(cp)), "{id}");
        }
        assert!(matches!(charset(53250), Charset::Unknown(_)));
        assert!(matches!(charset(0x0020_d008), Charset::Unknown(_)));
        assert_eq!(
            decode(CodePage(1252), b"M\xfcnchen\x80").as_deref(),
            Some("München€")
        );
        assert_eq!(decode(CodePage(437), b"x"), None);
    }
}
