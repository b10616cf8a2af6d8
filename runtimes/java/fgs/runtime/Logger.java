package fgs.runtime;

/** FunctionGraph's logger, both packages' interfaces: `<ISO-8601 UTC ms> <request id> <LEVEL> <message>`. */
final class Logger implements com.huawei.services.runtime.RuntimeLogger,
        com.opentelekomcloud.services.runtime.RuntimeLogger {
    private final String requestId;

    Logger(String requestId) {
        this.requestId = requestId;
    }

    /**
     * `2006-01-02T15:04:05.000Z` by arithmetic: java.time's formatter costs about 25 ms of class
     * loading at the first log line of a cold start.
     */
    static String timestamp(long ms) {
        long days = Math.floorDiv(ms, 86_400_000L);
        long rem = ms - days * 86_400_000L;
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        long z = days + 719_468;
        long era = Math.floorDiv(z, 146_097);
        long doe = z - era * 146_097;
        long yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long mp = (5 * doy + 2) / 153;
        long d = doy - (153 * mp + 2) / 5 + 1;
        long m = mp < 10 ? mp + 3 : mp - 9;
        long y = yoe + era * 400 + (m <= 2 ? 1 : 0);
        StringBuilder b = new StringBuilder(24);
        b.append(y).append('-');
        two(b, m).append('-');
        two(b, d).append('T');
        two(b, rem / 3_600_000).append(':');
        two(b, rem / 60_000 % 60).append(':');
        two(b, rem / 1000 % 60).append('.');
        long milli = rem % 1000;
        if (milli < 100) {
            b.append('0');
        }
        return two(b, milli).append('Z').toString();
    }

    private static StringBuilder two(StringBuilder b, long v) {
        if (v < 10) {
            b.append('0');
        }
        return b.append(v);
    }

    private void write(String level, String message) {
        String line = timestamp(System.currentTimeMillis()) + " " + requestId + " " + level + message + "\n";
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
