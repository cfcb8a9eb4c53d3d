"""`errors.classify` against the exact errors tritonclient / grpc / aiohttp / sockets raise
(strings captured from Triton 2.51 under PyTriton 0.7 with tritonclient 2.73; see
docs/errors-and-retries.md)."""

from __future__ import annotations

import http.client
import socket
import ssl

import aiohttp
import grpc
import pytest
from tritonclient.utils import InferenceServerException

from steerlm._classify import in_band_error
from steerlm.errors import (
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    InvalidRequestError,
    ModelNotFoundError,
    RequestTimeoutError,
    ServerOverloadedError,
    ServerUnavailableError,
    SteerLMError,
    TritonError,
    classify,
    is_transport_error,
)
from steerlm.transport.base import mapped_errors
from steerlm.transport.generate_ext import GenerateError
from steerlm.transport.rest import RestStatusError

MODEL_ERROR = (
    "Failed to process the request(s) for model 'echo_0_0', message: TritonModelException: Model execute "
    "error: Traceback (most recent call last):\n  File \"/tmp/x/1/model.py\", line 492, in execute\n"
    "    raise triton_responses_or_error\nc_python_backend_utils.TritonModelException: Traceback (most recent "
    "call last):\n  File \"/srv.py\", line 16, in echo\n    raise ValueError(\"boom \" + p)\n"
    "ValueError: boom raise now\n\n\n\nAt:\n  /tmp/x/1/model.py(501): execute\n"
)


def ise(msg: str, status: str | None = None) -> InferenceServerException:
    return InferenceServerException(msg=msg, status=status)


class FakeRpcError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


CASES: list[tuple[BaseException, type[SteerLMError], str]] = [
    (ise("Request for unknown model: 'nope' is not found", "StatusCode.NOT_FOUND"), ModelNotFoundError, "nope"),
    (ise("Request for unknown model: 'nope' is not found", "404"), ModelNotFoundError, "nope"),
    (ise("Request for unknown model: 'm' version 1 is not at ready state", "StatusCode.UNAVAILABLE"),
     ModelNotFoundError, "ready state"),
    (ise(MODEL_ERROR, "StatusCode.INTERNAL"), InvalidRequestError, "ValueError: boom raise now"),
    (ise(MODEL_ERROR, "500"), InvalidRequestError, "ValueError: boom raise now"),
    (ise("Traceback (most recent call last):\n  File x\nValueError: stream boom"), InvalidRequestError,
     "ValueError: stream boom"),
    (ise("ModelInfer RPC doesn't support models with decoupled transaction policy", "StatusCode.UNIMPLEMENTED"),
     InvalidRequestError, "decoupled"),
    (ise("HTTP end point doesn't support models with decoupled transaction policy", "501"),
     InvalidRequestError, "decoupled"),
    (ise("unexpected inference input 'foo' for model 'echo'", "StatusCode.INVALID_ARGUMENT"),
     InvalidRequestError, "foo"),
    (ise("[request id: <id_unknown>] inference input 'max_output_len' data-type is 'INT32', but model 'echo' "
         "expects 'INT64'", "400"), InvalidRequestError, "INT64"),
    (ise("got unexpected numpy array shape [1, 2], expected [1, 1]"), InvalidRequestError, "shape"),
    (ise("This protocol is restricted, expecting header 'triton-grpc-protocol-triton-access-token'",
         "StatusCode.UNAVAILABLE"), AuthenticationError, "restricted"),
    (ise("This API is restricted, expecting header 'triton-access-token'", "403"), AuthenticationError,
     "restricted"),
    (ise("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"), RequestTimeoutError, "Deadline"),
    (ise("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:18009: Failed to connect to "
         "remote host: Connection refused", "StatusCode.UNAVAILABLE"), ServerUnavailableError, "refused"),
    (ise("Socket closed", "StatusCode.UNAVAILABLE"), ServerUnavailableError, "Socket closed"),
    (ise("Locally cancelled by application!", "StatusCode.CANCELLED"), ServerUnavailableError, "cancelled"),
    (ise("RST_STREAM", "StatusCode.INTERNAL"), ServerUnavailableError, "RST_STREAM"),
    (ise("Bad Gateway", "502"), ServerUnavailableError, "Gateway"),
    (ise("Service Unavailable", "503"), ServerUnavailableError, "Unavailable"),
    (ise("slow down", "429"), ServerOverloadedError, "slow down"),
    (ise("quota", "StatusCode.RESOURCE_EXHAUSTED"), ServerOverloadedError, "quota"),
    (FakeRpcError(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer"), ServerUnavailableError, "reset"),
    (FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"), RequestTimeoutError, "Deadline"),
    (TimeoutError("timed out"), RequestTimeoutError, "timed out"),
    (TimeoutError(), RequestTimeoutError, "no answer in time"),
    (TimeoutError("timed out"), RequestTimeoutError, "timed out"),
    (ConnectionRefusedError(111, "Connection refused"), ServerUnavailableError, "refused"),
    (ConnectionResetError(104, "Connection reset by peer"), ServerUnavailableError, "reset"),
    (BrokenPipeError(32, "Broken pipe"), ServerUnavailableError, "Broken pipe"),
    (socket.gaierror(-2, "Name or service not known"), ServerUnavailableError, "Name or service"),
    (aiohttp.ServerDisconnectedError(), ServerUnavailableError, "Server disconnected"),
    (aiohttp.ClientPayloadError("Response payload is not completed"), ServerUnavailableError, "payload"),
    (OSError(113, "No route to host"), ServerUnavailableError, "No route"),
    (ise("Invalid metadata", "StatusCode.INTERNAL"), ConfigurationError, "header"),
    (ise("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:40001: Ssl handshake failed "
         "(TSI_PROTOCOL_FAILURE): Hostname Verification Check failed.", "StatusCode.UNAVAILABLE"),
     ConfigurationError, "host"),
    (ise("Peer name 127.0.0.1 is not in peer certificate", "StatusCode.UNAVAILABLE"), ConfigurationError,
     "certificate"),
    (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required (_ssl.c:2580)"),
     ConfigurationError, "client_certificate"),
    (ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate "
                                     "has expired (_ssl.c:1006)"), ConfigurationError, "expired"),
    (ise("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:45679: Tls handshake failed "
         "(TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
         "CERTIFICATE_VERIFY_FAILED: self signed certificate: OK", "StatusCode.UNAVAILABLE"),
     ConfigurationError, "root_certificates"),
    (ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
                                     "certificate (_ssl.c:1006)"), ConfigurationError, "self-signed"),
]


@pytest.mark.parametrize(("exc", "expected", "fragment"), CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_classify(exc: BaseException, expected: type[SteerLMError], fragment: str) -> None:
    result = classify(exc, model="m")
    assert type(result) is expected
    assert fragment.lower() in str(result).lower()
    if isinstance(result, TritonError):
        assert result.model == "m"


def test_model_errors_are_summarised_to_the_exception_line() -> None:
    result = classify(ise(MODEL_ERROR, "500"))
    assert "Traceback" not in str(result) and str(result).endswith("ValueError: boom raise now")


def test_already_classified_errors_pass_through() -> None:
    error = ServerUnavailableError("x")
    assert classify(error) is error


def test_statuses_are_recorded() -> None:
    assert classify(ise("x", "StatusCode.UNAVAILABLE")).status == "UNAVAILABLE"  # type: ignore[attr-defined]
    assert classify(ise("x", "400")).status == "400"  # type: ignore[attr-defined]


def test_client_connector_error_is_unavailable() -> None:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    exc = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connect call failed"))
    assert isinstance(classify(exc), ServerUnavailableError)


@pytest.mark.parametrize("bug", [KeyError("k"), AttributeError("'NoneType' object has no attribute 'x'"),
                                 ValueError("something else"), TypeError("bad operand"), RuntimeError("boom")])
def test_non_transport_errors_are_re_raised_unchanged(bug: Exception) -> None:
    """Our own bugs (and the caller's) surface as themselves, not as a server rejection."""
    assert not is_transport_error(bug)
    with pytest.raises(type(bug)) as raised:
        classify(bug)
    assert raised.value is bug
    with pytest.raises(type(bug)) as raised, mapped_errors("m"):
        raise bug
    assert raised.value is bug and raised.value.__cause__ is None


def test_transport_families_are_recognised() -> None:
    for exc in (ise("x"), FakeRpcError(grpc.StatusCode.UNAVAILABLE, "x"), aiohttp.ServerDisconnectedError(),
                OSError(1, "x"), TimeoutError(), ssl.SSLError(1, "x"), http.client.IncompleteRead(b""),
                GenerateError("x", 500), RestStatusError(500, "x")):
        assert is_transport_error(exc), exc


_OVERFLOWS = [
    "Prompt length (5000) exceeds maximum input length (4096). Set log level to info and check TRTGptModel logs",
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4990 in the "
    "messages, 10 in the completion). Please reduce the length of the messages or completion.",
    "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that "
    "`max_model_len` is no smaller than the number of text tokens.",
    "prompt is too long: 5000 tokens > 4096",
    "prompt (5000 tokens) plus max_tokens (64) exceeds the model's 4096 positions",
]


@pytest.mark.parametrize("message", _OVERFLOWS)
@pytest.mark.parametrize("status", [grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT,
                                    grpc.StatusCode.UNKNOWN])
def test_server_overflow_wordings_become_context_window_errors(message: str, status: grpc.StatusCode) -> None:
    error = classify(InferenceServerException(f"Failed to process the request(s) for model: ValueError: {message}",
                                              status=status.name))
    assert isinstance(error, ContextWindowExceededError) and "Shorten the conversation" in str(error)


@pytest.mark.parametrize("message", _OVERFLOWS)
def test_in_band_overflow_replies_become_context_window_errors(message: str) -> None:
    assert isinstance(in_band_error(message, "m"), ContextWindowExceededError)
    assert type(in_band_error("boom", "m")) is InvalidRequestError
    assert not isinstance(classify(InferenceServerException("positions 3 and 4 differ", status="INTERNAL")),
                          ContextWindowExceededError)
