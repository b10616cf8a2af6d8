package fgs.runtime;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/** FunctionGraph's logger, both packages' interfaces: `<ISO-8601 UTC ms> <request id> <LEVEL> <message>`. */
final class Logger implements com.huawei.services.runtime.RuntimeLogger,
        com.opentelekomcloud.services.runtime.RuntimeLogger {
    private static final DateTimeFormatter TS =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private final String requestId;

    Logger(String requestId) {
        this.requestId = requestId;
    }

    private void write(String level, String message) {
        String line = TS.format(Instant.now()) + " " + requestId + " " + level + message + "\n";
        synchronized (System.out) {
            System.out.print(line);
            System.out.flush();
        }
    }

    @Override
    public void log(String log) {
        write("", log);
    }

    @Override
    public void debug(String log) {
        write("DEBUG ", log);
    }

    @Override
    public void info(String log) {
        write("INFO ", log);
    }

    @Override
    public void warn(String log) {
        write("WARN ", log);
    }

    @Override
    public void error(String log) {
        write("ERROR ", log);
    }

    /** Accepted for compatibility; fgs keeps every level. */
    @Override
    public void setLevel(String level) {
    }
}
