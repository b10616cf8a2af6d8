//! Request ids: UUIDs of version 7 made without a system call per id.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// The 74 bits after a version 7 UUID's millisecond and version: `rand_a` (12) and `rand_b` (62).
const RAND_BITS: u32 = 74;

thread_local! {
    /// This thread's last millisecond, the 74 bits of its last id, and its generator's state
    /// (seeded once from the system's random source).
    static IDS: Cell<Option<(u64, u128, u64)>> = const { Cell::new(None) };
}

/// SplitMix64: one 64-bit step of a well-mixed sequence.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A new invocation's request id: a UUID of version 7, whose first 48 bits are the time in
/// milliseconds. [FGS] FunctionGraph's ids are random (version 4); time-ordered ids keep the
/// invocation log's request-id index growing at its end instead of at random pages, which
/// halves the cost of storing a warm call's log (bench/README.md), and they sort by start.
///
/// Each millisecond starts from fresh random bits (73 of the 74, so that counting up cannot
/// overflow); ids of the same millisecond on the same thread count up from there, so one
/// thread's ids strictly increase. The random bits come from a generator seeded once per thread
/// from the system's random source: a request id names an invocation, it is no secret (an
/// instance answers only for the ids in flight in it).
pub fn new_request_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        & ((1 << 48) - 1);
    let (ms, bits) = IDS.with(|c| {
        let (last, prev, mut state) = c.get().unwrap_or_else(|| {
            let seed = uuid::Uuid::new_v4().as_u128();
            (0, 0, (seed as u64) ^ ((seed >> 64) as u64))
        });
        let (ms, bits) = if now > last {
            let fresh = (u128::from(next(&mut state)) << 64) | u128::from(next(&mut state));
            (now, fresh & ((1 << (RAND_BITS - 1)) - 1))
        } else {
            // The same millisecond, or the clock stepped back: keep counting from the last id.
            (last, prev + 1)
        };
        c.set(Some((ms, bits, state)));
        (ms, bits)
    });
    let rand_a = (bits >> 62) & 0xfff;
    let rand_b = bits & ((1 << 62) - 1);
    let v = (u128::from(ms) << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b;
    uuid::Uuid::from_u128(v).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_time_ordered_uuids() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ids: Vec<String> = (0..1000).map(|_| new_request_id()).collect();
        for w in ids.windows(2) {
            assert!(w[0] < w[1], "{} then {}", w[0], w[1]);
        }
        let id = uuid::Uuid::parse_str(&ids[0]).expect("a UUID");
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(ids[0].len(), 36);
        let (secs, nanos) = id.get_timestamp().expect("a v7 timestamp").to_unix();
        let ms = secs * 1000 + u64::from(nanos) / 1_000_000;
        assert!(ms >= before && ms <= before + 60_000, "{ms} vs {before}");
    }

    #[test]
    fn threads_draw_different_ids() {
        let a = std::thread::spawn(|| (0..50).map(|_| new_request_id()).collect::<Vec<_>>());
        let b = std::thread::spawn(|| (0..50).map(|_| new_request_id()).collect::<Vec<_>>());
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let all: std::collections::HashSet<_> = a.iter().chain(&b).collect();
        assert_eq!(all.len(), 100);
    }
}
