/*
 * gridctl - command-line client of a GridLedger node (gridledger.h).
 *
 *   gridctl --addr HOST:PORT --cert C --key K --ca CA [--timeout MS] [--server-name N]
 *           (status | health [SERVICE] | watch-health [SERVICE])
 *
 * Output is JSON on stdout. Exit status: 0 OK; 2 RPC or connection error, reported on
 * stderr as "error: <CODE_NAME>: <message>"; 64 usage error; 74 stdout write error.
 */
#include "gridledger.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_RPC 2
#define EXIT_USAGE 64
#define EXIT_IO 74
#define DEFAULT_UNARY_TIMEOUT_MS 10000u

static const char usage_text[] =
    "usage: gridctl --addr HOST:PORT --cert FILE --key FILE --ca FILE [--timeout MS]\n"
    "               [--server-name NAME] COMMAND\n"
    "commands:\n"
    "  status                  Ops/GetStatus, printed as JSON (needs an ops or admin cert)\n"
    "  health [SERVICE]        Health/Check: {\"status\": \"SERVING\"}\n"
    "  watch-health [SERVICE]  Health/Watch: one JSON line per update\n"
    "options:\n"
    "  --timeout MS       call deadline (default 10000 for status/health, none for watch-health)\n"
    "  --server-name NAME name the node certificate must carry (default: HOST)\n";

static int usage(const char *fmt, const char *arg)
{
    fputs("gridctl: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n", stderr);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

/* ---- JSON output ------------------------------------------------------------------------ */

/* Writes a JSON string: escapes quotes, backslashes and control characters; replaces bytes
 * that are not valid UTF-8 with U+FFFD. */
static void json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    fputc('"', f);
    while (*p) {
        unsigned char ch = *p;
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            p++;
        } else if (ch < 0x20 || ch == 0x7f) {
            switch (ch) {
            case '\n': fputs("\\n", f); break;
            case '\r': fputs("\\r", f); break;
            case '\t': fputs("\\t", f); break;
            case '\b': fputs("\\b", f); break;
            case '\f': fputs("\\f", f); break;
            default: fprintf(f, "\\u%04x", ch); break;
            }
            p++;
        } else if (ch < 0x80) {
            fputc(ch, f);
            p++;
        } else {
            /* UTF-8 sequence: lead byte, continuation count, minimum code point. */
            int n;
            unsigned long cp;
            if (ch >= 0xc2 && ch <= 0xdf) { n = 1; cp = ch & 0x1f; }
            else if (ch >= 0xe0 && ch <= 0xef) { n = 2; cp = ch & 0x0f; }
            else if (ch >= 0xf0 && ch <= 0xf4) { n = 3; cp = ch & 0x07; }
            else { n = -1; cp = 0; }
            int ok = n > 0;
            for (int i = 1; ok && i <= n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                    ok = 0;
                else
                    cp = (cp << 6) | (p[i] & 0x3f);
            }
            if (ok && ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
                       (n == 3 && (cp < 0x10000 || cp > 0x10ffff))))
                ok = 0;
            if (ok) {
                fwrite(p, 1, (size_t)n + 1, f);
                p += n + 1;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

static void json_hex(FILE *f, ProtobufCBinaryData b)
{
    fputc('"', f);
    for (size_t i = 0; i < b.len; i++)
        fprintf(f, "%02x", b.data[i]);
    fputc('"', f);
}

static void indent(FILE *f, int level)
{
    for (int i = 0; i < level; i++)
        fputs("  ", f);
}

static void print_status_json(FILE *f, const Gridledger__GetStatusResponse *r)
{
    fputs("{\n", f);
    indent(f, 1); fputs("\"node_id\": ", f); json_string(f, r->node_id); fputs(",\n", f);
    indent(f, 1); fputs("\"version\": ", f); json_string(f, r->version); fputs(",\n", f);
    indent(f, 1); fprintf(f, "\"uptime_ms\": %llu,\n", (unsigned long long)r->uptime_ms);
    indent(f, 1); fputs("\"listen_address\": ", f); json_string(f, r->listen_address); fputs(",\n", f);
    indent(f, 1); fputs("\"caller\": ", f);
    if (r->caller == NULL) {
        fputs("null", f);
    } else {
        fputs("{\n", f);
        indent(f, 2); fputs("\"name\": ", f); json_string(f, r->caller->name); fputs(",\n", f);
        indent(f, 2); fputs("\"role\": ", f); json_string(f, r->caller->role); fputs(",\n", f);
        indent(f, 2); fputs("\"district\": ", f); json_string(f, r->caller->district); fputs(",\n", f);
        indent(f, 2); fputs("\"serial\": ", f); json_string(f, r->caller->serial); fputs("\n", f);
        indent(f, 1); fputs("}", f);
    }
    fputs(",\n", f);
    indent(f, 1); fprintf(f, "\"open_connections\": %lu,\n", (unsigned long)r->open_connections);
    indent(f, 1); fprintf(f, "\"calls_served\": %llu,\n", (unsigned long long)r->calls_served);
    indent(f, 1); fprintf(f, "\"calls_failed\": %llu,\n", (unsigned long long)r->calls_failed);
    indent(f, 1);
    fprintf(f, "\"started_at_unix_ms\": %llu,\n", (unsigned long long)r->started_at_unix_ms);
    indent(f, 1); fputs("\"chains\": [", f);
    for (size_t i = 0; i < r->n_chains; i++) {
        const Gridledger__ChainStatus *ch = r->chains[i];
        fputs(i == 0 ? "\n" : ",\n", f);
        indent(f, 2); fputs("{\n", f);
        indent(f, 3); fputs("\"chain_id\": ", f); json_string(f, ch->chain_id); fputs(",\n", f);
        indent(f, 3); fprintf(f, "\"height\": %llu,\n", (unsigned long long)ch->height);
        indent(f, 3); fputs("\"head_hash\": ", f); json_hex(f, ch->head_hash); fputs(",\n", f);
        indent(f, 3); fputs("\"role\": ", f); json_string(f, ch->role); fputs("\n", f);
        indent(f, 2); fputs("}", f);
    }
    if (r->n_chains > 0) {
        fputs("\n", f);
        indent(f, 1);
    }
    fputs("]\n}\n", f);
}

static void print_health_json(FILE *f, Gridledger__ServingStatus s)
{
    fputs("{\"status\": ", f);
    json_string(f, gl_serving_status_name(s));
    fputs("}\n", f);
}

/* ---- argument parsing ----------------------------------------------------------------- */

static int parse_u64(const char *s, unsigned long long max, unsigned long long *out)
{
    char *endp = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &endp, 10);
    if (errno != 0 || endp == s || *endp != 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Splits HOST:PORT or [V6]:PORT into `host` (copied into buf) and port. */
static int parse_addr(const char *addr, char *buf, size_t buflen, uint16_t *port)
{
    const char *host, *colon;
    size_t hostlen;
    unsigned long long p;

    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        host = addr + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || strchr(addr, ':') != colon)
            return -1;
        host = addr;
        hostlen = (size_t)(colon - addr);
    }
    if (hostlen == 0 || hostlen >= buflen || parse_u64(colon + 1, 65535, &p) != 0 || p == 0)
        return -1;
    memcpy(buf, host, hostlen);
    buf[hostlen] = 0;
    *port = (uint16_t)p;
    return 0;
}

int main(int argc, char **argv)
{
    const char *addr = NULL, *cert = NULL, *key = NULL, *ca = NULL, *server_name = NULL;
    const char *timeout_arg = NULL;
    const char *positional[3] = {NULL, NULL, NULL};
    int npos = 0;
    char host[256];
    unsigned long long timeout = 0;
    int have_timeout = 0;
    gl_options opts;
    gl_client *client = NULL;
    gl_stream *watch = NULL;
    Gridledger__GetStatusResponse *status_resp = NULL;
    gl_status st;
    char err[GL_STATUS_MESSAGE_MAX];
    int rc = EXIT_USAGE;

    memset(&st, 0, sizeof st);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            rc = 0;
            goto end;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == 0) {
            if (npos == 3) {
                rc = usage("unexpected argument %s", a);
                goto end;
            }
            positional[npos++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        if (nlen == 4 && strncmp(name, "addr", 4) == 0) slot = &addr;
        else if (nlen == 4 && strncmp(name, "cert", 4) == 0) slot = &cert;
        else if (nlen == 3 && strncmp(name, "key", 3) == 0) slot = &key;
        else if (nlen == 2 && strncmp(name, "ca", 2) == 0) slot = &ca;
        else if (nlen == 7 && strncmp(name, "timeout", 7) == 0) slot = &timeout_arg;
        else if (nlen == 11 && strncmp(name, "server-name", 11) == 0) slot = &server_name;
        else {
            rc = usage("unknown option %s", a);
            goto end;
        }
        if (eq != NULL) {
            *slot = eq + 1;
        } else {
            if (i + 1 >= argc) {
                rc = usage("option %s needs a value", a);
                goto end;
            }
            *slot = argv[++i];
        }
    }
    if (npos == 0) {
        rc = usage("missing command%s", "");
        goto end;
    }
    const char *cmd = positional[0];
    const char *service = npos > 1 ? positional[1] : "";
    int is_status = strcmp(cmd, "status") == 0;
    int is_health = strcmp(cmd, "health") == 0;
    int is_watch = strcmp(cmd, "watch-health") == 0;
    if (!is_status && !is_health && !is_watch) {
        rc = usage("unknown command %s", cmd);
        goto end;
    }
    if (npos > (is_status ? 1 : 2)) {
        rc = usage("too many arguments for %s", cmd);
        goto end;
    }
    if (addr == NULL || cert == NULL || key == NULL || ca == NULL) {
        rc = usage("--addr, --cert, --key and --ca are required%s", "");
        goto end;
    }
    if (parse_addr(addr, host, sizeof host, &opts.port) != 0) {
        rc = usage("--addr %s is not HOST:PORT", addr);
        goto end;
    }
    if (timeout_arg != NULL) {
        if (parse_u64(timeout_arg, 86400000ull, &timeout) != 0) {
            rc = usage("--timeout %s is not a number of milliseconds (0..86400000)", timeout_arg);
            goto end;
        }
        have_timeout = 1;
    } else if (!is_watch) {
        timeout = DEFAULT_UNARY_TIMEOUT_MS;
    }

    /* A dropped connection must surface as an error, not kill us. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "error: cannot ignore SIGPIPE: %s\n", strerror(errno));
        rc = 1;
        goto end;
    }

    opts.host = host;
    opts.cert_path = cert;
    opts.key_path = key;
    opts.ca_path = ca;
    opts.server_name = server_name;
    opts.connect_timeout_ms = have_timeout && timeout > 0 && timeout < 10000 ? (uint32_t)timeout : 0;
    opts.max_message_bytes = 0;
    client = gl_connect(&opts, err, sizeof err);
    if (client == NULL) {
        fprintf(stderr, "error: %s: %s\n", gl_status_code_name(GL_UNAVAILABLE), err);
        rc = EXIT_RPC;
        goto end;
    }

    if (is_status) {
        if (gl_get_status(client, timeout, &status_resp, &st) != GL_OK)
            goto rpc_error;
        print_status_json(stdout, status_resp);
    } else if (is_health) {
        Gridledger__ServingStatus s = GRIDLEDGER__SERVING_STATUS__SERVING_STATUS_UNKNOWN;
        if (gl_health_check(client, service, timeout, &s, &st) != GL_OK)
            goto rpc_error;
        print_health_json(stdout, s);
    } else {
        Gridledger__ServingStatus s;
        watch = gl_health_watch(client, service, timeout, &st);
        if (watch == NULL)
            goto rpc_error;
        while (gl_health_watch_next(watch, &s, &st) == 1) {
            print_health_json(stdout, s);
            if (fflush(stdout) != 0 || ferror(stdout)) {
                fprintf(stderr, "error: writing to stdout failed: %s\n", strerror(errno));
                rc = EXIT_IO;
                goto end;
            }
        }
        if (st.code != GL_OK)
            goto rpc_error;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "error: writing to stdout failed: %s\n", strerror(errno));
        rc = EXIT_IO;
        goto end;
    }
    rc = 0;
    goto end;

rpc_error:
    fprintf(stderr, "error: %s: %s\n", gl_status_code_name(st.code), st.message);
    rc = EXIT_RPC;
end:
    if (status_resp != NULL)
        gridledger__get_status_response__free_unpacked(status_resp, NULL);
    gl_stream_free(watch);
    gl_close(client);
    return rc;
}
