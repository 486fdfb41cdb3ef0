//! Timestamp conversions. In a parsed input or a handler's output a timestamp is a
//! number of seconds since the epoch; each protocol writes it in its own format.

use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};
use time::OffsetDateTime;

pub fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos() as f64 / 1e9);
    }
    if let Ok(t) = httpdate::parse_http_date(s) {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc2822) {
        return Some(t.unix_timestamp() as f64);
    }
    None
}

fn to_datetime(secs: f64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2009-10-12T17:50:30.000Z`, as S3 and the XML protocols write timestamps.
pub fn iso8601(secs: f64) -> String {
    let t = to_datetime(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `Mon, 12 Oct 2009 17:50:30 GMT`, as HTTP headers carry timestamps.
pub fn rfc822(secs: f64) -> String {
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0.0) as u64);
    httpdate::fmt_http_date(st)
}

pub fn format_timestamp(secs: f64, format: &str) -> String {
    match format {
        "rfc822" => rfc822(secs),
        "unixTimestamp" => {
            if secs.fract() == 0.0 {
                format!("{}", secs as i64)
            } else {
                format!("{secs:.3}")
            }
        }
        _ => iso8601(secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(iso8601(1255369830.0), "2009-10-12T17:50:30.000Z");
        assert_eq!(rfc822(1255369830.0), "Mon, 12 Oct 2009 17:50:30 GMT");
        assert_eq!(
            parse_timestamp("2009-10-12T17:50:30.000Z"),
            Some(1255369830.0)
        );
        assert_eq!(parse_timestamp("2009-10-12T17:50:30Z"), Some(1255369830.0));
        assert_eq!(
            parse_timestamp("Mon, 12 Oct 2009 17:50:30 GMT"),
            Some(1255369830.0)
        );
        assert_eq!(parse_timestamp("1255369830"), Some(1255369830.0));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
