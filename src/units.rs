//! Sizes and durations as users type them on the command line (`1GB`,
//! `16MB`, `30s`, `500ms`), with PostgreSQL's 1024-based memory units.

use std::time::Duration;

/// Seconds since the Unix epoch as UTC `[year, month, day, hour, minute,
/// second]` (Howard Hinnant's civil_from_days), for timestamps in names
/// and reports without a date crate.
pub fn utc(epoch: i64) -> [i64; 6] {
    const DAY: i64 = 86_400;
    let (days, secs) = (epoch.div_euclid(DAY), epoch.rem_euclid(DAY));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    [y, m, d, secs / 3600, secs % 3600 / 60, secs % 60]
}

/// Now as a compact UTC timestamp (`20261202T061500Z`), for the names of
/// directories kept aside.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let [y, m, d, h, mi, sec] = utc(secs);
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{sec:02}Z")
}

/// Bytes, 1024-based like PostgreSQL (`kB`, `MB`, `GB`, `TB`); a bare
/// number is bytes. Case-insensitive so `1gb` is not a surprise.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let (num, unit) = number_and_unit(s).ok_or_else(|| {
        format!("invalid size {s:?}: expected a number with a unit, like 16MB or 1GB")
    })?;
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        other => {
            return Err(format!(
                "invalid size unit {other:?} in {s:?}: use B, kB, MB, GB or TB"
            ));
        }
    };
    Ok((num * mult as f64).round() as u64)
}

/// Seconds by default; `ms`, `s`, `min`/`m`, `h` accepted.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = number_and_unit(s).ok_or_else(|| {
        format!("invalid duration {s:?}: expected a number with a unit, like 30s or 500ms")
    })?;
    let secs = match unit.as_str() {
        "ms" => num / 1000.0,
        "" | "s" | "sec" => num,
        "m" | "min" => num * 60.0,
        "h" => num * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {s:?}: use ms, s, min or h"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `16MB` -> (16.0, "mb"): the leading number, and the unit after it in
/// lower case (units are case-insensitive); None without a number.
pub fn number_and_unit(s: &str) -> Option<(f64, String)> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    Some((num.parse().ok()?, unit.trim().to_ascii_lowercase()))
}

/// A timeout or wait: a duration above zero (`10`, `10s`, `500ms`, `2min`).
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the timeout must be more than 0".into());
    }
    Ok(d)
}

/// The inverse of [`parse_bytes`] for messages: the largest exact unit.
pub fn format_bytes(b: u64) -> String {
    for (unit, size) in [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("kB", 1 << 10),
    ] {
        if b >= size && b % size == 0 {
            return format!("{}{unit}", b / size);
        }
    }
    format!("{b}B")
}

/// Approximate, for people: "0B", "512B", "1.5kB", "21.5MB" (1024-based
/// like PostgreSQL). Sizes of data, rates and free space are never round.
pub fn human_bytes(b: u64) -> String {
    let mut v = b as f64;
    let mut unit = "B";
    for u in ["kB", "MB", "GB", "TB"] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if unit == "B" {
        format!("{b}B")
    } else {
        format!("{v:.1}{unit}")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn timeouts_take_bare_seconds_or_units_and_refuse_zero() {
        use std::time::Duration;
        assert_eq!(parse_timeout("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_timeout("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_timeout("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("1x").is_err());
    }

    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1536), "1.5kB");
        assert_eq!(human_bytes(22577517), "21.5MB");
        assert_eq!(human_bytes(1 << 30), "1.0GB");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("16mb").unwrap(), 16 << 20);
        assert_eq!(parse_bytes("512kB").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("100").unwrap(), 100);
        assert_eq!(parse_bytes("1.5GB").unwrap(), 3 << 29);
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("1PB").is_err());
        assert_eq!(format_bytes(1 << 30), "1GB");
        assert_eq!(format_bytes(1536 << 20), "1536MB");
        assert_eq!(format_bytes(7), "7B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("5 fortnights").is_err());
    }
}
