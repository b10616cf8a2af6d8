package fgs.runtime;

import java.util.Map;

/**
 * The context of one invocation. Two classes share it because the two packages' `getLogger()`
 * return different interfaces: {@link Huawei} and {@link Otc}, chosen by the handler's parameter.
 */
abstract class Ctx {
    static final Map<String, String> ENV = System.getenv();
    private static Map<?, ?> userData;
    final String requestId;
    final long deadline;
    final Map<String, String> headers;
    final Logger logger;

    Ctx(String requestId, long timeoutMs, Map<String, String> headers) {
        this.requestId = requestId;
        this.deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        this.headers = headers;
        this.logger = new Logger(requestId);
    }

    static Ctx of(Class<?> param, String requestId, long timeoutMs, Map<String, String> headers) {
        return param == com.opentelekomcloud.services.runtime.Context.class
            ? new Otc(requestId, timeoutMs, headers) : new Huawei(requestId, timeoutMs, headers);
    }

    private static String env(String name) {
        String v = ENV.get(name);
        return v == null ? "" : v;
    }

    private static int intEnv(String name) {
        try {
            return Integer.parseInt(env(name));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private String header(String name) {
        String v = headers.get(name.toLowerCase());
        return v == null ? "" : v;
    }

    public String getRequestID() {
        return requestId;
    }

    public int getRemainingTimeInMilliSeconds() {
        return (int) Math.max(0, (deadline - System.nanoTime()) / 1_000_000L);
    }

    public String getAccessKey() {
        return header("X-CFF-Access-Key");
    }

    public String getSecretKey() {
        return header("X-CFF-Secret-Key");
    }

    public String getSecurityAccessKey() {
        return header("X-CFF-Security-Access-Key");
    }

    public String getSecuritySecretKey() {
        return header("X-CFF-Security-Secret-Key");
    }

    public String getToken() {
        return header("X-CFF-Auth-Token");
    }

    public String getSecurityToken() {
        return header("X-CFF-Security-Token");
    }

    public String getUserData(String key) {
        synchronized (Ctx.class) {
            if (userData == null) {
                Object d;
                try {
                    d = Json.parse(ENV.getOrDefault("RUNTIME_USERDATA", "{}"));
                } catch (IllegalArgumentException e) {
                    d = null;
                }
                userData = d instanceof Map ? (Map<?, ?>) d : java.util.Collections.emptyMap();
            }
        }
        Object v = userData.get(key);
        return v == null ? null : v.toString();
    }

    public String getFunctionName() {
        return env("RUNTIME_FUNC_NAME");
    }

    public int getRunningTimeInSeconds() {
        return intEnv("RUNTIME_TIMEOUT");
    }

    public String getVersion() {
        return env("RUNTIME_FUNC_VERSION");
    }

    public int getMemorySize() {
        return intEnv("RUNTIME_MEMORY");
    }

    public int getCPUNumber() {
        return intEnv("RUNTIME_CPU");
    }

    public String getPackage() {
        return env("RUNTIME_PACKAGE");
    }

    public String getProjectID() {
        return env("RUNTIME_PROJECT_ID");
    }

    public String getAlias() {
        return header("X-Cff-Alias");
    }

    public String getTraceparent() {
        return header("traceparent");
    }

    static final class Huawei extends Ctx implements com.huawei.services.runtime.Context {
        Huawei(String requestId, long timeoutMs, Map<String, String> headers) {
            super(requestId, timeoutMs, headers);
        }

        @Override
        public com.huawei.services.runtime.RuntimeLogger getLogger() {
            return logger;
        }
    }

    static final class Otc extends Ctx implements com.opentelekomcloud.services.runtime.Context {
        Otc(String requestId, long timeoutMs, Map<String, String> headers) {
            super(requestId, timeoutMs, headers);
        }

        @Override
        public com.opentelekomcloud.services.runtime.RuntimeLogger getLogger() {
            return logger;
        }
    }
}
