/*
 * check.h - the few lines every test program shares: pass/fail counters, CHECK and
 * CHECK_CODE (the latter needs gridledger.h), run() for one named test, and
 * check_report() for the last line, "N passed, N failed", and the exit status.
 * Include it once, from the test's .c file.
 */
#ifndef GL_TESTS_CHECK_H
#define GL_TESTS_CHECK_H

#include <stdio.h>

static int passed, failed, current_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);     \
            current_failed = 1;                                                            \
        }                                                                                  \
    } while (0)

#define CHECK_CODE(st, want)                                                               \
    do {                                                                                   \
        if ((st).code != (want)) {                                                         \
            fprintf(stderr, "  %s:%d: got %s (%s), want %s\n", __FILE__, __LINE__,         \
                    gl_status_code_name((st).code), (st).message, gl_status_code_name(want)); \
            current_failed = 1;                                                            \
        }                                                                                  \
    } while (0)

/* Runs one test: "ok   NAME" on stdout, or "FAIL NAME" on stderr. */
static inline void run(const char *name, void (*fn)(void))
{
    current_failed = 0;
    fn();
    if (current_failed) {
        failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        passed++;
        printf("ok   %s\n", name);
    }
}

/* Prints "N passed, N failed"; returns main's exit status (1 when anything failed). */
static inline int check_report(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
