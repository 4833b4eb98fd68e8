/*
 * tariff_file.h - a Tariff (Proto/gridledger/contracts.proto) from a small line-based file,
 * for `gridctl param tariff --file` (part of libgridledger). The Python client reads the
 * same tariff as JSON; this format carries the same fields without a JSON parser in C.
 *
 *   file    = *( line LF )                    ; CRLF accepted; '#' starts a comment
 *   line    = blank / entry
 *   entry   = "tariff_id" SP ID                 ; required, once
 *           / "utc_offset_minutes" SP INT       ; once; default 0 (480 = +08:00)
 *           / "period" SP NAME SP PRICE         ; one per period, in index order 0, 1, ...;
 *                                               ; PRICE base price, 0.0001 CNY/kWh
 *           / "cycle" SP ("monthly" / "annual") ; once; default monthly
 *           / "tier_limits" *(SP UINT)          ; once; ascending, 0.01 kWh
 *           / "tier_surcharges" *(SP INT)       ; once; one per tier limit, 0.0001 CNY/kWh
 *           / "fixed_charge_fen" SP INT         ; once; default 0
 *           / day SP MONTHS SP HOURS SP INDEX   ; sets those schedule cells to period INDEX
 *   day     = "weekday" / "weekend" / "all"     ; "all" sets both schedules
 *   MONTHS  = N / N "-" N   (1..12)   HOURS = N / N "-" N   (0..23, local time)
 *
 * Schedule lines apply in file order (a later line overrides an earlier one); at the end
 * every one of the 12 x 24 cells of both schedules must be set, and every index must name
 * a period. Fields are separated by spaces or tabs. Example:
 *
 *   tariff_id T1
 *   utc_offset_minutes 480
 *   period sharp 15000
 *   period peak 12000
 *   period flat 8000
 *   period valley 4000
 *   all 1-12 0-23 2        # flat by default
 *   all 1-12 8-10 1        # peak 08:00-10:59
 *   all 7-8 11-12 0        # sharp in summer
 *   all 1-12 23 3
 *   all 1-12 0-6 3
 *   tier_limits 20000 40000
 *   tier_surcharges 500 3000
 *
 * Thread safety: none needed; no global state.
 */
#ifndef GRIDLEDGER_TARIFF_FILE_H
#define GRIDLEDGER_TARIFF_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gridledger/contracts.pb-c.h"

#define GL_TARIFF_CELLS 288      /* 12 months x 24 hours, month-major */
#define GL_TARIFF_MAX_PERIODS 16
#define GL_TARIFF_MAX_TIERS 16
#define GL_TARIFF_NAME_MAX 64

/* A parsed tariff. `msg` points into the struct itself: do not copy a gl_tariff, and
 * never free msg with *__free_unpacked. */
typedef struct gl_tariff {
    Gridledger__Tariff msg;
    char tariff_id[GL_TARIFF_NAME_MAX + 1];
    char period_names[GL_TARIFF_MAX_PERIODS][GL_TARIFF_NAME_MAX + 1];
    Gridledger__TariffPeriod periods[GL_TARIFF_MAX_PERIODS];
    Gridledger__TariffPeriod *period_ptrs[GL_TARIFF_MAX_PERIODS];
    uint8_t weekday[GL_TARIFF_CELLS], weekend[GL_TARIFF_CELLS];
    uint64_t tier_limits[GL_TARIFF_MAX_TIERS];
    int64_t tier_surcharges[GL_TARIFF_MAX_TIERS];
} gl_tariff;

enum { GL_TARIFF_OK = 0, GL_TARIFF_EDATA = -1, GL_TARIFF_EIO = -2 };

/*
 * Reads the whole of `f` into *out. `name` prefixes messages ("name:line: reason").
 * Returns GL_TARIFF_OK, GL_TARIFF_EDATA (bad content; err says what and where) or
 * GL_TARIFF_EIO.
 */
int gl_tariff_read(FILE *f, const char *name, gl_tariff *out, char *err, size_t errlen);

#endif /* GRIDLEDGER_TARIFF_FILE_H */
