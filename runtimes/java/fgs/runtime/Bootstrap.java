package fgs.runtime;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.Socket;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * fgs's Java runtime (docs/runtimes.md): speaks the instance's Runtime API like a Custom runtime
 * would, on one keep-alive connection, and runs the `package.Class.method` handler named by
 * RUNTIME_HANDLER with the event (a String, or the JSON mapped onto the parameter's class) and
 * FunctionGraph's Context. Started by fgs with the heap sized from the function's memory.
 */
public final class Bootstrap {
    static final int HANDLER_NOT_FOUND = 4001;
    static final int MEMORY_LIMIT = 4205;
    static final int INIT_TIMEOUT = 4211;
    private static final Map<String, String> ENV = System.getenv();

    private final String addr;
    private Socket sock;
    private InputStream in;
    private OutputStream out;

    private Bootstrap(String addr) {
        this.addr = addr;
    }

    /** A failure to report as it is: `{"errorCode","errorType","errorMessage"}`. */
    static final class Failure extends Exception {
        final Map<String, Object> body = new LinkedHashMap<>();

        Failure(int code, String type, String message) {
            super(message);
            if (code != 0) {
                body.put("errorCode", code);
            }
            body.put("errorType", type);
            body.put("errorMessage", message);
        }
    }

    /** The handler, resolved once: its method and, for an instance method, the object. */
    static final class Target {
        final Method method;
        final Object self;

        Target(Method method, Object self) {
            this.method = method;
            this.self = self;
        }
    }

    private static String env(String name, String dflt) {
        String v = ENV.get(name);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // --- the Runtime API --------------------------------------------------------------------

    private static final class Reply {
        int status;
        final Map<String, String> headers = new HashMap<>();
        byte[] body;
    }

    private String line() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1 && c != '\n') {
            b.write(c);
        }
        if (c == -1 && b.size() == 0) {
            throw new IOException("the runtime API closed the connection");
        }
        String s = new String(b.toByteArray(), StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }

    private Reply exchange(byte[] request) throws IOException {
        if (sock == null) {
            String[] hp = addr.split(":");
            sock = new Socket(hp[0], Integer.parseInt(hp[1]));
            sock.setTcpNoDelay(true);
            in = new java.io.BufferedInputStream(sock.getInputStream(), 65536);
            out = sock.getOutputStream();
        }
        out.write(request);
        out.flush();
        Reply r = new Reply();
        String status = line();
        r.status = Integer.parseInt(status.split(" ")[1]);
        for (String h = line(); !h.isEmpty(); h = line()) {
            int colon = h.indexOf(':');
            if (colon > 0) {
                r.headers.put(h.substring(0, colon).trim().toLowerCase(), h.substring(colon + 1).trim());
            }
        }
        int n = Integer.parseInt(r.headers.getOrDefault("content-length", "0"));
        r.body = new byte[n];
        for (int got = 0; got < n; ) {
            int k = in.read(r.body, got, n - got);
            if (k < 0) {
                throw new IOException("the runtime API closed the connection mid-body");
            }
            got += k;
        }
        if ("close".equalsIgnoreCase(r.headers.get("connection"))) {
            close();
        }
        return r;
    }

    private void close() {
        try {
            if (sock != null) {
                sock.close();
            }
        } catch (IOException ignored) {
            // closing a dead connection
        }
        sock = null;
    }

    synchronized Reply call(String method, String path, byte[] body) throws IOException {
        StringBuilder head = new StringBuilder();
        head.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(addr).append("\r\n");
        if (body != null) {
            head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
        }
        head.append("\r\n");
        byte[] h = head.toString().getBytes(StandardCharsets.ISO_8859_1);
        byte[] req = new byte[h.length + (body == null ? 0 : body.length)];
        System.arraycopy(h, 0, req, 0, h.length);
        if (body != null) {
            System.arraycopy(body, 0, req, h.length, body.length);
        }
        try {
            return exchange(req);
        } catch (IOException | RuntimeException e) {
            // A kept-alive connection closed under us: one fresh try.
            close();
            return exchange(req);
        }
    }

    // --- loading the handler ----------------------------------------------------------------

    /**
     * The code root, its `lib/`, and every jar in either: FunctionGraph's jar or zip of jars.
     * No lambdas on the start's path: the first one bootstraps LambdaMetafactory (~20 ms).
     */
    static ClassLoader loader(String root) throws IOException {
        List<URL> urls = new ArrayList<>();
        String deps = env("FGS_DEPENDENCY_DIR", "");
        String[] dirs = deps.isEmpty() ? new String[] {root, root + "/lib"}
            : new String[] {root, root + "/lib", deps, deps + "/java"};
        for (String dir : dirs) {
            File d = new File(dir);
            if (!d.isDirectory()) {
                continue;
            }
            urls.add(d.toURI().toURL());
            String[] names = d.list();
            if (names == null) {
                continue;
            }
            java.util.Arrays.sort(names);
            for (String n : names) {
                if (n.endsWith(".jar")) {
                    urls.add(new File(d, n).toURI().toURL());
                }
            }
        }
        return new URLClassLoader(urls.toArray(new URL[0]), Bootstrap.class.getClassLoader());
    }

    static Target resolve(ClassLoader cl, String spec, String what, int arity) throws Failure {
        int dot = spec.lastIndexOf('.');
        if (dot <= 0 || dot == spec.length() - 1) {
            throw new Failure(HANDLER_NOT_FOUND, "HandlerNotFound",
                what + " \"" + spec + "\" is not of the form package.Class.method");
        }
        String cls = spec.substring(0, dot);
        String name = spec.substring(dot + 1);
        Class<?> c;
        try {
            c = Class.forName(cls, true, cl);
        } catch (ClassNotFoundException e) {
            throw new Failure(HANDLER_NOT_FOUND, "HandlerNotFound",
                what + " \"" + spec + "\" is not found: no class " + cls + " in the code");
        }
        Method found = null;
        for (Method m : c.getMethods()) {
            if (m.getName().equals(name) && m.getParameterCount() == arity
                    && isContext(m.getParameterTypes()[arity - 1])) {
                found = m;
                break;
            }
        }
        if (found == null) {
            throw new Failure(HANDLER_NOT_FOUND, "HandlerNotFound", what + " \"" + spec
                + "\" is not found: class " + cls + " has no public method " + name
                + (arity == 2 ? "(event, Context)" : "(Context)"));
        }
        Object self = null;
        if (!Modifier.isStatic(found.getModifiers())) {
            try {
                self = c.getDeclaredConstructor().newInstance();
            } catch (InvocationTargetException e) {
                throw new RuntimeException(e.getCause());
            } catch (ReflectiveOperationException e) {
                throw new Failure(HANDLER_NOT_FOUND, "HandlerNotFound",
                    what + " \"" + spec + "\": class " + cls + " has no public no-argument constructor");
            }
        }
        return new Target(found, self);
    }

    private static boolean isContext(Class<?> t) {
        return t == com.huawei.services.runtime.Context.class
            || t == com.opentelekomcloud.services.runtime.Context.class;
    }

    // --- errors -----------------------------------------------------------------------------

    /** The throwable's frames up to the handler's call (the runtime's and reflection's left out). */
    static List<String> trace(Throwable t) {
        List<String> out = new ArrayList<>();
        for (StackTraceElement f : t.getStackTrace()) {
            String c = f.getClassName();
            if (c.startsWith("fgs.runtime.") || c.startsWith("jdk.internal.reflect.")
                    || c.startsWith("sun.reflect.") || c.startsWith("java.lang.reflect.")) {
                break;
            }
            out.add("at " + f);
        }
        return out;
    }

    static Map<String, Object> errorBody(Throwable t) {
        if (t instanceof Failure) {
            return ((Failure) t).body;
        }
        Map<String, Object> b = new LinkedHashMap<>();
        if (t instanceof OutOfMemoryError) {
            b.put("errorCode", MEMORY_LIMIT);
        }
        b.put("errorType", t.getClass().getName());
        b.put("errorMessage", t.getMessage() == null ? t.toString() : t.getMessage());
        b.put("stackTrace", trace(t));
        return b;
    }

    static void printError(Throwable t) {
        if (t instanceof Failure) {
            return;
        }
        StringWriter w = new StringWriter();
        t.printStackTrace(new PrintWriter(w));
        System.err.print(w);
        System.err.flush();
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof InvocationTargetException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }

    // --- the loop ---------------------------------------------------------------------------

    private void initFailed(Map<String, Object> body) throws IOException {
        call("POST", "/v1/runtime/init/error", Json.write(body).getBytes(StandardCharsets.UTF_8));
        System.out.flush();
        Runtime.getRuntime().halt(1);
    }

    private void initialize(ClassLoader cl) throws IOException {
        String spec = env("RUNTIME_INITIALIZER_HANDLER", "");
        if (spec.isEmpty()) {
            return;
        }
        // [FGS] Marks where the initializer starts (it ends at the first event's request or the
        // init error): its span in a traced cold start.
        call("POST", "/fgs/v1/initializer/start", new byte[0]);
        int timeout = Integer.parseInt(env("RUNTIME_INITIALIZER_TIMEOUT", "0"));
        try {
            Target t = resolve(cl, spec, "initializer", 1);
            Object ctx = Ctx.of(t.method.getParameterTypes()[0], Ids.next(), timeout > 0 ? timeout * 1000L : 86_400_000L,
                new HashMap<>());
            FutureTask<Object> task = new FutureTask<>(() -> t.method.invoke(t.self, ctx));
            Thread th = new Thread(task, "fgs-initializer");
            th.setDaemon(true);
            th.start();
            try {
                task.get(timeout > 0 ? timeout : Long.MAX_VALUE / 2, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                Map<String, Object> b = new Failure(INIT_TIMEOUT, "InitializerTimeout",
                    "initializer " + spec + " timed out after " + timeout + "s").body;
                initFailed(b);
            }
        } catch (Throwable e) {
            Throwable t = unwrap(e);
            printError(t);
            Map<String, Object> b = errorBody(t);
            b.remove("errorCode"); // a missing initializer is an initializer failure (4201)
            initFailed(b);
        }
    }

    private void installPreStop(ClassLoader cl) {
        String spec = env("RUNTIME_PRE_STOP_HANDLER", "");
        if (spec.isEmpty()) {
            return;
        }
        int timeout = Integer.parseInt(env("RUNTIME_PRE_STOP_TIMEOUT", "3"));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Target t = resolve(cl, spec, "pre-stop handler", 1);
                Object ctx = Ctx.of(t.method.getParameterTypes()[0], Ids.next(), timeout * 1000L, new HashMap<>());
                FutureTask<Object> task = new FutureTask<>(() -> t.method.invoke(t.self, ctx));
                Thread th = new Thread(task, "fgs-pre-stop");
                th.setDaemon(true);
                th.start();
                task.get(timeout, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                System.out.println("pre-stop handler " + spec + " timed out after " + timeout + "s");
            } catch (Throwable e) {
                printError(unwrap(e));
            }
            System.out.flush();
        }));
    }

    /** The event as the handler's first parameter asks for it. */
    static Object event(byte[] body, Method m) throws ReflectiveOperationException {
        String text = new String(body, StandardCharsets.UTF_8);
        Class<?> type = m.getParameterTypes()[0];
        if (type == String.class) {
            return text;
        }
        if (type == byte[].class) {
            return body;
        }
        Object parsed = text.trim().isEmpty() ? new LinkedHashMap<>() : Json.parse(text);
        return Json.convert(parsed, m.getGenericParameterTypes()[0]);
    }

    /** A returned String is the body as it is; anything else is JSON (FunctionGraph's rule). */
    static byte[] encode(Object result) {
        if (result instanceof String) {
            return ((String) result).getBytes(StandardCharsets.UTF_8);
        }
        if (result instanceof byte[]) {
            return (byte[]) result;
        }
        return Json.write(result).getBytes(StandardCharsets.UTF_8);
    }

    private void run() throws IOException {
        String root = env("RUNTIME_CODE_ROOT", System.getProperty("user.dir"));
        ClassLoader cl = loader(root);
        Thread.currentThread().setContextClassLoader(cl);
        Target handler = null;
        Failure handlerError = null;
        try {
            handler = resolve(cl, env("RUNTIME_HANDLER", ""), "handler", 2);
        } catch (Failure f) {
            handlerError = f; // answered to every event, the instance stays warm
        } catch (Throwable e) {
            Throwable t = unwrap(e); // the class threw (or did not link) while loading
            printError(t);
            initFailed(errorBody(t));
        }
        initialize(cl);
        installPreStop(cl);
        String warning = env("FGS_RUNTIME_WARNING", "");
        while (true) {
            Reply r = call("GET", "/v1/runtime/invocation/request", null);
            if (r.status == 410) {
                return;
            }
            if (r.status != 200) {
                sleep(50);
                continue;
            }
            String id = r.headers.getOrDefault("x-cff-request-id", "");
            long timeoutMs;
            try {
                timeoutMs = Long.parseLong(r.headers.getOrDefault("x-cff-timeout-ms", "0"));
            } catch (NumberFormatException e) {
                timeoutMs = 0;
            }
            if (timeoutMs <= 0) {
                timeoutMs = Long.parseLong(env("RUNTIME_TIMEOUT", "3")) * 1000L;
            }
            byte[] out;
            try {
                if (handlerError != null) {
                    throw handlerError;
                }
                Object ctx = Ctx.of(handler.method.getParameterTypes()[1], id, timeoutMs, r.headers);
                if (!warning.isEmpty()) {
                    ((Ctx) ctx).logger.warn(warning);
                    warning = "";
                }
                out = encode(handler.method.invoke(handler.self, event(r.body, handler.method), ctx));
            } catch (Throwable e) {
                Throwable t = unwrap(e);
                printError(t);
                call("POST", "/v1/runtime/invocation/error/" + id,
                    Json.write(errorBody(t)).getBytes(StandardCharsets.UTF_8));
                if (t instanceof OutOfMemoryError) {
                    // The heap may be in any state: a new instance takes the next event.
                    System.out.flush();
                    Runtime.getRuntime().halt(1);
                }
                continue;
            }
            call("POST", "/v1/runtime/invocation/response/" + id, out);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public static void main(String[] args) throws IOException {
        String addr = env("RUNTIME_API_ADDR", "");
        if (addr.isEmpty()) {
            System.err.println("RUNTIME_API_ADDR is not set: this runtime is started by fgs");
            System.exit(2);
        }
        new Bootstrap(addr).run();
    }
}
