//! What an attempt's answer means and when the next attempt is due.
//!
//! Only 2xx is success. 410 Gone means the receiver is gone for good: the endpoint is
//! disabled. 429, 502, 503 and 504 are throttling: their `Retry-After` pauses the
//! whole endpoint and pushes the next attempt back. Anything else (another status, a
//! redirect, a timeout, a refused or unreachable target) is a failure retried on the
//! schedule, with jitter so that a receiver coming back is not hit by every retry at
//! once.

use std::time::{Duration, SystemTime};

/// Longest pause a `Retry-After` may ask for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How an attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410: disable the endpoint, stop this delivery.
    Gone,
    /// 429 / 502 / 503 / 504: retry, respecting `Retry-After`.
    Throttled,
    /// Anything else: retry on the schedule.
    Failed,
}

/// The verdict on an HTTP status (`None`: no answer came back).
pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        Some(429 | 502 | 503 | 504) => Verdict::Throttled,
        _ => Verdict::Failed,
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as a pause from `now`, capped at
/// [`MAX_RETRY_AFTER`].
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let pause = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(pause.min(MAX_RETRY_AFTER))
}

/// When attempt number `next_step` (0-based index into `schedule`) is due after a
/// failure: its delay with ±20 % jitter, but not before `retry_after`. `None` when
/// the schedule is exhausted (the delivery has failed for good).
pub fn next_delay(
    schedule: &[Duration],
    next_step: usize,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *schedule.get(next_step)?;
    let jittered = if base.is_zero() {
        base
    } else {
        base.mul_f64(rand::random_range(0.8..1.2))
    };
    Some(jittered.max(retry_after.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_2xx_delivers() {
        assert_eq!(verdict(Some(200)), Verdict::Delivered);
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(301)), Verdict::Failed);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        assert_eq!(verdict(Some(429)), Verdict::Throttled);
        assert_eq!(verdict(Some(503)), Verdict::Throttled);
        assert_eq!(verdict(Some(500)), Verdict::Failed);
        assert_eq!(verdict(None), Verdict::Failed);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(retry_after("999999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn the_schedule_runs_out_and_retry_after_wins_when_longer() {
        let s = [Duration::ZERO, Duration::from_secs(10)];
        let d = next_delay(&s, 1, None).expect("a second attempt");
        assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12));
        assert_eq!(
            next_delay(&s, 1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(next_delay(&s, 2, None), None);
    }
}
