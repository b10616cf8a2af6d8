package fgs.runtime;

import java.util.UUID;

/** Request ids for the initializer's and the pre-stop handler's contexts. */
final class Ids {
    private Ids() {
    }

    static String next() {
        return UUID.randomUUID().toString();
    }
}
