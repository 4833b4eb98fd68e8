/*
 * gridctl's administration commands: admin (Raft membership: transfer-leader, add-member,
 * promote, remove) and register-district (a DistrictRegistration on the main chain).
 */
#include "gridctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* {"leader": N, "voters": [...], "learners": [...]} on one line. */
static void print_member_response(const Gridledger__MemberResponse *r)
{
    const Gridledger__RaftConfState *cs = r->conf_state;
    jw w;
    jw_init(&w, stdout, 0);
    jw_open(&w, '{');
    jw_ku64(&w, "leader", r->leader);
    jw_key(&w, "voters");
    jw_u64_array(&w, cs != NULL ? cs->voters : NULL, cs != NULL ? cs->n_voters : 0);
    jw_key(&w, "learners");
    jw_u64_array(&w, cs != NULL ? cs->learners : NULL, cs != NULL ? cs->n_learners : 0);
    jw_close(&w, '}');
}

/* admin SUBCOMMAND --chain ID --node N [--name CN --address HOST:PORT] */
int cmd_admin(app *a)
{
    static const char *const subs[] = {"transfer-leader", "add-member", "promote", "remove"};
    Gridledger__MemberResponse *r = NULL;
    unsigned long long node = 0;
    char host[256];
    uint16_t port;
    int sub = -1, code;

    if (a->npos != 2)
        return usage("admin needs a subcommand: transfer-leader, add-member, promote, remove");
    for (int k = 0; k < 4; k++)
        if (strcmp(a->pos[1], subs[k]) == 0)
            sub = k;
    if (sub < 0)
        return usage("unknown admin subcommand %s", a->pos[1]);
    if (a->opt[OPT_CHAIN] == NULL || a->opt[OPT_CHAIN][0] == 0)
        return usage("admin %s needs --chain ID", subs[sub]);
    if (a->opt[OPT_NODE] == NULL || parse_u64(a->opt[OPT_NODE], UINT64_MAX, &node) != 0 ||
        node == 0)
        return usage("admin %s needs --node N (a Raft member id, 1 or more)", subs[sub]);
    if (sub == 1) {
        if (a->opt[OPT_NAME] == NULL || a->opt[OPT_NAME][0] == 0)
            return usage("admin add-member needs --name CN (the member's node certificate CN)");
        if (a->opt[OPT_ADDRESS] == NULL ||
            parse_addr(a->opt[OPT_ADDRESS], host, sizeof host, &port) != 0)
            return usage("admin add-member needs --address HOST:PORT");
        if (a->opt[OPT_PIN] != NULL &&
            (strncmp(a->opt[OPT_PIN], "sha256:", 7) != 0 || strlen(a->opt[OPT_PIN]) != 71 ||
             strspn(a->opt[OPT_PIN] + 7, "0123456789abcdefABCDEF") != 64))
            return usage("--pin must be sha256: and 64 hex digits (gridnode ca issue prints it)");
    } else if (a->opt[OPT_NAME] != NULL || a->opt[OPT_ADDRESS] != NULL || a->opt[OPT_PIN] != NULL) {
        return usage("--name, --address and --pin are options of admin add-member only");
    }
    if (connect_app(a) != 0)
        return EXIT_RPC;
    switch (sub) {
    case 0:
        code = gl_admin_transfer_leader(a->client, a->opt[OPT_CHAIN], node, a->timeout, &r, &a->st);
        break;
    case 1:
        code = gl_admin_add_member_pinned(a->client, a->opt[OPT_CHAIN], node, a->opt[OPT_NAME],
                                          a->opt[OPT_ADDRESS], a->opt[OPT_PIN], a->timeout, &r,
                                          &a->st);
        break;
    case 2:
        code = gl_admin_promote_member(a->client, a->opt[OPT_CHAIN], node, a->timeout, &r, &a->st);
        break;
    default:
        code = gl_admin_remove_member(a->client, a->opt[OPT_CHAIN], node, a->timeout, &r, &a->st);
        break;
    }
    if (code != GL_OK)
        return rpc_error(&a->st);
    print_member_response(r);
    gridledger__member_response__free_unpacked(r, NULL);
    return flush_stdout();
}

/* Appends the DER of every certificate in PEM file `path` to *ders. 0 or an exit status. */
static int read_pem_certs(const char *path, ProtobufCBinaryData **ders, size_t *n)
{
    FILE *f = fopen(path, "r");
    X509 *x;
    size_t before = *n;
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_NOINPUT;
    }
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509_free(x);
        ProtobufCBinaryData *grown = realloc(*ders, (*n + 1) * sizeof **ders);
        uint8_t *copy = len > 0 ? malloc((size_t)len) : NULL;
        if (grown == NULL || copy == NULL) {
            OPENSSL_free(der);
            free(copy);
            if (grown != NULL)
                *ders = grown;
            fclose(f);
            fprintf(stderr, "error: out of memory or bad certificate in %s\n", path);
            return 1;
        }
        memcpy(copy, der, (size_t)len);
        OPENSSL_free(der);
        *ders = grown;
        (*ders)[*n].data = copy;
        (*ders)[*n].len = (size_t)len;
        (*n)++;
    }
    ERR_clear_error();
    fclose(f);
    if (*n == before) {
        fprintf(stderr, "%s: no PEM certificate\n", path);
        return EXIT_DATAERR;
    }
    return 0;
}

/* register-district DISTRICT CERT.pem... [--chain MAIN] (admin) */
int cmd_register_district(app *a)
{
    ProtobufCBinaryData *ders = NULL;
    size_t n = 0;
    int rc = 0;
    if (a->npos < 3 || a->pos[1][0] == 0)
        return usage("register-district needs a DISTRICT and at least one CERT.pem");
    for (int i = 2; i < a->npos; i++)
        if ((rc = read_pem_certs(a->pos[i], &ders, &n)) != 0)
            goto end;
    Gridledger__DistrictRegistration reg;
    gridledger__district_registration__init(&reg);
    reg.district = (char *)a->pos[1];
    reg.member_certificates = ders;
    reg.n_member_certificates = n;
    Gridledger__TxPayload payload;
    gridledger__tx_payload__init(&payload);
    payload.body_case = GRIDLEDGER__TX_PAYLOAD__BODY_DISTRICT_REGISTRATION;
    payload.district_registration = &reg;
    rc = submit_command(a, &payload);
end:
    for (size_t i = 0; i < n; i++)
        free(ders[i].data);
    free(ders);
    return rc;
}
