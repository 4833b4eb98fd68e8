/// Proleptic Gregorian calendar arithmetic in integers, for a fixed UTC offset.
///
/// No time zone database and no clock: a tariff's local time is UTC plus a fixed number of
/// minutes (DOMAIN.md "Tariffs"), so every replica computes the same dates.
public enum CivilTime {
    static let msPerMinute: Int64 = 60_000
    static let msPerHour: Int64 = 3_600_000
    static let msPerDay: Int64 = 86_400_000

    /// A local instant broken down.
    public struct Local: Equatable, Sendable {
        public var year: Int64
        /// 1...12
        public var month: Int64
        /// 1...31
        public var day: Int64
        /// 0...23
        public var hour: Int64
        /// Days since 1970-01-01 (local calendar).
        public var dayNumber: Int64
        /// 0 = Sunday ... 6 = Saturday.
        public var weekday: Int64
        /// ms since local midnight.
        public var msOfDay: Int64

        public var isWeekend: Bool { weekday == 0 || weekday == 6 }
    }

    /// Floor division (rounds toward negative infinity).
    public static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    public static func floorMod(_ a: Int64, _ b: Int64) -> Int64 { a - floorDiv(a, b) * b }

    /// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day number.
    static func date(days z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isLeap(_ year: Int64) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `utcMs` in local time at `offsetMinutes` east of UTC.
    static func local(_ utcMs: Int64, offsetMinutes: Int32) -> Local {
        local(utcMs, offsetMs: Int64(offsetMinutes) * msPerMinute)
    }

    /// `utcMs` in local time at `offsetMs` east of UTC.
    public static func local(_ utcMs: Int64, offsetMs: Int64) -> Local {
        let localMs = utcMs + offsetMs
        let dayNumber = floorDiv(localMs, msPerDay)
        let msOfDay = localMs - dayNumber * msPerDay
        let d = date(days: dayNumber)
        return Local(
            year: d.year, month: d.month, day: d.day, hour: msOfDay / msPerHour,
            dayNumber: dayNumber, weekday: floorMod(dayNumber + 4, 7), msOfDay: msOfDay
        )
    }

    /// UTC ms of local midnight starting `dayNumber`.
    static func utcMs(ofLocalDay dayNumber: Int64, offsetMinutes: Int32) -> Int64 {
        dayNumber * msPerDay - Int64(offsetMinutes) * msPerMinute
    }
}
