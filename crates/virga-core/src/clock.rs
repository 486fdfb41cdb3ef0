//! The one injectable clock. Every time-based behaviour (expiry of presigned URLs,
//! lifecycle rules, TTLs, visibility timeouts) reads `Clock::now`, so tests can move
//! time forward with `POST /_virga/clock` instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time.
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn new() -> Self {
        Clock::default()
    }

    pub fn now(&self) -> SystemTime {
        let off = self.offset_ms.load(Ordering::Relaxed);
        let sys = SystemTime::now();
        if off >= 0 {
            sys + Duration::from_millis(off as u64)
        } else {
            sys - Duration::from_millis(off.unsigned_abs())
        }
    }

    /// Seconds since the Unix epoch, with millisecond precision.
    pub fn now_secs_f64(&self) -> f64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    pub fn now_millis(&self) -> i64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Moves the clock forward (or back, for negative values) by `secs` seconds.
    pub fn advance(&self, secs: f64) {
        self.offset_ms
            .fetch_add((secs * 1000.0) as i64, Ordering::Relaxed);
    }

    pub fn offset_secs(&self) -> f64 {
        self.offset_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let c = Clock::new();
        let before = c.now_secs_f64();
        c.advance(3600.0);
        let after = c.now_secs_f64();
        assert!(after - before >= 3599.0 && after - before < 3700.0);
        c.reset();
        assert!(c.now_secs_f64() - before < 100.0);
    }
}
