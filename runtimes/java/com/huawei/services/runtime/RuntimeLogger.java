package com.huawei.services.runtime;

/** FunctionGraph's function logger; fgs writes `<ISO-8601 UTC ms> <request id> <LEVEL> <message>`. */
public interface RuntimeLogger {
    void log(String log);

    void debug(String log);

    void info(String log);

    void warn(String log);

    void error(String log);

    void setLevel(String level);
}
