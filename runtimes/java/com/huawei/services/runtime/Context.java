package com.huawei.services.runtime;

/** FunctionGraph's Java context (the methods of its runtime jar and of its developer guide). */
public interface Context {
    String getRequestID();

    int getRemainingTimeInMilliSeconds();

    String getAccessKey();

    String getSecretKey();

    String getSecurityAccessKey();

    String getSecuritySecretKey();

    String getUserData(String key);

    String getFunctionName();

    int getRunningTimeInSeconds();

    String getVersion();

    int getMemorySize();

    int getCPUNumber();

    String getPackage();

    String getProjectID();

    String getToken();

    String getSecurityToken();

    RuntimeLogger getLogger();

    String getAlias();

    /**
     * [FGS] The invocation's W3C {@code traceparent} (its span when fgs traces it, else the
     * caller's), or "" when there is none.
     */
    String getTraceparent();
}
