/*
 * contracts.c - wrappers of the anchoring and fee-control calls (Docs/anchoring.md,
 * Proto/gridledger/anchor.proto and contracts.proto): Query/ProveBlock, FeeControl (GetAccount,
 * ListAccounts, ListCommands, GetDistrictResults on the main chain),
 * Control/SubscribeCommands, Notices/Subscribe, and the TxPayload envelope of submissions
 * other than readings. See gridledger.h for the contracts.
 */
#include "gridledger.h"
#include "gl_internal.h"

#include <string.h>
#include <time.h>

#include <openssl/rand.h>

void gl_prove_block_request_init(Gridledger__ProveBlockRequest *req, const char *chain_id,
                                 uint64_t height)
{
    gridledger__prove_block_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->height = height;
}

int gl_prove_block(gl_client *c, uint64_t height, uint64_t timeout_ms,
                   Gridledger__BlockProof **out, gl_status *status_out)
{
    Gridledger__ProveBlockRequest req;
    gl_prove_block_request_init(&req, gl_client_chain_id(c), height);
    return gl_unary_as(c, "/gridledger.Query/ProveBlock", &req.base, &gridledger__block_proof__descriptor,
                 (void **)out, timeout_ms, status_out);
}

void gl_get_account_request_init(Gridledger__GetAccountRequest *req, const char *chain_id,
                                 const char *account)
{
    gridledger__get_account_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->account = gl_str(account);
}

int gl_get_account(gl_client *c, const char *account, uint64_t timeout_ms,
                   Gridledger__GetAccountResponse **out, gl_status *status_out)
{
    Gridledger__GetAccountRequest req;
    gl_get_account_request_init(&req, gl_client_chain_id(c), account);
    return gl_unary_as(c, "/gridledger.FeeControl/GetAccount", &req.base,
                 &gridledger__get_account_response__descriptor, (void **)out, timeout_ms,
                 status_out);
}

void gl_list_accounts_request_init(Gridledger__ListAccountsRequest *req, const char *chain_id,
                                   Gridledger__AccountState state, int any_warning,
                                   uint32_t limit)
{
    gridledger__list_accounts_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->state = state;
    req->any_warning = any_warning != 0;
    req->limit = limit;
}

int gl_list_accounts(gl_client *c, Gridledger__AccountState state, int any_warning,
                     uint32_t limit, uint64_t timeout_ms, Gridledger__ListAccountsResponse **out,
                     gl_status *status_out)
{
    Gridledger__ListAccountsRequest req;
    gl_list_accounts_request_init(&req, gl_client_chain_id(c), state, any_warning, limit);
    return gl_unary_as(c, "/gridledger.FeeControl/ListAccounts", &req.base,
                 &gridledger__list_accounts_response__descriptor, (void **)out, timeout_ms,
                 status_out);
}

void gl_list_commands_request_init(Gridledger__ListCommandsRequest *req, const char *chain_id,
                                   Gridledger__CommandStatus status, uint32_t limit)
{
    gridledger__list_commands_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->status = status;
    req->limit = limit;
}

int gl_list_commands(gl_client *c, Gridledger__CommandStatus status, uint32_t limit,
                     uint64_t timeout_ms, Gridledger__ListCommandsResponse **out,
                     gl_status *status_out)
{
    Gridledger__ListCommandsRequest req;
    gl_list_commands_request_init(&req, gl_client_chain_id(c), status, limit);
    return gl_unary_as(c, "/gridledger.FeeControl/ListCommands", &req.base,
                 &gridledger__list_commands_response__descriptor, (void **)out, timeout_ms,
                 status_out);
}

void gl_district_results_request_init(Gridledger__GetDistrictResultsRequest *req,
                                      const char *chain_id, const char *district,
                                      const char *after_account, uint32_t limit)
{
    gridledger__get_district_results_request__init(req);
    req->chain_id = gl_str(chain_id);
    req->district = gl_str(district);
    req->after_account = gl_str(after_account);
    req->limit = limit;
}

int gl_district_results(gl_client *c, const char *district, const char *after_account,
                        uint32_t limit, uint64_t timeout_ms,
                        Gridledger__GetDistrictResultsResponse **out, gl_status *status_out)
{
    Gridledger__GetDistrictResultsRequest req;
    gl_district_results_request_init(&req, gl_client_chain_id(c), district, after_account, limit);
    return gl_unary_as(c, "/gridledger.FeeControl/GetDistrictResults", &req.base,
                       &gridledger__get_district_results_response__descriptor, (void **)out,
                       timeout_ms, status_out);
}

gl_stream *gl_subscribe_commands(gl_client *c, uint64_t timeout_ms, gl_status *status_out)
{
    Gridledger__SubscribeCommandsRequest req;
    gridledger__subscribe_commands_request__init(&req);
    req.chain_id = gl_str(gl_client_chain_id(c));
    return gl_stream_open_with(c, "/gridledger.Control/SubscribeCommands", &req.base,
                               &gridledger__control_command__descriptor, timeout_ms, status_out);
}

int gl_subscribe_commands_next(gl_stream *s, Gridledger__ControlCommand **out,
                               gl_status *status_out)
{
    return gl_stream_next_as(s, (void **)out, status_out);
}

gl_stream *gl_subscribe_notices(gl_client *c, uint64_t from_height, uint64_t timeout_ms,
                                gl_status *status_out)
{
    Gridledger__SubscribeNoticesRequest req;
    gridledger__subscribe_notices_request__init(&req);
    req.chain_id = gl_str(gl_client_chain_id(c));
    req.from_height = from_height;
    return gl_stream_open_with(c, "/gridledger.Notices/Subscribe", &req.base,
                               &gridledger__notice__descriptor, timeout_ms, status_out);
}

int gl_subscribe_notices_next(gl_stream *s, Gridledger__Notice **out, gl_status *status_out)
{
    return gl_stream_next_as(s, (void **)out, status_out);
}

int gl_tx_payload_init(Gridledger__TxPayload *p, const char *chain_id,
                       char nonce_buf[GL_NONCE_BUF])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[(GL_NONCE_BUF - 1) / 2];
    struct timespec ts;

    gridledger__tx_payload__init(p);
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++) {
        nonce_buf[2 * i] = digits[raw[i] >> 4];
        nonce_buf[2 * i + 1] = digits[raw[i] & 15];
    }
    nonce_buf[GL_NONCE_BUF - 1] = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->chain_id = gl_str(chain_id);
    p->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    p->nonce = nonce_buf;
    return 0;
}

/* The enum value's name without `prefix`; "UNKNOWN" when the value has none. */
static const char *enum_name(const ProtobufCEnumDescriptor *d, int value, const char *prefix)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    size_t n = strlen(prefix);
    if (v == NULL)
        return "UNKNOWN";
    return strncmp(v->name, prefix, n) == 0 ? v->name + n : v->name;
}

const char *gl_account_state_name(Gridledger__AccountState s)
{
    return enum_name(&gridledger__account_state__descriptor, (int)s, "ACCOUNT_STATE_");
}

const char *gl_command_kind_name(Gridledger__CommandKind k)
{
    return enum_name(&gridledger__command_kind__descriptor, (int)k, "COMMAND_KIND_");
}

const char *gl_command_status_name(Gridledger__CommandStatus s)
{
    return enum_name(&gridledger__command_status__descriptor, (int)s, "COMMAND_STATUS_");
}

const char *gl_notice_kind_name(Gridledger__NoticeKind k)
{
    return enum_name(&gridledger__notice_kind__descriptor, (int)k, "NOTICE_KIND_");
}
