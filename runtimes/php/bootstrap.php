<?php
// fgs runtime for PHP handlers (fgs SPEC.md section 4, docs/runtimes.md).
//
// Speaks the instance's Runtime API exactly like a Custom runtime would: long-polls
// GET /v1/runtime/invocation/request on one keep-alive connection, runs the `file.function`
// handler named by RUNTIME_HANDLER with the event (the JSON body decoded to arrays) and a
// FunctionGraph context object, and posts the result to .../response/{id} or .../error/{id}.
// Core PHP only (streams, json): it runs on every php-cli an operator has installed.
//
// fgs writes this file into a read-only runtime directory and starts it with the php mapped to
// the function's runtime name and cwd at the code root. The CLI writes output unbuffered, so a
// line echoed before the handler returns is in that invocation's log.

namespace FgsRuntime;

const HANDLER_NOT_FOUND = 4001;
const INIT_TIMEOUT = 4211;

function env(string $name, string $default = ''): string
{
    $v = getenv($name);
    return $v === false ? $default : $v;
}

function int_env(string $name, int $default = 0): int
{
    $v = env($name);
    return is_numeric($v) ? (int)$v : $default;
}

function now_iso(): string
{
    $t = microtime(true);
    return gmdate('Y-m-d\TH:i:s', (int)$t) . sprintf('.%03dZ', (int)(fmod($t, 1) * 1000));
}

function new_id(): string
{
    $h = bin2hex(random_bytes(16));
    return substr($h, 0, 8) . '-' . substr($h, 8, 4) . '-' . substr($h, 12, 4) . '-'
        . substr($h, 16, 4) . '-' . substr($h, 20);
}

/** FunctionGraph's logger: `<ISO-8601 UTC with ms> <request id> <LEVEL> <message>`. */
class Logger
{
    private $requestId;

    public function __construct(string $requestId)
    {
        $this->requestId = $requestId;
    }

    private function log(string $level, $message, array $args): void
    {
        $message = (string)$message;
        if ($args) {
            $message = @vsprintf($message, $args) ?: $message . ' ' . implode(' ', $args);
        }
        fwrite(STDOUT, now_iso() . ' ' . $this->requestId . ' ' . $level . ' ' . $message . "\n");
    }

    public function debug($message, ...$args): void
    {
        $this->log('DEBUG', $message, $args);
    }

    public function info($message, ...$args): void
    {
        $this->log('INFO', $message, $args);
    }

    public function warn($message, ...$args): void
    {
        $this->log('WARN', $message, $args);
    }

    public function warning($message, ...$args): void
    {
        $this->log('WARN', $message, $args);
    }

    public function error($message, ...$args): void
    {
        $this->log('ERROR', $message, $args);
    }

    /** Accepted for compatibility; fgs keeps every level. */
    public function setLevel($level): void
    {
    }
}

/** The context object of FunctionGraph's PHP runtime (the same methods as Python's). */
class Context
{
    private $requestId;
    private $deadline;
    private $headers;
    private $logger;
    private static $userData = null;

    public function __construct(string $requestId, int $timeoutMs, array $headers = [])
    {
        $this->requestId = $requestId;
        $this->deadline = hrtime(true) + $timeoutMs * 1000000;
        $this->headers = $headers;
        $this->logger = new Logger($requestId);
    }

    private function header(string $name): string
    {
        return $this->headers[strtolower($name)] ?? '';
    }

    public function getRequestID(): string
    {
        return $this->requestId;
    }

    public function getRemainingTimeInMilliSeconds(): int
    {
        return max(0, intdiv($this->deadline - hrtime(true), 1000000));
    }

    public function getUserData($key, $default = null)
    {
        if (self::$userData === null) {
            $data = json_decode(env('RUNTIME_USERDATA', '{}'), true);
            self::$userData = is_array($data) ? $data : [];
        }
        return self::$userData[$key] ?? $default;
    }

    public function getFunctionName(): string
    {
        return env('RUNTIME_FUNC_NAME');
    }

    public function getVersion(): string
    {
        return env('RUNTIME_FUNC_VERSION');
    }

    public function getMemorySize(): int
    {
        return int_env('RUNTIME_MEMORY');
    }

    public function getCPUNumber(): int
    {
        return int_env('RUNTIME_CPU');
    }

    public function getPackage(): string
    {
        return env('RUNTIME_PACKAGE');
    }

    public function getProjectID(): string
    {
        return env('RUNTIME_PROJECT_ID');
    }

    /** FunctionGraph's name for the function's timeout, not the time spent so far. */
    public function getRunningTimeInSeconds(): int
    {
        return int_env('RUNTIME_TIMEOUT');
    }

    public function getAlias(): string
    {
        return $this->header('X-Cff-Alias');
    }

    /** [FGS] The invocation's W3C trace context, for the function's own outgoing calls. */
    public function getTraceparent(): string
    {
        return $this->header('traceparent');
    }

    public function getLogger(): Logger
    {
        return $this->logger;
    }

    public function getAccessKey(): string
    {
        return $this->header('X-CFF-Access-Key');
    }

    public function getSecretKey(): string
    {
        return $this->header('X-CFF-Secret-Key');
    }

    public function getToken(): string
    {
        return $this->header('X-CFF-Auth-Token');
    }

    public function getSecurityAccessKey(): string
    {
        return $this->header('X-CFF-Security-Access-Key');
    }

    public function getSecuritySecretKey(): string
    {
        return $this->header('X-CFF-Security-Secret-Key');
    }

    public function getSecurityToken(): string
    {
        return $this->header('X-CFF-Security-Token');
    }
}

/** One persistent HTTP/1.1 connection to the instance's Runtime API (Content-Length bodies). */
class RuntimeApi
{
    private $addr;
    private $sock = null;

    public function __construct(string $addr)
    {
        $this->addr = $addr;
    }

    private function connect(): void
    {
        $sock = @stream_socket_client('tcp://' . $this->addr, $errno, $errstr, 10);
        if ($sock === false) {
            throw new \RuntimeException("runtime API at {$this->addr}: $errstr");
        }
        // The request long-polls for as long as the instance is idle.
        stream_set_timeout($sock, 86400 * 365);
        $this->sock = $sock;
    }

    private function close(): void
    {
        if ($this->sock !== null) {
            @fclose($this->sock);
        }
        $this->sock = null;
    }

    private function readResponse(): array
    {
        $line = fgets($this->sock);
        if ($line === false || $line === '') {
            throw new \RuntimeException('the runtime API closed the connection');
        }
        $status = (int)(explode(' ', $line, 3)[1] ?? 0);
        $headers = [];
        while (($h = fgets($this->sock)) !== false && rtrim($h, "\r\n") !== '') {
            [$k, $v] = array_pad(explode(':', $h, 2), 2, '');
            $headers[strtolower(trim($k))] = trim($v);
        }
        $n = (int)($headers['content-length'] ?? 0);
        $body = '';
        while (strlen($body) < $n) {
            $chunk = fread($this->sock, $n - strlen($body));
            if ($chunk === false || $chunk === '') {
                throw new \RuntimeException('the runtime API closed the connection mid-body');
            }
            $body .= $chunk;
        }
        if (strtolower($headers['connection'] ?? '') === 'close') {
            $this->close();
        }
        return [$status, $headers, $body];
    }

    public function call(string $method, string $path, ?string $body = null): array
    {
        $req = "$method $path HTTP/1.1\r\nHost: {$this->addr}\r\n";
        if ($body !== null) {
            $req .= "Content-Type: application/json\r\nContent-Length: " . strlen($body) . "\r\n";
        }
        $req .= "\r\n" . ($body ?? '');
        for ($attempt = 0;; $attempt++) {
            try {
                if ($this->sock === null) {
                    $this->connect();
                }
                if (@fwrite($this->sock, $req) !== strlen($req)) {
                    throw new \RuntimeException('write to the runtime API failed');
                }
                return $this->readResponse();
            } catch (\RuntimeException $e) {
                // A kept-alive connection closed under us: one fresh try.
                $this->close();
                if ($attempt > 0) {
                    throw $e;
                }
            }
        }
    }
}

/** An error to report as it is: `{"errorCode","errorType","errorMessage"}`. */
class Failure extends \Exception
{
    public $body;

    public function __construct(array $body)
    {
        parent::__construct($body['errorMessage'] ?? '');
        $this->body = $body;
    }
}

function not_found(string $what, string $spec, string $why): Failure
{
    return new Failure([
        'errorCode' => HANDLER_NOT_FOUND,
        'errorType' => 'HandlerNotFound',
        'errorMessage' => "$what \"$spec\" is not found: $why",
    ]);
}

/** The function named `file.function` (`src/file.function`) in the code. */
function load(string $spec, string $what): callable
{
    $dot = strrpos($spec, '.');
    $file = $dot === false ? '' : substr($spec, 0, $dot);
    $func = $dot === false ? '' : substr($spec, $dot + 1);
    if ($file === '' || $func === '' || $file[0] === '/' || strpos($file, '..') !== false) {
        throw new Failure([
            'errorCode' => HANDLER_NOT_FOUND,
            'errorType' => 'HandlerNotFound',
            'errorMessage' => "$what \"$spec\" is not of the form file.function",
        ]);
    }
    $path = CODE_ROOT . '/' . $file . '.php';
    if (!is_file($path)) {
        throw not_found($what, $spec, "no file $file.php in " . CODE_ROOT);
    }
    require_once $path;
    if (!function_exists($func)) {
        throw not_found($what, $spec, "$file.php has no function \"$func\"");
    }
    return $func;
}

/** The handler's frames, as PHP prints them, without the shim's own. */
function trace(\Throwable $e): array
{
    $out = [];
    foreach (explode("\n", $e->getTraceAsString()) as $line) {
        if (strpos($line, __FILE__) === false && strpos($line, 'FgsRuntime\\') === false
            && substr($line, -6) !== '{main}') {
            $out[] = $line;
        }
    }
    array_unshift($out, $e->getFile() . '(' . $e->getLine() . ')');
    return $out;
}

function error_body(\Throwable $e): array
{
    if ($e instanceof Failure) {
        return $e->body;
    }
    return [
        'errorType' => get_class($e),
        'errorMessage' => $e->getMessage(),
        'stackTrace' => trace($e),
    ];
}

function print_error(\Throwable $e): void
{
    if (!$e instanceof Failure) {
        fwrite(STDERR, 'PHP ' . get_class($e) . ': ' . $e->getMessage() . ' in ' . $e->getFile()
            . ':' . $e->getLine() . "\n" . implode("\n", array_slice(trace($e), 1)) . "\n");
    }
}

function init_failed(RuntimeApi $api, array $body): void
{
    $api->call('POST', '/v1/runtime/init/error', json_encode($body));
    exit(1);
}

/** Runs fn(ctx), interrupted by SIGALRM after `seconds` (0: no limit). */
function with_timeout(callable $fn, Context $ctx, int $seconds): void
{
    if ($seconds > 0 && function_exists('pcntl_alarm')) {
        pcntl_async_signals(true);
        pcntl_signal(SIGALRM, function () use ($seconds) {
            throw new Deadline("timed out after {$seconds}s");
        });
        pcntl_alarm($seconds);
    }
    try {
        $fn($ctx);
    } finally {
        if ($seconds > 0 && function_exists('pcntl_alarm')) {
            pcntl_alarm(0);
        }
    }
}

class Deadline extends \Exception
{
}

function initialize(RuntimeApi $api): void
{
    $spec = env('RUNTIME_INITIALIZER_HANDLER');
    if ($spec === '') {
        return;
    }
    // [FGS] Marks where the initializer starts (it ends at the first event's request or the
    // init error): its span in a traced cold start.
    $api->call('POST', '/fgs/v1/initializer/start', '');
    $timeout = int_env('RUNTIME_INITIALIZER_TIMEOUT');
    $ctx = new Context(new_id(), $timeout > 0 ? $timeout * 1000 : 86400000);
    try {
        with_timeout(load($spec, 'initializer'), $ctx, $timeout);
    } catch (Deadline $e) {
        init_failed($api, [
            'errorCode' => INIT_TIMEOUT,
            'errorType' => 'InitializerTimeout',
            'errorMessage' => "initializer $spec timed out after {$timeout}s",
        ]);
    } catch (\Throwable $e) {
        print_error($e);
        $body = error_body($e);
        unset($body['errorCode']); // a missing initializer is an initializer failure (4201)
        init_failed($api, $body);
    }
}

function install_pre_stop(): void
{
    $spec = env('RUNTIME_PRE_STOP_HANDLER');
    if ($spec === '' || !function_exists('pcntl_signal')) {
        return;
    }
    $timeout = int_env('RUNTIME_PRE_STOP_TIMEOUT', 3);
    pcntl_async_signals(true);
    pcntl_signal(SIGTERM, function () use ($spec, $timeout) {
        $ctx = new Context(new_id(), $timeout * 1000);
        try {
            with_timeout(load($spec, 'pre-stop handler'), $ctx, $timeout);
        } catch (Deadline $e) {
            $ctx->getLogger()->error("pre-stop handler $spec timed out after {$timeout}s");
        } catch (\Throwable $e) {
            print_error($e);
        }
        exit(0);
    });
}

/** A returned string is the body as it is; anything else is JSON (FunctionGraph's rule). */
function encode($result): string
{
    if (is_string($result)) {
        return $result;
    }
    return json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES
        | JSON_PARTIAL_OUTPUT_ON_ERROR);
}

function main(): void
{
    $addr = env('RUNTIME_API_ADDR');
    if ($addr === '') {
        fwrite(STDERR, "RUNTIME_API_ADDR is not set: this runtime is started by fgs\n");
        exit(2);
    }
    $paths = [CODE_ROOT];
    if (env('FGS_DEPENDENCY_DIR') !== '') {
        $paths[] = env('FGS_DEPENDENCY_DIR') . '/php';
        $paths[] = env('FGS_DEPENDENCY_DIR');
    }
    set_include_path(implode(PATH_SEPARATOR, $paths) . PATH_SEPARATOR . get_include_path());
    $api = new RuntimeApi($addr);
    $handler = null;
    $handlerError = null;
    try {
        $handler = load(env('RUNTIME_HANDLER'), 'handler');
    } catch (Failure $e) {
        $handlerError = $e; // answered to every event, the instance stays warm
    } catch (\Throwable $e) {
        print_error($e); // the code threw (or did not parse) while loading
        init_failed($api, error_body($e));
    }
    initialize($api);
    install_pre_stop();
    $warning = env('FGS_RUNTIME_WARNING');

    while (true) {
        [$status, $headers, $body] = $api->call('GET', '/v1/runtime/invocation/request');
        if ($status === 410) {
            return;
        }
        if ($status !== 200) {
            usleep(50000);
            continue;
        }
        $requestId = $headers['x-cff-request-id'] ?? '';
        $timeoutMs = (int)($headers['x-cff-timeout-ms'] ?? 0);
        if ($timeoutMs <= 0) {
            $timeoutMs = int_env('RUNTIME_TIMEOUT', 3) * 1000;
        }
        $ctx = new Context($requestId, $timeoutMs, $headers);
        if ($warning !== '') {
            $ctx->getLogger()->warn($warning);
            $warning = '';
        }
        try {
            if ($handlerError !== null) {
                throw $handlerError;
            }
            $event = $body === '' ? [] : json_decode($body, true);
            if ($body !== '' && json_last_error() !== JSON_ERROR_NONE) {
                $event = $body;
            }
            $out = encode($handler($event, $ctx));
        } catch (\Throwable $e) {
            print_error($e);
            $api->call('POST', '/v1/runtime/invocation/error/' . $requestId,
                json_encode(error_body($e), JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR));
            continue;
        }
        $api->call('POST', '/v1/runtime/invocation/response/' . $requestId, $out);
    }
}

define('FgsRuntime\CODE_ROOT', env('RUNTIME_CODE_ROOT') ?: getcwd());
main();
