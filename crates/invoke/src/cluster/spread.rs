//! Reserved instances of the cluster: a function version's reserved count is that many
//! instances in the whole cluster, spread over the live nodes. Each node computes its own share
//! from the same inputs (the live node ids, the function version, the count), so the nodes
//! agree without talking to each other or to the store.
//!
//! The nodes are ranked per function version by a hash of the version and the node id
//! (rendezvous hashing); the node at rank `p` of `k` keeps `n / k` instances, plus one if
//! `p < n % k`. Two reasons over ranking by sorted node ids: the odd instances of different
//! functions land on different nodes (sorted ids would put every function's first instance on
//! the same node), and a node that dies or joins moves only the instances it held or takes: the
//! others keep their relative order, so with fewer reserved instances than nodes (the usual
//! case) the survivors that held one keep it and one more node takes the dead node's.

use fgs_store::FunctionKey;

/// 64-bit FNV-1a over the parts, each followed by a 0 byte (so that parts cannot run into each
/// other), then MurmurHash3's finalizer: FNV alone barely mixes its last bytes, and node ids
/// often differ only there (`node-1`, `node-2`). Stable across builds and platforms: every
/// node of a cluster must compute the same ranking.
fn weight(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The live nodes ranked for one function version, first the one that keeps the most.
pub(crate) fn rank<'a>(
    members: &'a [String],
    function: &FunctionKey,
    version: &str,
) -> Vec<&'a str> {
    let mut ranked: Vec<(u64, &str)> = members
        .iter()
        .map(|m| {
            let w = weight(&[
                &function.project,
                &function.package,
                &function.name,
                version,
                m,
            ]);
            (w, m.as_str())
        })
        .collect();
    ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked.into_iter().map(|(_, m)| m).collect()
}

/// How many of `count` reserved instances of a function version `node` keeps, among the live
/// `members`; 0 when `node` is not among them (it does not know the cluster, or is fenced).
pub(crate) fn share(
    node: &str,
    members: &[String],
    function: &FunctionKey,
    version: &str,
    count: u32,
) -> u32 {
    let ranked = rank(members, function, version);
    let Some(p) = ranked.iter().position(|m| *m == node) else {
        return 0;
    };
    let k = ranked.len() as u32;
    count / k + u32::from((p as u32) < count % k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> FunctionKey {
        FunctionKey {
            project: "p".into(),
            package: "default".into(),
            name: name.into(),
        }
    }

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("node-{i}")).collect()
    }

    fn shares(members: &[String], f: &FunctionKey, count: u32) -> Vec<u32> {
        members
            .iter()
            .map(|m| share(m, members, f, "latest", count))
            .collect()
    }

    #[test]
    fn the_shares_add_up_to_the_count_and_differ_by_at_most_one() {
        for k in 1..=5 {
            let members = nodes(k);
            for count in 0..=11 {
                for f in ["a", "b", "fn-with-a-long-name"] {
                    let s = shares(&members, &key(f), count);
                    assert_eq!(s.iter().sum::<u32>(), count, "{k} nodes, {count}: {s:?}");
                    let (lo, hi) = (s.iter().min(), s.iter().max());
                    assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn a_single_node_keeps_the_whole_count() {
        let me = vec!["only".to_string()];
        assert_eq!(share("only", &me, &key("f"), "latest", 7), 7);
    }

    #[test]
    fn a_node_outside_the_members_keeps_none() {
        assert_eq!(share("node-9", &nodes(3), &key("f"), "latest", 5), 0);
        assert_eq!(share("node-0", &[], &key("f"), "latest", 5), 0);
    }

    #[test]
    fn every_node_computes_the_same_ranking_whatever_order_it_lists_the_members_in() {
        let mut members = nodes(4);
        let a: Vec<String> = rank(&members, &key("f"), "1")
            .into_iter()
            .map(str::to_owned)
            .collect();
        members.reverse();
        assert_eq!(rank(&members, &key("f"), "1"), a);
        // The ranking is a pure function of its inputs, pinned (the value computed apart, in
        // Python): nodes of different builds must agree, and a change here would make a
        // cluster of mixed versions keep more or fewer reserved instances than it should.
        assert_eq!(weight(&["a", "b"]), weight(&["a", "b"]));
        assert_ne!(weight(&["ab", ""]), weight(&["a", "b"]));
        assert_eq!(
            weight(&["p", "default", "f", "1", "node-0"]),
            0x8e4f_4170_fcea_19bd
        );
    }

    #[test]
    fn the_odd_instances_of_many_functions_spread_over_the_nodes() {
        let members = nodes(3);
        let mut firsts = [0u32; 3];
        for i in 0..300 {
            let s = shares(&members, &key(&format!("fn-{i}")), 1);
            let at = s.iter().position(|&n| n == 1).expect("one node keeps it");
            firsts[at] += 1;
        }
        assert!(firsts.iter().all(|&n| n > 60), "{firsts:?}");
    }

    #[test]
    fn when_a_node_dies_the_survivors_that_kept_one_keep_it_and_one_more_takes_its_share() {
        let all = nodes(3);
        for i in 0..50 {
            let f = key(&format!("fn-{i}"));
            let before = shares(&all, &f, 2);
            let holder = before.iter().position(|&n| n == 1).expect("a holder");
            let survivors: Vec<String> =
                all.iter().filter(|m| **m != all[holder]).cloned().collect();
            for m in &survivors {
                let was = share(m, &all, &f, "latest", 2);
                let now = share(m, &survivors, &f, "latest", 2);
                assert_eq!(now, 1, "{m} of {survivors:?} for {f:?}");
                assert!(now >= was, "a survivor never gives one up");
            }
        }
    }
}
