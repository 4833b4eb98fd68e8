"""GridLedger Python client: framed protobuf RPC over mutual TLS 1.3.

See Docs/wire-protocol.md in the repository for the protocol.
"""

from .client import ALPN_PROTOCOL, BidiStream, Client, ResponseStream, ack_error, \
    get_block_request, member_request, member_response_json, \
    serving_status_name
from .connect_errors import describe_connect_error
from .parameters import activation_parameter, certificates_der, command_ack, \
    customer_parameter, district_registration, notice_templates_parameter, \
    payment_parameter, reversal_parameter, tariff_from_json, tariff_parameter, \
    thresholds_parameter, tx_payload, vee_parameters
from .proof import ProofError, ProofResult, verify_proof
from .readings_csv import ReadingsCsvError, parse_readings_csv, read_readings_csv
from .signing import Signer, readings_payload, tx_id, verify_signature
from .status import TX_LOCATION_METADATA_KEY, RpcError, StatusCode

__all__ = ["Client", "RpcError", "StatusCode", "ResponseStream", "BidiStream",
           "ALPN_PROTOCOL", "serving_status_name", "ack_error", "Signer", "tx_id", "verify_signature",
           "readings_payload", "TX_LOCATION_METADATA_KEY", "ReadingsCsvError",
           "parse_readings_csv", "read_readings_csv", "member_request", "member_response_json",
           "get_block_request", "verify_proof", "ProofError", "ProofResult", "tx_payload",
           "district_registration", "certificates_der", "customer_parameter",
           "tariff_parameter", "tariff_from_json", "thresholds_parameter", "payment_parameter",
           "command_ack", "reversal_parameter", "activation_parameter", "vee_parameters",
           "notice_templates_parameter", "describe_connect_error"]
__version__ = "0.2.0"
