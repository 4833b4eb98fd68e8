/*
 * readings_csv.h - meter readings from CSV, for `gridctl ingest` (part of libgridledger).
 *
 *   file     = *blank header *( record / blank )
 *   header   = "meter_id,timestamp_ms,energy_total,energy_sharp,energy_peak,energy_flat,"
 *              "energy_valley,energy_reverse,voltage_a_dv,voltage_b_dv,voltage_c_dv,"
 *              "current_a_ma,current_b_ma,current_c_ma,active_power_w,reactive_power_var,events"
 *   record   = 17 comma-separated fields, in header order; a line ends with LF or CRLF
 *   field    = unquoted (surrounding spaces/tabs ignored) / DQUOTE *(char / DQUOTE DQUOTE) DQUOTE
 *   blank    = a line of nothing but spaces/tabs (skipped); a UTF-8 BOM may start the file
 *
 * Fields (units of Proto/gridledger/chain.proto Reading; the limits are the node's,
 * Docs/wire-protocol.md "Submitting", so a file that passes is not refused later):
 *   meter_id           1..64 characters of [A-Za-z0-9._-]
 *   timestamp_ms       integer 1 .. 10^14-1 (UTC ms)
 *   energy_*           unsigned 64-bit integers (0.01 kWh)
 *   voltage_?_dv       empty, or unsigned 32-bit (0.1 V)  } phases present: none, A only,
 *   current_?_ma       empty, or signed 32-bit (mA)       } or A, B and C (each group alone)
 *   active_power_w     signed 64-bit (W); reactive_power_var signed 64-bit (var)
 *   events             unsigned bit set of MeterEvent values 1|2|4|8|16|32 (0 .. 63)
 * Integers are decimal digits with an optional '-' on signed fields; nothing else.
 *
 * Thread safety: none needed; the functions keep no global state.
 */
#ifndef GRIDLEDGER_READINGS_CSV_H
#define GRIDLEDGER_READINGS_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gridledger/chain.pb-c.h"

#define GL_CSV_FIELDS 17
#define GL_CSV_METER_ID_MAX 64
#define GL_CSV_TIMESTAMP_MAX 99999999999999LL /* 10^14 - 1 */
#define GL_CSV_KNOWN_EVENTS 63u

extern const char *const gl_csv_columns[GL_CSV_FIELDS];

/* One validated reading. */
typedef struct gl_csv_reading {
    char *meter_id; /* malloc'd, owned by the set */
    int64_t timestamp_ms;
    uint64_t energy_total, energy_sharp, energy_peak, energy_flat, energy_valley, energy_reverse;
    uint32_t voltage_dv[3];
    size_t n_voltage; /* 0, 1 or 3 */
    int32_t current_ma[3];
    size_t n_current; /* 0, 1 or 3 */
    int64_t active_power_w;
    int64_t reactive_power_var;
    uint32_t events;
    unsigned long line; /* 1-based line of the source */
} gl_csv_reading;

typedef struct gl_csv_readings {
    gl_csv_reading *items;
    size_t count, cap;
} gl_csv_readings;

enum { GL_CSV_OK = 0, GL_CSV_EDATA = -1, GL_CSV_EIO = -2, GL_CSV_ENOMEM = -3 };

/*
 * Reads and validates the whole of `f`. `name` prefixes messages ("name:line: reason").
 * On success *out (zero it first, or reuse a freed one) holds every reading in file
 * order; on failure nothing is kept and `err` says what and where. A file with a header
 * and no record is valid (count 0). Returns GL_CSV_OK, GL_CSV_EDATA (bad content),
 * GL_CSV_EIO (read error) or GL_CSV_ENOMEM.
 */
int gl_csv_read_readings(FILE *f, const char *name, gl_csv_readings *out, char *err,
                         size_t errlen);

void gl_csv_readings_free(gl_csv_readings *r);

/*
 * Fills a protoc-c Reading that points into `r` (no allocation): valid while `r` lives;
 * never free it with *__free_unpacked.
 */
void gl_csv_reading_to_proto(const gl_csv_reading *r, Gridledger__Reading *out);

#endif /* GRIDLEDGER_READINGS_CSV_H */
