//! UTC calendar arithmetic for spend periods: Unix milliseconds → civil date → the start of
//! the day or month containing it and the start of the next one.
//!
//! Civil dates use Howard Hinnant's `days_from_civil` / `civil_from_days` algorithms
//! (<https://howardhinnant.github.io/date_algorithms.html>) over the proleptic Gregorian
//! calendar, restricted to dates on or after 1970-01-01 so every quantity is unsigned.

/// Milliseconds in a UTC day (Unix time has no leap seconds).
pub const DAY_MS: u64 = 86_400_000;

/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const EPOCH_SHIFT: u64 = 719_468;
/// Days in a 400-year era.
const ERA_DAYS: u64 = 146_097;

/// A proleptic Gregorian calendar date; `month` is 1..=12 and `day` 1..=31.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: u64,
    pub month: u64,
    pub day: u64,
}

/// The date `days` days after 1970-01-01.
pub fn civil_from_days(days: u64) -> Date {
    let z = days + EPOCH_SHIFT;
    let era = z / ERA_DAYS;
    let doe = z - era * ERA_DAYS; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], counted from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    Date { year, month, day }
}

/// Days from 1970-01-01 to `date`, which must be on or after 1970-01-01.
pub fn days_from_civil(date: Date) -> u64 {
    let year = date.year - u64::from(date.month <= 2); // years start on March 1
    let era = year / 400;
    let yoe = year - era * 400; // [0, 399]
    let mp = if date.month > 2 { date.month - 3 } else { date.month + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + date.day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * ERA_DAYS + doe - EPOCH_SHIFT
}

/// The UTC midnight starting the day that contains `now_ms`.
pub fn day_start_ms(now_ms: u64) -> u64 {
    now_ms - now_ms % DAY_MS
}

/// The UTC midnight ending the day that contains `now_ms`.
pub fn next_day_start_ms(now_ms: u64) -> u64 {
    day_start_ms(now_ms) + DAY_MS
}

/// 00:00 UTC on the first of the month that contains `now_ms`.
pub fn month_start_ms(now_ms: u64) -> u64 {
    let date = civil_from_days(now_ms / DAY_MS);
    days_from_civil(Date { day: 1, ..date }) * DAY_MS
}

/// 00:00 UTC on the first of the month after the one that contains `now_ms`.
pub fn next_month_start_ms(now_ms: u64) -> u64 {
    let date = civil_from_days(now_ms / DAY_MS);
    let next = if date.month == 12 {
        Date { year: date.year + 1, month: 1, day: 1 }
    } else {
        Date { year: date.year, month: date.month + 1, day: 1 }
    };
    days_from_civil(next) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: u64, month: u64, day: u64) -> Date {
        Date { year, month, day }
    }

    /// Unix ms of 00:00 UTC on a date, by the algorithm under test.
    fn midnight(year: u64, month: u64, day: u64) -> u64 {
        days_from_civil(date(year, month, day)) * DAY_MS
    }

    fn is_leap(year: u64) -> bool {
        year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
    }

    #[test]
    fn agrees_with_a_day_by_day_count_for_six_centuries() {
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut expected = date(1970, 1, 1);
        for days in 0..220_000 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            assert_eq!(days_from_civil(expected), days);
            let month_len =
                lengths[expected.month as usize - 1] + u64::from(expected.month == 2 && is_leap(expected.year));
            expected = if expected.day < month_len {
                date(expected.year, expected.month, expected.day + 1)
            } else if expected.month < 12 {
                date(expected.year, expected.month + 1, 1)
            } else {
                date(expected.year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn known_instants() {
        // Values from Python's datetime.
        assert_eq!(midnight(2028, 2, 29), 1_835_395_200_000);
        assert_eq!(midnight(2100, 3, 1), 4_107_542_400_000);
        assert_eq!(midnight(2000, 2, 29), 951_782_400_000);
        assert_eq!(midnight(2026, 1, 1), 1_767_225_600_000);
        assert_eq!(civil_from_days(0), date(1970, 1, 1));
    }

    #[test]
    fn month_end_rolls_to_the_first() {
        let last_ms = midnight(2024, 2, 1) - 1; // 2024-01-31 23:59:59.999
        assert_eq!(month_start_ms(last_ms), midnight(2024, 1, 1));
        assert_eq!(next_month_start_ms(last_ms), midnight(2024, 2, 1));
        assert_eq!(month_start_ms(last_ms + 1), midnight(2024, 2, 1));
        assert_eq!(next_month_start_ms(midnight(2024, 4, 30)), midnight(2024, 5, 1));
    }

    #[test]
    fn december_rolls_to_january_of_the_next_year() {
        let new_year = midnight(2026, 1, 1);
        assert_eq!(month_start_ms(new_year - 1), midnight(2025, 12, 1));
        assert_eq!(next_month_start_ms(new_year - 1), new_year);
        assert_eq!(next_month_start_ms(new_year), midnight(2026, 2, 1));
        assert_eq!(next_day_start_ms(new_year - 1), new_year);
    }

    #[test]
    fn leap_days() {
        // 2028 and 2000 are leap years; 2100 is not.
        assert_eq!(civil_from_days(midnight(2028, 2, 28) / DAY_MS + 1), date(2028, 2, 29));
        assert_eq!(civil_from_days(midnight(2000, 2, 28) / DAY_MS + 1), date(2000, 2, 29));
        assert_eq!(civil_from_days(midnight(2100, 2, 28) / DAY_MS + 1), date(2100, 3, 1));
        let leap_day_noon = midnight(2028, 2, 29) + DAY_MS / 2;
        assert_eq!(month_start_ms(leap_day_noon), midnight(2028, 2, 1));
        assert_eq!(next_month_start_ms(leap_day_noon), midnight(2028, 3, 1));
        assert_eq!(next_month_start_ms(midnight(2028, 2, 1)) - midnight(2028, 2, 1), 29 * DAY_MS);
        assert_eq!(next_month_start_ms(midnight(2100, 2, 1)) - midnight(2100, 2, 1), 28 * DAY_MS);
        assert_eq!(next_month_start_ms(midnight(2000, 2, 1)) - midnight(2000, 2, 1), 29 * DAY_MS);
    }

    #[test]
    fn days_start_at_utc_midnight() {
        let midnight_ms = midnight(2025, 6, 15);
        assert_eq!(day_start_ms(midnight_ms - 1), midnight_ms - DAY_MS);
        assert_eq!(next_day_start_ms(midnight_ms - 1), midnight_ms);
        assert_eq!(day_start_ms(midnight_ms), midnight_ms);
        assert_eq!(next_day_start_ms(midnight_ms), midnight_ms + DAY_MS);
    }
}
