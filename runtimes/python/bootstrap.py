"""fgs runtime for Python 3 handlers (fgs SPEC.md section 4).

Speaks the instance's Runtime API exactly like a Custom runtime would: long-polls
GET /v1/runtime/invocation/request on one keep-alive connection, runs the `file.func` handler
named by RUNTIME_HANDLER with the event and a FunctionGraph context object, and posts the result
to .../response/{id} or .../error/{id}. Standard library only: it runs on every Python 3 an
operator has installed, without pip.

fgs writes this file into a read-only runtime directory and starts it with the interpreter mapped
to the function's runtime name, `-u -B`, and cwd at the code root. Output goes to a pipe that fgs
attributes to the invocation in flight, so everything is written unbuffered.
"""

import _signal as signal  # the C modules: `signal` and `socket` build enums at import,
import _socket as socket  # about 5 ms of a cold start
import importlib
import json
import os
import sys
import time


def _specialize():
    """A pre-started interpreter (fgs docs/runtimes.md) started with no function and waits here
    for fgs's message on fd 3, which comes once the function's code, dependencies and limits are
    in place. It then becomes what a start for the function would have made: the function's
    environment and nothing of the placeholder's, its cwd, the `sys.path` entries PYTHONPATH
    gives at start (after `''`, before the standard library) and its time zone.
    """
    chunks = []
    while True:
        chunk = os.read(3, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(3)
    msg = json.loads(b"".join(chunks))
    os.environ.clear()
    os.environ.update(msg["env"])
    os.chdir(msg["cwd"])
    sys.path[1:1] = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    time.tzset()
    importlib.invalidate_caches()


if os.environ.get("FGS_PLACEHOLDER") == "1":
    _specialize()

ENV = os.environ
API_ADDR = ENV.get("RUNTIME_API_ADDR", "")
CODE_ROOT = ENV.get("RUNTIME_CODE_ROOT") or os.getcwd()
SHIM_FILE = os.path.abspath(__file__) if "__file__" in globals() else ""

# Error codes fgs gives meaning to (SPEC.md 3); a runtime may name them in `errorCode`.
HANDLER_NOT_FOUND = 4001
INIT_TIMEOUT = 4211


def _user_data():
    try:
        data = json.loads(ENV.get("RUNTIME_USERDATA") or "{}")
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


USER_DATA = _user_data()


def _int_env(name, default=0):
    try:
        return int(ENV.get(name, default))
    except ValueError:
        return default


def _now_iso():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000)


def _write(text):
    out = sys.stdout
    out.write(text)
    out.flush()


def _new_id():
    h = os.urandom(16).hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class Logger:
    """FunctionGraph's logger: `<ISO-8601 UTC with ms> <request id> <LEVEL> <message>`."""

    def __init__(self, request_id):
        self._request_id = request_id

    def _log(self, level, message, *args):
        if args:
            try:
                message = str(message) % args
            except TypeError:
                message = " ".join([str(message)] + [str(a) for a in args])
        _write("%s %s %s %s\n" % (_now_iso(), self._request_id, level, message))

    def debug(self, message, *args):
        self._log("DEBUG", message, *args)

    def info(self, message, *args):
        self._log("INFO", message, *args)

    def warn(self, message, *args):
        self._log("WARN", message, *args)

    warning = warn

    def error(self, message, *args):
        self._log("ERROR", message, *args)

    def setLevel(self, level):  # noqa: N802 - FunctionGraph's spelling
        """Accepted for compatibility; fgs keeps every level."""


class Context:
    """The context object of FunctionGraph's Python runtime (SPEC.md 4)."""

    def __init__(self, request_id, timeout_ms, headers=None):
        self._request_id = request_id
        self._deadline = time.monotonic() + timeout_ms / 1000.0
        self._headers = headers
        self._logger = Logger(request_id)

    def _header(self, name):
        if self._headers is None:
            return ""
        return self._headers.get(name.lower()) or ""

    def getRequestID(self):  # noqa: N802
        return self._request_id

    def getRemainingTimeInMilliSeconds(self):  # noqa: N802
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def getUserData(self, key, default=None):  # noqa: N802
        return USER_DATA.get(key, default)

    def getFunctionName(self):  # noqa: N802
        return ENV.get("RUNTIME_FUNC_NAME", "")

    def getVersion(self):  # noqa: N802
        return ENV.get("RUNTIME_FUNC_VERSION", "")

    def getMemorySize(self):  # noqa: N802
        return _int_env("RUNTIME_MEMORY")

    def getCPUNumber(self):  # noqa: N802
        return _int_env("RUNTIME_CPU")

    def getPackage(self):  # noqa: N802
        return ENV.get("RUNTIME_PACKAGE", "")

    def getProjectID(self):  # noqa: N802
        return ENV.get("RUNTIME_PROJECT_ID", "")

    def getRunningTimeInSeconds(self):  # noqa: N802
        # FunctionGraph's name for the function's timeout, not the time spent so far.
        return _int_env("RUNTIME_TIMEOUT")

    def getAlias(self):  # noqa: N802
        return self._header("X-Cff-Alias")

    def getTraceparent(self):  # noqa: N802 - [FGS] the invocation's W3C trace context
        return self._header("traceparent")

    def getLogger(self):  # noqa: N802
        return self._logger

    def getAccessKey(self):  # noqa: N802
        return self._header("X-CFF-Access-Key")

    def getSecretKey(self):  # noqa: N802
        return self._header("X-CFF-Secret-Key")

    def getToken(self):  # noqa: N802
        return self._header("X-CFF-Auth-Token")

    def getSecurityAccessKey(self):  # noqa: N802
        return self._header("X-CFF-Security-Access-Key")

    def getSecuritySecretKey(self):  # noqa: N802
        return self._header("X-CFF-Security-Secret-Key")

    def getSecurityToken(self):  # noqa: N802
        return self._header("X-CFF-Security-Token")


class RuntimeApi:
    """One persistent HTTP/1.1 connection to the instance's Runtime API.

    A minimal client on a plain socket rather than http.client: importing http.client (email
    parsing, ssl) costs ~35 ms of a ~110 ms cold start (measured with -X importtime on 3.10),
    and the Runtime API is one well-known server that answers with Content-Length. It reads
    through its own buffer: `socket.makefile` would need the `socket` module.
    """

    def __init__(self, addr):
        host, _, port = addr.rpartition(":")
        self._addr = (host, int(port or 0))
        self._sock = None
        self._buf = bytearray()

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buf = bytearray()

    def _connect(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(self._addr)
            # Requests and responses are small: do not let Nagle hold them back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._buf = bytearray()

    def _fill(self):
        chunk = self._sock.recv(65536)
        self._buf += chunk
        return bool(chunk)

    def _readline(self, limit):
        """One line with its end, at most `limit` bytes; short at the end of the stream."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start, limit)
            if i >= 0:
                return self._take(i + 1)
            if len(self._buf) >= limit:
                return self._take(limit)
            start = len(self._buf)
            if not self._fill():
                return self._take(len(self._buf))

    def _read(self, n):
        while len(self._buf) < n and self._fill():
            pass
        return self._take(min(n, len(self._buf)))

    def _take(self, n):
        # One copy (a slice of a bytearray would copy once more): events reach 6 MB.
        with memoryview(self._buf) as view:
            data = bytes(view[:n])
        del self._buf[:n]
        return data

    def _read_response(self):
        line = self._readline(65537)
        if not line:
            raise ConnectionError("the runtime API closed the connection")
        status = int(line.split(None, 2)[1])
        headers = {}
        while True:
            h = self._readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self._readline(65537).split(b";")[0], 16)
                if size == 0:
                    while self._readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self._read(size))
                self._readline(65537)
            body = b"".join(chunks)
        else:
            n = int(headers.get("content-length") or 0)
            body = self._read(n) if n else b""
            if len(body) != n:
                raise ConnectionError("the runtime API closed the connection mid-body")
        if headers.get("connection", "").lower() == "close":
            self._close()
        return status, headers, body

    def call(self, method, path, body=None):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, API_ADDR)
        if body is not None:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        data = head.encode("latin-1") + b"\r\n" + (body or b"")
        for attempt in (0, 1):
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(data)
                return self._read_response()
            except (OSError, ValueError, IndexError):
                # A kept-alive connection closed under us: one fresh try.
                self._close()
                if attempt:
                    raise
        raise RuntimeError("unreachable")


API = RuntimeApi(API_ADDR)


class FunctionFailure(Exception):
    """An error to report as is: `{"errorCode","errorType","errorMessage","stackTrace"}`."""

    def __init__(self, body):
        Exception.__init__(self, body.get("errorMessage", ""))
        self.body = body


def _library_view():
    """`(host library prefix, the same as the function sees it)`, or None.

    fgs starts the interpreter by FunctionGraph's path, `.../rtsp/python/bin/python3`, whose
    `lib` leads to the real installation's; a traceback then names the standard library there,
    not the host's (a pyenv directory, say), as on FunctionGraph.
    """
    view = os.path.dirname(os.path.dirname(sys.executable))
    real = os.path.join(sys.base_prefix, "lib") + os.sep
    if view == sys.base_prefix or not os.path.isdir(os.path.join(view, "lib")):
        return None
    return real, os.path.join(view, "lib") + os.sep


def _as_seen(text):
    view = _library_view()
    return text.replace(view[0], view[1]) if view else text


def _trace(tb):
    import traceback  # only errors pay for it

    frames = [f for f in traceback.extract_tb(tb) if f.filename != SHIM_FILE]
    return [_as_seen(line.rstrip("\n")) for line in traceback.format_list(frames)]


def _error_body(exc):
    if isinstance(exc, FunctionFailure):
        return exc.body
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": _trace(exc.__traceback__),
    }


def _print_exception(exc):
    if isinstance(exc, FunctionFailure):
        return
    import traceback

    sys.stderr.write(_as_seen("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))
    sys.stderr.flush()


def _set_paths():
    # SPEC.md 4: the code root and its `python/` are importable; dependencies come in
    # PYTHONPATH, which Python has already put on sys.path.
    for p in (os.path.join(CODE_ROOT, "python"), CODE_ROOT):
        if p not in sys.path:
            sys.path.insert(0, p)


def _load(spec, what):
    """The function named `file.func` (or `pkg.file.func`, `pkg/file.func`) in the code."""
    module_name, _, func_name = spec.rpartition(".")
    # Published samples write a module in a folder with a slash (`src/index.handler`), as Node.js
    # handlers do: the same module as `src.index.handler`. fgs refuses `..` at create time; a
    # handler stored before that never reaches outside the code (nor a relative import).
    module_name = module_name.replace("/", ".")
    if not module_name or not func_name or module_name.startswith(".") or ".." in module_name:
        raise FunctionFailure({
            "errorCode": HANDLER_NOT_FOUND,
            "errorType": "HandlerNotFound",
            "errorMessage": '%s "%s" is not of the form file.function' % (what, spec),
        })
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is not None and module_name.split(".")[0] != e.name.split(".")[0]:
            raise  # the module exists but imports something missing: its own error
        raise FunctionFailure({
            "errorCode": HANDLER_NOT_FOUND,
            "errorType": "HandlerNotFound",
            "errorMessage": '%s "%s" is not found: no module "%s" in %s'
            % (what, spec, module_name, CODE_ROOT),
        })
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise FunctionFailure({
            "errorCode": HANDLER_NOT_FOUND,
            "errorType": "HandlerNotFound",
            "errorMessage": '%s "%s" is not found: module "%s" has no function "%s"'
            % (what, spec, module_name, func_name),
        })
    return fn


class _Deadline(BaseException):
    """Raised by SIGALRM in the main thread when an initializer or pre-stop overruns."""


def _on_alarm(_signum, _frame):
    raise _Deadline()


def _run_with_timeout(fn, arg, seconds):
    """Runs fn(arg) in the main thread, interrupted after `seconds` (0: no limit)."""
    if seconds > 0:
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(arg)
    finally:
        if seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _init_failed(body):
    API.call("POST", "/v1/runtime/init/error", json.dumps(body).encode())
    sys.stdout.flush()
    os._exit(1)


def _initialize():
    spec = ENV.get("RUNTIME_INITIALIZER_HANDLER", "")
    if not spec:
        return
    # [FGS] Marks where the initializer starts (it ends at the first event's request or the
    # init error): its span in a traced cold start.
    API.call("POST", "/fgs/v1/initializer/start", b"")
    timeout = _int_env("RUNTIME_INITIALIZER_TIMEOUT", 0)
    ctx = Context(_new_id(), timeout * 1000 if timeout > 0 else 86400000)
    try:
        fn = _load(spec, "initializer")
        _run_with_timeout(fn, ctx, timeout)
    except _Deadline:
        _init_failed({
            "errorCode": INIT_TIMEOUT,
            "errorType": "InitializerTimeout",
            "errorMessage": "initializer %s timed out after %ds" % (spec, timeout),
        })
    except Exception as e:  # noqa: BLE001 - every failure of user code is reported
        _print_exception(e)
        body = _error_body(e)
        body.pop("errorCode", None)  # a missing initializer is an initializer failure (4201)
        _init_failed(body)


def _install_pre_stop():
    spec = ENV.get("RUNTIME_PRE_STOP_HANDLER", "")
    if not spec:
        return
    timeout = _int_env("RUNTIME_PRE_STOP_TIMEOUT", 3)

    def on_term(_signum, _frame):
        ctx = Context(_new_id(), timeout * 1000)
        try:
            _run_with_timeout(_load(spec, "pre-stop handler"), ctx, timeout)
        except _Deadline:
            Logger(ctx.getRequestID()).error("pre-stop handler %s timed out after %ds" % (spec, timeout))
        except Exception as e:  # noqa: BLE001
            _print_exception(e)
        sys.stdout.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)


def _encode(result):
    # FunctionGraph answers a returned string as it is, anything else as JSON.
    if isinstance(result, str):
        return result.encode("utf-8")
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    return json.dumps(result, ensure_ascii=False).encode("utf-8")


def main():
    if not API_ADDR:
        sys.stderr.write("RUNTIME_API_ADDR is not set: this runtime is started by fgs\n")
        sys.exit(2)
    _set_paths()
    handler = None
    handler_error = None
    try:
        handler = _load(ENV.get("RUNTIME_HANDLER", ""), "handler")
    except FunctionFailure as e:
        handler_error = e  # answered to every event, the instance stays warm
    except Exception as e:  # noqa: BLE001 - the code raised while loading
        _print_exception(e)
        _init_failed(_error_body(e))
    _initialize()
    _install_pre_stop()
    warning = ENV.get("FGS_RUNTIME_WARNING", "")

    while True:
        status, headers, body = API.call("GET", "/v1/runtime/invocation/request")
        if status == 410:
            return
        if status != 200:
            time.sleep(0.05)
            continue
        request_id = headers.get("x-cff-request-id", "")
        try:
            timeout_ms = int(headers.get("x-cff-timeout-ms", "0"))
        except ValueError:
            timeout_ms = 0
        if timeout_ms <= 0:
            timeout_ms = _int_env("RUNTIME_TIMEOUT", 3) * 1000
        ctx = Context(request_id, timeout_ms, headers)
        if warning:
            ctx.getLogger().warn(warning)
            warning = ""
        try:
            if handler_error is not None:
                raise handler_error
            try:
                event = json.loads(body) if body else {}
            except ValueError:
                event = body.decode("utf-8", "replace")
            out = _encode(handler(event, ctx))
        except Exception as e:  # noqa: BLE001 - every failure of user code is reported
            _print_exception(e)
            API.call("POST", "/v1/runtime/invocation/error/" + request_id,
                     json.dumps(_error_body(e)).encode())
        else:
            API.call("POST", "/v1/runtime/invocation/response/" + request_id, out)


if __name__ == "__main__":
    main()
