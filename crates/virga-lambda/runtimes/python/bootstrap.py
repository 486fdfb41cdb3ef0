"""Virga's runtime interface client for Python Lambda functions.

Virga starts this file as `python3 -u bootstrap.py` with cwd = LAMBDA_TASK_ROOT.
It speaks the Lambda Runtime API (GET .../invocation/next, POST .../response or
.../error) the way AWS's own client, awslambdaric, does, and reproduces its
error bodies and log lines so functions behave as they would on AWS.

Start-up time matters (every cold start pays it), so only cheap modules are
imported at the top. In particular the Runtime API is spoken over a raw
keep-alive socket: http.client drags in the email package and costs ~20 ms,
more than everything else here together.
"""

import json
import logging
import os
import socket
import sys
import time

_API_PREFIX = "/2018-06-01/runtime"
# Traceback frames from this file are cut off the user's stack trace.
# awslambdaric filters on the same file name, so traces look identical.
_OWN_FILE_MARKER = "/bootstrap.py"
# awslambdaric writes an error record as one line: its lines are joined by
# "\r" and leading spaces become NO-BREAK SPACEs, so the platform (and Virga,
# which splits stdout on "\n") keeps the whole traceback in one log event.
_ERROR_LINE_JOIN = "\r"
_ERROR_INDENT = "\u00a0"
_LAMBDA_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the"
    " function code. However, in rare cases, a Lambda runtime update can cause"
    " unexpected function behavior. For functions using managed runtimes, runtime"
    " updates can be triggered by a function change, or can be applied"
    " automatically. To determine if the runtime has been updated, check the runtime"
    " version in the INIT_START log entry. If this error correlates with a change in"
    " the runtime version, you may be able to mitigate this error by temporarily"
    " rolling back to the previous runtime version. For more information, see"
    " https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)

# Request id of the invocation in progress; the logging filter stamps it on
# every record ("" during init, as on AWS).
_request_id = ""
_tenant_id = None
# LoggingConfig.LogFormat JSON: Virga then sets AWS_LAMBDA_LOG_FORMAT=JSON (and
# AWS_LAMBDA_LOG_LEVEL). Read once at start-up, as awslambdaric does.
_JSON_LOG_FORMAT = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


class FaultException(Exception):
    """An error the runtime reports under a `Runtime.*` type (not the user's)."""

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# --------------------------------------------------------------------------
# Runtime API client
# --------------------------------------------------------------------------


class RuntimeClient:
    """Minimal HTTP/1.1 client over one keep-alive connection.

    GET /next blocks until Virga has work, so the socket has no timeout.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host = address
        self.addr = (host.strip("[]"), int(port))
        self.sock = None
        self.rfile = None
        self.reused = False  # has the open connection already served a request?

    def close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rfile = None
        self.reused = False

    def request(self, method, path, body=None, headers=None):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, _API_PREFIX + path, self.host)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        for name, value in (headers or {}).items():
            head += "%s: %s\r\n" % (name, value)
        data = (head + "\r\n").encode("utf-8") + (body or b"")
        # A keep-alive connection may have been closed by the server since the
        # last request; that shows up as an error or EOF. Retrying once on a
        # fresh connection is safe: Virga rejects a second response for the
        # same request id. A fresh connection that fails is not retried.
        while True:
            if self.sock is None:
                # Not socket.create_connection: its getaddrinfo call imports the
                # idna codec (~1 ms) even for "127.0.0.1".
                family = socket.AF_INET6 if ":" in self.addr[0] else socket.AF_INET
                self.sock = socket.socket(family, socket.SOCK_STREAM)
                self.sock.connect(self.addr)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.rfile = self.sock.makefile("rb")
            reused = self.reused
            try:
                self.sock.sendall(data)
                response = self._read_response()
                self.reused = self.sock is not None
                return response
            except (OSError, EOFError):
                self.close()
                if not reused:
                    raise

    def _read_response(self):
        f = self.rfile
        status_line = f.readline(65537)
        if not status_line:
            raise EOFError("Runtime API closed the connection")
        status = int(status_line.split(None, 2)[1])
        headers = {}
        while True:
            line = f.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("utf-8", "replace").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(f.readline(65537).split(b";", 1)[0], 16)
                if size == 0:
                    while f.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(f.read(size))
                f.readline(65537)
            body = b"".join(chunks)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = f.read(length)
            if len(body) != length:
                raise EOFError("Runtime API closed the connection mid-body")
        else:
            body = f.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def post(self, path, body, headers=None):
        # Virga reads the function's stdout/stderr when the result arrives, so
        # everything the function printed must be in the pipe by then.
        _flush_std_streams()
        # The outcome is Virga's business, not the function's: a rejection
        # (413 for an oversized response, 400 for a second answer) or even a
        # connection cut mid-upload (Virga answers 413 without reading the
        # body) is not reported. If Virga is really gone, the next GET fails.
        try:
            self.request("POST", path, body, headers)
        except (OSError, EOFError):
            self.close()


def _flush_std_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# --------------------------------------------------------------------------
# JSON (de)serialisation, as awslambdaric (which uses simplejson) does it
# --------------------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    """Encodes decimal.Decimal as a JSON number with its exact digits.

    The stdlib encoder has no raw-number hook, so a Decimal is first encoded
    as a unique placeholder string which is then swapped for str(decimal).
    """

    _nonce = None

    def __init__(self):
        # awslambdaric keeps non-ASCII characters only on python3.12.
        super().__init__(ensure_ascii=os.environ.get("AWS_EXECUTION_ENV") != "AWS_Lambda_python3.12")
        self.raw = {}

    def default(self, o):
        decimal = sys.modules.get("decimal")  # a Decimal implies it is imported
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")  # simplejson's RawJSON would emit "-NaN"
            if _Encoder._nonce is None:
                _Encoder._nonce = os.urandom(8).hex()
            token = "virga-decimal-%s-%d" % (_Encoder._nonce, len(self.raw))
            self.raw['"%s"' % token] = str(o)
            return token
        return super().default(o)

    def encode(self, o):
        text = super().encode(o)
        for token, number in self.raw.items():
            text = text.replace(token, number, 1)
        return text


def to_json(obj):
    return _Encoder().encode(obj)


def marshal_response(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException("Runtime.MarshalError", "Unable to marshal response: {}".format(e))


def unmarshal_request(body, content_type):
    # awslambdaric hands non-JSON payloads over untouched.
    if content_type and content_type.split(";", 1)[0].strip() != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException("Runtime.UnmarshalError", "Unable to unmarshal input: {}".format(e))


# --------------------------------------------------------------------------
# Context object (same attributes and classes as awslambdaric's)
# --------------------------------------------------------------------------


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id={},cognito_identity_pool_id={}])".format(
            self.cognito_identity_id, self.cognito_identity_pool_id
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in self.__slots__)


class ClientContext:
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom={},env={},client={}])".format(self.custom, self.env, self.client)


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field))
    return obj


class LambdaContext:
    def __init__(self, invoke_id, client_context, cognito_identity, deadline_ms, invoked_function_arn, tenant_id):
        env = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, exactly as on AWS (awslambdaric copies the env var as is).
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        fields = ("aws_request_id", "log_group_name", "log_stream_name", "function_name", "memory_limit_in_mb",
                  "function_version", "invoked_function_arn", "client_context", "identity", "tenant_id")
        return "LambdaContext([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in fields)


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException("Runtime.LambdaContextUnmarshalError", "Unable to parse {} JSON: {}".format(name, e))


# --------------------------------------------------------------------------
# Logging
# --------------------------------------------------------------------------


class _LambdaLoggerHandler(logging.Handler):
    def emit(self, record):
        try:
            msg = self.format(record)
            # On AWS a logging call becomes one CloudWatch event even if the
            # message spans lines (e.g. logger.exception); keep it on one line,
            # ended by a newline (a traceback leaves the formatted text without one).
            sys.stdout.write(msg.rstrip("\n").replace("\n", "\r") + "\n")
        except Exception:
            self.handleError(record)  # a bad format string must not fail the invocation


class _LambdaLoggerFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        record.tenant_id = _tenant_id
        return True


# awslambdaric's JSON format: LogRecord attributes that are not copied into
# a JSON record as extra fields.
_RESERVED_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
))


class _JsonFormatter(logging.Formatter):
    """awslambdaric's JsonFormatter: one JSON object per record, e.g.
    {"timestamp": "2024-01-01T00:00:00.123Z", "level": "INFO", "message": "hi",
    "logger": "root", "requestId": "..."}, plus errorType, errorMessage,
    stackTrace and location for a record with exc_info, tenantId, and any
    `extra=` fields; None values are left out."""

    def __init__(self):
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%S")
        import datetime  # only the JSON format pays for it

        self._datetime = datetime
        self._encode = json.JSONEncoder(ensure_ascii=False).encode

    def formatTime(self, record, datefmt=None):
        dt = self._datetime.datetime.fromtimestamp(record.created, tz=self._datetime.timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def format(self, record):
        # Like awslambdaric: custom levels are rounded down to a standard one.
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        exc_info = record.exc_info
        if not exc_info or exc_info[0] is None:
            exc_info = None  # e.g. logger.exception() outside an except block
        if exc_info:
            import traceback

            stack_trace = traceback.format_tb(exc_info[2])
            location = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
        result = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": stack_trace if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": location if exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        result.update(
            (key, value)
            for key, value in record.__dict__.items()
            if key not in _RESERVED_FIELDS and key not in result
        )
        return self._encode({k: v for k, v in result.items() if v is not None}) + "\n"


def _setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = _LambdaLoggerHandler()
    if _JSON_LOG_FORMAT:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(_LambdaLoggerFilter())
    root = logging.getLogger()
    # Like AWS: only an explicit AWS_LAMBDA_LOG_LEVEL changes the root level
    # (Python's default, WARNING, stays otherwise); TRACE maps to DEBUG, and
    # WARN and FATAL are logging's own aliases of WARNING and CRITICAL.
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    level = {None: "", "TRACE": "DEBUG"}.get(level, level).upper()
    if level in logging._nameToLevel:
        root.setLevel(level)
    root.addHandler(handler)


def _log_error(error_result):
    """Print an error record the way awslambdaric does: in the text format a
    "[ERROR] Type: message" line with the traceback, in the JSON format
    {"timestamp", "level": "ERROR", "errorMessage", "errorType", "requestId",
    "stackTrace"} (its timestamp has whole seconds and no "Z", as there)."""
    if _JSON_LOG_FORMAT:
        record = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
            "level": "ERROR",
        }
        record.update(error_result)
        sys.stdout.write(to_json(record) + "\n")
        return
    description = "[ERROR]"
    if error_result["errorType"]:
        description += " " + error_result["errorType"]
    if error_result["errorMessage"]:
        if error_result["errorType"]:
            description += ":"
        description += " " + error_result["errorMessage"]
    lines = [description, "Traceback (most recent call last):"]
    for element in error_result["stackTrace"]:
        if element == "":
            lines.append("")
            continue
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append(_ERROR_INDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(_ERROR_LINE_JOIN.join(lines) + "\n")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _user_trace(tb):
    """traceback.format_list of the user's frames (frames of this file dropped)."""
    import traceback  # already loaded by logging; imported here for clarity

    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if _OWN_FILE_MARKER not in frame.filename:
            frames = frames[i:]
            break
    return traceback.format_list(frames)


def _error_from_exception(exc, invoke_id=None):
    if isinstance(exc, FaultException):
        return make_error(exc.msg, exc.exception_type, exc.trace, invoke_id)
    return make_error(str(exc), type(exc).__name__, _user_trace(exc.__traceback__), invoke_id)


# --------------------------------------------------------------------------
# Handler loading
# --------------------------------------------------------------------------


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException("Runtime.MalformedHandlerName", "Bad handler '{}': {}".format(handler, e))

    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                "Runtime.BuiltInModuleConflict",
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException("Runtime.ImportModuleError", "Unable to import module '{}': {}".format(modname, e))
    except SyntaxError as e:
        # awslambdaric's exact (odd) format, including the capital "Line".
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            "Runtime.UserCodeSyntaxError", "Syntax error in module '{}': {}".format(modname, e), trace
        )

    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException("Runtime.HandlerNotFound", "Handler '{}' missing on module '{}'".format(fname, modname))


# --------------------------------------------------------------------------
# Invocation loop
# --------------------------------------------------------------------------


def handle_event_request(client, request_handler, invoke_id, headers, body):
    error_result = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        identity = headers.get("lambda-runtime-cognito-identity")
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context, "Client Context") if client_context else None,
            _parse_json_header(identity, "Cognito Identity") if identity else None,
            int(headers.get("lambda-runtime-deadline-ms") or 0),
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id"),
        )
        event = unmarshal_request(body, headers.get("content-type"))
        response = request_handler(event, context)
        result, content_type = marshal_response(response)
    except Exception as e:  # BaseException (sys.exit etc.) ends the runtime, as on AWS
        error_result = _error_from_exception(e, invoke_id)

    path = "/invocation/%s/" % invoke_id
    if error_result is not None:
        _log_error(error_result)
        client.post(
            path + "error",
            to_json(error_result).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_result["errorType"]},
        )
    else:
        client.post(path + "response", result, {"Content-Type": content_type})


def _setup_sys_path(task_root):
    # AWS: /var/task, then the layer dirs, then the runtime and stdlib.
    # The directory of this script (sys.path[0]) is Virga's, not the user's.
    here = os.path.dirname(os.path.realpath(__file__))
    if sys.path and os.path.realpath(sys.path[0] or ".") == here:
        del sys.path[0]
    opt = os.environ.get("VIRGA_LAMBDA_OPT") or "/opt"
    site = os.path.join(opt, "python", "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    sys.path[0:0] = [task_root, site, os.path.join(opt, "python")]


def main():
    global _request_id, _tenant_id

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    os.chdir(task_root)
    _setup_sys_path(task_root)
    client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])

    try:
        _setup_logging()
        request_handler = _get_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        error_result = _error_from_exception(e)
        logging.warning(_LAMBDA_WARNING)
        _log_error(error_result)
        client.post(
            "/init/error",
            to_json(error_result).encode("utf-8"),
            {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_result["errorType"]},
        )
        sys.exit(1)

    while True:
        status, headers, body = client.request("GET", "/invocation/next")
        if status != 200:
            sys.stderr.write("virga bootstrap: GET next -> %d %s\n" % (status, body[:200].decode("utf-8", "replace")))
            sys.exit(1)
        invoke_id = headers.get("lambda-runtime-aws-request-id", "")
        _request_id = invoke_id
        _tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        trace_id = headers.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        handle_event_request(client, request_handler, invoke_id, headers, body)


if __name__ == "__main__":
    main()
