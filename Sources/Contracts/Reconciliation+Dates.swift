extension Reconciliation {
    /// Whether `ymd` is a calendar date YYYYMMDD between 1970-01-01 and 9999-12-31.
    public static func isValidDate(_ ymd: UInt32) -> Bool { dayNumber(ymd) != nil }

    /// Days since 1970-01-01 of the date YYYYMMDD, nil when it is not a calendar date in
    /// 1970…9999. Integer only (`CivilTime`); no input traps.
    static func dayNumber(_ ymd: UInt32) -> Int64? {
        let year = Int64(ymd / 10_000), month = Int64(ymd / 100 % 100), day = Int64(ymd % 100)
        guard (1970...9999).contains(year), (1...12).contains(month),
              day >= 1, day <= CivilTime.daysInMonth(year: year, month: month) else { return nil }
        return CivilTime.days(year: year, month: month, day: day)
    }

    /// The date YYYYMMDD of a day number (the inverse of `dayNumber`).
    static func date(ofDay days: Int64) -> UInt32 {
        let (y, m, d) = CivilTime.date(days: days)
        return UInt32(clamping: y * 10_000 + m * 100 + d)
    }

    /// The date `offset` days from `ymd` (a valid date).
    static func date(_ ymd: UInt32, plus offset: Int64) -> UInt32 {
        guard let n = dayNumber(ymd) else { return ymd }
        return date(ofDay: n + offset)
    }
}
