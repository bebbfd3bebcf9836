//! The name of a database collation from the five bytes SQL Server keeps it in (the SCIN
//! record, docs/MTF.md): the collation id of SQL Server's wire format (MS-TDS 2.2.5.1.2), a
//! little-endian u32 of LCID (bits 0..20), comparison flags (bits 20..28: ignore case, ignore
//! accent, ignore width, ignore kana, binary, binary2, UTF-8, reserved) and version (bits
//! 28..32: 0 for the 2000-level names, 1 `_90`, 2 `_100`, 3 `_140`), then a sort id, non-zero
//! for the SQL collations (`SQL_...`), whose names go by sort id alone.
//!
//! A collation these tables do not name is `None`: bak prints nothing rather than a guess.

/// Windows collation designators by LCID (the locale id with its sort id in bits 16..20).
const DESIGNATORS: &[(u32, &str)] = &[
    (0x0401, "Arabic"),
    (0x0404, "Chinese_Taiwan_Stroke"),
    (0x0405, "Czech"),
    (0x0406, "Danish_Norwegian"),
    (0x0408, "Greek"),
    (0x0409, "Latin1_General"),
    (0x040a, "Traditional_Spanish"),
    (0x040b, "Finnish_Swedish"),
    (0x040c, "French"),
    (0x040d, "Hebrew"),
    (0x040e, "Hungarian"),
    (0x040f, "Icelandic"),
    (0x0411, "Japanese"),
    (0x0412, "Korean_Wansung"),
    (0x0414, "Norwegian"),
    (0x0415, "Polish"),
    (0x0417, "Romansh"),
    (0x0418, "Romanian"),
    (0x0419, "Cyrillic_General"),
    (0x041a, "Croatian"),
    (0x041b, "Slovak"),
    (0x041c, "Albanian"),
    (0x041e, "Thai"),
    (0x041f, "Turkish"),
    (0x0420, "Urdu"),
    (0x0422, "Ukrainian"),
    (0x0424, "Slovenian"),
    (0x0425, "Estonian"),
    (0x0426, "Latvian"),
    (0x0427, "Lithuanian"),
    (0x0429, "Persian"),
    (0x042a, "Vietnamese"),
    (0x042c, "Azeri_Latin"),
    (0x042e, "Upper_Sorbian"),
    (0x042f, "Macedonian_FYROM"),
    (0x043a, "Maltese"),
    (0x043b, "Sami_Norway"),
    (0x043f, "Kazakh"),
    (0x0442, "Turkmen"),
    (0x0443, "Uzbek_Latin"),
    (0x0444, "Tatar"),
    (0x0452, "Welsh"),
    (0x045a, "Syriac"),
    (0x0462, "Frisian"),
    (0x0465, "Divehi"),
    (0x046d, "Bashkir"),
    (0x047a, "Mapudungan"),
    (0x047c, "Mohawk"),
    (0x047e, "Breton"),
    (0x0480, "Uighur"),
    (0x0481, "Maori"),
    (0x0483, "Corsican"),
    (0x0485, "Yakut"),
    (0x048c, "Dari"),
    (0x0804, "Chinese_PRC"),
    (0x0827, "Lithuanian_Classic"),
    (0x081a, "Serbian_Latin"),
    (0x082c, "Azeri_Cyrillic"),
    (0x083b, "Sami_Sweden_Finland"),
    (0x085f, "Tamazight"),
    (0x0c04, "Chinese_Hong_Kong_Stroke"),
    (0x0c0a, "Modern_Spanish"),
    (0x0c1a, "Serbian_Cyrillic"),
    (0x1404, "Chinese_Traditional_Pinyin"),
    (0x141a, "Bosnian_Latin"),
    (0x201a, "Bosnian_Cyrillic"),
    (0x1_0407, "German_PhoneBook"),
    (0x1_040e, "Hungarian_Technical"),
    (0x1_0411, "Japanese_Unicode"),
    (0x1_0412, "Korean_Wansung_Unicode"),
    (0x1_0437, "Georgian_Modern_Sort"),
    (0x2_0804, "Chinese_PRC_Stroke"),
    (0x2_1404, "Chinese_Traditional_Stroke_Order"),
    (0x3_0404, "Chinese_Taiwan_Bopomofo"),
    (0x4_0411, "Japanese_Bushu_Kakusu"),
];

/// SQL collations by sort id (SQL Server's "SQL Server Collation Name" list).
const SQL_COLLATIONS: &[(u8, &str)] = &[
    (30, "SQL_Latin1_General_CP437_BIN"),
    (31, "SQL_Latin1_General_CP437_CS_AS"),
    (32, "SQL_Latin1_General_CP437_CI_AS"),
    (33, "SQL_Latin1_General_Pref_CP437_CI_AS"),
    (34, "SQL_Latin1_General_CP437_CI_AI"),
    (40, "SQL_Latin1_General_CP850_BIN"),
    (41, "SQL_Latin1_General_CP850_CS_AS"),
    (42, "SQL_Latin1_General_CP850_CI_AS"),
    (43, "SQL_Latin1_General_Pref_CP850_CI_AS"),
    (44, "SQL_Latin1_General_CP850_CI_AI"),
    (49, "SQL_1xCompat_CP850_CI_AS"),
    (51, "SQL_Latin1_General_CP1_CS_AS"),
    (52, "SQL_Latin1_General_CP1_CI_AS"),
    (53, "SQL_Latin1_General_Pref_CP1_CI_AS"),
    (54, "SQL_Latin1_General_CP1_CI_AI"),
    (55, "SQL_AltDiction_CP850_CS_AS"),
    (56, "SQL_AltDiction_Pref_CP850_CI_AS"),
    (57, "SQL_AltDiction_CP850_CI_AI"),
    (58, "SQL_Scandinavian_Pref_CP850_CI_AS"),
    (59, "SQL_Scandinavian_CP850_CS_AS"),
    (60, "SQL_Scandinavian_CP850_CI_AS"),
    (61, "SQL_AltDiction_CP850_CI_AS"),
    (81, "SQL_Latin1_General_CP1250_CS_AS"),
    (82, "SQL_Latin1_General_CP1250_CI_AS"),
    (83, "SQL_Czech_CP1250_CS_AS"),
    (84, "SQL_Czech_CP1250_CI_AS"),
    (85, "SQL_Hungarian_CP1250_CS_AS"),
    (86, "SQL_Hungarian_CP1250_CI_AS"),
    (87, "SQL_Polish_CP1250_CS_AS"),
    (88, "SQL_Polish_CP1250_CI_AS"),
    (89, "SQL_Romanian_CP1250_CS_AS"),
    (90, "SQL_Romanian_CP1250_CI_AS"),
    (91, "SQL_Croatian_CP1250_CS_AS"),
    (92, "SQL_Croatian_CP1250_CI_AS"),
    (93, "SQL_Slovak_CP1250_CS_AS"),
    (94, "SQL_Slovak_CP1250_CI_AS"),
    (95, "SQL_Slovenian_CP1250_CS_AS"),
    (96, "SQL_Slovenian_CP1250_CI_AS"),
    (105, "SQL_Latin1_General_CP1251_CS_AS"),
    (106, "SQL_Latin1_General_CP1251_CI_AS"),
    (107, "SQL_Ukrainian_CP1251_CS_AS"),
    (108, "SQL_Ukrainian_CP1251_CI_AS"),
    (113, "SQL_Latin1_General_CP1253_CS_AS"),
    (114, "SQL_Latin1_General_CP1253_CI_AS"),
    (120, "SQL_MixDiction_CP1253_CS_AS"),
    (121, "SQL_AltDiction_CP1253_CS_AS"),
    (122, "SQL_AltDiction2_CP1253_CS_AS"),
    (124, "SQL_Latin1_General_CP1253_CI_AI"),
    (129, "SQL_Latin1_General_CP1254_CS_AS"),
    (130, "SQL_Latin1_General_CP1254_CI_AS"),
    (137, "SQL_Latin1_General_CP1255_CS_AS"),
    (138, "SQL_Latin1_General_CP1255_CI_AS"),
    (145, "SQL_Latin1_General_CP1256_CS_AS"),
    (146, "SQL_Latin1_General_CP1256_CI_AS"),
    (153, "SQL_Latin1_General_CP1257_CS_AS"),
    (154, "SQL_Latin1_General_CP1257_CI_AS"),
    (155, "SQL_Estonian_CP1257_CS_AS"),
    (156, "SQL_Estonian_CP1257_CI_AS"),
    (157, "SQL_Latvian_CP1257_CS_AS"),
    (158, "SQL_Latvian_CP1257_CI_AS"),
    (159, "SQL_Lithuanian_CP1257_CS_AS"),
    (160, "SQL_Lithuanian_CP1257_CI_AS"),
    (183, "SQL_Danish_Pref_CP1_CI_AS"),
    (184, "SQL_SwedishPhone_Pref_CP1_CI_AS"),
    (185, "SQL_SwedishStd_Pref_CP1_CI_AS"),
    (186, "SQL_Icelandic_Pref_CP1_CI_AS"),
];

const IGNORE_CASE: u32 = 0x01;
const IGNORE_ACCENT: u32 = 0x02;
const IGNORE_WIDTH: u32 = 0x04;
const IGNORE_KANA: u32 = 0x08;
const BINARY: u32 = 0x10;
const BINARY2: u32 = 0x20;
const UTF8: u32 = 0x40;
const RESERVED: u32 = 0x80;

/// The designator of `lcid` at collation `version`: the 2000-level name with the version's
/// suffix, except where SQL Server named a later version otherwise.
fn designator(lcid: u32, version: u32) -> Option<String> {
    let base = DESIGNATORS.iter().find(|(l, _)| *l == lcid)?.1;
    let (base, suffix) = match (lcid, version) {
        (_, 0) => (base, ""),
        (0x0411, 1) => ("Japanese", "_90"),
        (0x0411, 2) => ("Japanese_XJIS", "_100"),
        (0x0411, 3) => ("Japanese_XJIS", "_140"),
        (0x0412, 1) => ("Korean", "_90"),
        (0x0412, 2) => ("Korean", "_100"),
        (_, 1) => (base, "_90"),
        (_, 2) => (base, "_100"),
        (_, 3) => (base, "_140"),
        _ => return None,
    };
    Some(format!("{base}{suffix}"))
}

/// The collation's name, or `None` for one these tables do not name.
pub(crate) fn name(id: [u8; 5]) -> Option<String> {
    let word = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
    let sort_id = id[4];
    if sort_id != 0 {
        return SQL_COLLATIONS
            .iter()
            .find(|(s, _)| *s == sort_id)
            .map(|(_, n)| n.to_string());
    }
    let lcid = word & 0xf_ffff;
    let flags = (word >> 20) & 0xff;
    let version = word >> 28;
    if flags & RESERVED != 0 {
        return None;
    }
    let mut name = designator(lcid, version)?;
    if flags & BINARY2 != 0 {
        name.push_str("_BIN2");
    } else if flags & BINARY != 0 {
        name.push_str("_BIN");
    } else {
        name.push_str(if flags & IGNORE_CASE != 0 {
            "_CI"
        } else {
            "_CS"
        });
        name.push_str(if flags & IGNORE_ACCENT != 0 {
            "_AI"
        } else {
            "_AS"
        });
        if flags & IGNORE_KANA == 0 {
            name.push_str("_KS");
        }
        if flags & IGNORE_WIDTH == 0 {
            name.push_str("_WS");
        }
    }
    if flags & UTF8 != 0 {
        name.push_str("_UTF8");
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn the_collations_of_the_fixtures_are_named() {
        // The bytes at SCIN +0xd8 of the fixtures (docs/MTF.md).
        let seen = [
            (
                [0x09, 0x04, 0xd0, 0x00, 0x34],
                "SQL_Latin1_General_CP1_CI_AS",
            ),
            ([0x09, 0x04, 0xd0, 0x00, 0x00], "Latin1_General_CI_AS"),
            ([0x09, 0x04, 0x10, 0x00, 0x00], "Latin1_General_CI_AS_KS_WS"),
            ([0x0a, 0x0c, 0xd0, 0x00, 0x00], "Modern_Spanish_CI_AS"),
            ([0x15, 0x04, 0xd0, 0x00, 0x00], "Polish_CI_AS"),
        ];
        for (bytes, want) in seen {
            assert_eq!(name(bytes).as_deref(), Some(want), "{bytes:02x?}");
        }
    }

    #[test]
    fn versions_binary_utf8_and_the_unknown() {
        // Version 2 (_100), case and accent sensitive, UTF-8.
        assert_eq!(
            name([0x09, 0x04, 0xc0, 0x24, 0x00]).as_deref(),
            Some("Latin1_General_100_CS_AS_UTF8")
        );
        assert_eq!(
            name([0x09, 0x04, 0x00, 0x01, 0x00]).as_deref(),
            Some("Latin1_General_BIN")
        );
        assert_eq!(
            name([0x09, 0x04, 0x00, 0x02, 0x00]).as_deref(),
            Some("Latin1_General_BIN2")
        );
        assert_eq!(
            name([0x11, 0x04, 0xd0, 0x20, 0x00]).as_deref(),
            Some("Japanese_XJIS_100_CI_AS")
        );
        // An LCID, a version, a sort id or a flag the tables do not know: no name.
        assert_eq!(name([0x99, 0x09, 0xd0, 0x00, 0x00]), None);
        assert_eq!(name([0x09, 0x04, 0xd0, 0x90, 0x00]), None);
        assert_eq!(name([0x09, 0x04, 0xd0, 0x00, 0xff]), None);
        assert_eq!(name([0x09, 0x04, 0xd0, 0x08, 0x00]), None);
    }
}
