//! Zone names and offsets found *inside* log lines (`%z`, `%Z`, `%Exz`, `%ExZ`).
//!
//! fail2ban treats every zone abbreviation as a fixed offset (no DST rules): `CET` is
//! always +01:00 and `CEST` always +02:00. This room owns that abbreviation table and
//! the parser of fail2ban's `ABBR?([+-]hh(:?mm)?)?` zone syntax; it receives the text
//! of the zone group and emits an offset in minutes east of UTC.

/// (offset in minutes east of UTC, abbreviations). When an abbreviation is listed
/// twice, the later row wins (fail2ban fills a dict row by row).
const ZONES: &[(i32, &str)] = &[
    (-12 * 60, "Y"),
    (-11 * 60, "X NUT SST"),
    (-10 * 60, "W CKT HAST HST TAHT TKT"),
    (-9 * 60, "V AKST GAMT GIT HADT HNY"),
    (-8 * 60, "U AKDT CIST HAY HNP PST PT"),
    (-7 * 60, "T HAP HNR MST PDT"),
    (-6 * 60, "S CST EAST GALT HAR HNC MDT"),
    (-5 * 60, "R CDT COT EASST ECT EST ET HAC HNE PET"),
    (-4 * 60, "Q AST BOT CLT COST EDT FKT GYT HAE HNA PYT"),
    (
        -3 * 60,
        "P ADT ART BRT CLST FKST GFT HAA PMST PYST SRT UYT WGT",
    ),
    (-2 * 60, "O BRST FNT PMDT UYST WGST"),
    (-60, "N AZOT CVT EGT"),
    (0, "Z EGST GMT UTC WET WT"),
    (60, "A CET DFT WAT WEDT WEST"),
    (2 * 60, "B CAT CEDT CEST EET SAST WAST"),
    (3 * 60, "C EAT EEDT EEST IDT MSK"),
    (4 * 60, "D AMT AZT GET GST KUYT MSD MUT RET SAMT SCT"),
    (
        5 * 60,
        "E AMST AQTT AZST HMT MAWT MVT PKT TFT TJT TMT UZT YEKT",
    ),
    (6 * 60, "F ALMT BIOT BTT IOT KGT NOVT OMST YEKST"),
    (7 * 60, "G CXT DAVT HOVT ICT KRAT NOVST OMSST THA WIB"),
    (
        8 * 60,
        "H ACT AWST BDT BNT CAST HKT IRKT KRAST MYT PHT SGT ULAT WITA WST",
    ),
    (9 * 60, "I AWDT IRKST JST KST PWT TLT WDT WIT YAKT"),
    (10 * 60, "K AEST ChST PGT VLAT YAKST YAPT"),
    (11 * 60, "L AEDT LHDT MAGT NCT PONT SBT VLAST VUT"),
    (
        12 * 60,
        "M ANAST ANAT FJT GILT MAGST MHT NZST PETST PETT TVT WFT",
    ),
    (13 * 60, "FJST NZDT"),
    (11 * 60 + 30, "NFT"),
    (10 * 60 + 30, "ACDT LHST"),
    (9 * 60 + 30, "ACST"),
    (6 * 60 + 30, "CCT MMT"),
    (5 * 60 + 45, "NPT"),
    (5 * 60 + 30, "SLT"),
    (4 * 60 + 30, "AFT IRDT"),
    (3 * 60 + 30, "IRST"),
    (-(2 * 60 + 30), "HAT NDT"),
    (-(3 * 60 + 30), "HNT NST NT"),
    (-(4 * 60 + 30), "HLV VET"),
    (-(9 * 60 + 30), "MART MIT"),
];

/// Offset (minutes east of UTC) of a zone abbreviation, `None` if unknown.
pub(crate) fn abbr_offset(abbr: &str) -> Option<i32> {
    ZONES
        .iter()
        .rev()
        .find(|(_, names)| names.split(' ').any(|n| n == abbr))
        .map(|(off, _)| *off)
}

fn two_digits(b: &[u8]) -> Option<i32> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
            Some(i32::from(a - b'0') * 10 + i32::from(c - b'0'))
        }
        _ => None,
    }
}

/// Offset in minutes of the text of a `%z`/`%Z` group, as fail2ban's
/// `reGroupDictStrptime` computes it; `None` where fail2ban raises (unknown
/// abbreviation, malformed text) — the date is then invalid.
pub(crate) fn zone_offset(val: &str) -> Option<i32> {
    if matches!(val, "Z" | "UTC" | "GMT") {
        return Some(0);
    }
    // `([A-Z](?:[A-Z]{2,4})?)?([+-][01]\d(?::?\d{2})?)?$`
    let b = val.as_bytes();
    let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if !matches!(letters, 0 | 1 | 3 | 4 | 5) {
        return None;
    }
    let (abbr, tzo) = val.split_at(letters);
    let base = if abbr.is_empty() {
        0
    } else {
        abbr_offset(abbr)?
    };
    let t = tzo.as_bytes();
    if t.is_empty() {
        return Some(base);
    }
    let sign = match t[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    if !matches!(t.get(1), Some(b'0' | b'1')) {
        return None;
    }
    let hh = two_digits(t.get(1..3)?)?;
    let mm = match t.len() {
        3 => return Some(base + sign * hh * 60),
        5 => two_digits(&t[3..5])?,
        6 if t[3] == b':' => two_digits(&t[4..6])?,
        _ => return None,
    };
    Some(base + sign * (hh * 60 + mm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones() {
        assert_eq!(zone_offset("UTC"), Some(0));
        assert_eq!(zone_offset("CET"), Some(60));
        assert_eq!(zone_offset("CEST"), Some(120));
        assert_eq!(zone_offset("EST"), Some(-300));
        assert_eq!(zone_offset("+0200"), Some(120));
        assert_eq!(zone_offset("-02:30"), Some(-150));
        assert_eq!(zone_offset("+01"), Some(60));
        assert_eq!(zone_offset("CET+0100"), Some(120));
        assert_eq!(zone_offset("NPT"), Some(345));
        assert_eq!(zone_offset("XYZ"), None);
        assert_eq!(zone_offset("cet"), None);
        assert_eq!(zone_offset("+2"), None);
    }
}
