//! The network matrix: a test for every ordered pair of hosts, scheduled in rounds of
//! disjoint pairs so that no host is in two tests at once.
//!
//! The rounds come from the circle method of round-robin tournaments: with N hosts
//! (N rounded up to even) there are N − 1 rounds in which every host meets one other;
//! each round is run once in each direction, so all N(N − 1) ordered pairs take
//! 2(N − 1) rounds instead of N(N − 1) tests one after another.

use serde::{Deserialize, Serialize};

use super::report::LimitedBy;

/// Rounds of `(from, to)` host indices; the pairs within a round share no host.
pub fn rounds(n_hosts: usize) -> Vec<Vec<(usize, usize)>> {
    if n_hosts < 2 {
        return Vec::new();
    }
    let n = n_hosts + n_hosts % 2;
    let mut rounds = Vec::with_capacity(2 * (n - 1));
    for round in 0..n - 1 {
        // Host n-1 stays put; the others rotate around it.
        let position = |slot: usize| {
            if slot == n - 1 { n - 1 } else { (slot + round) % (n - 1) }
        };
        let pairs: Vec<(usize, usize)> = (0..n / 2)
            .map(|k| (position(k), position(n - 1 - k)))
            .filter(|&(a, b)| a < n_hosts && b < n_hosts)
            .collect();
        rounds.push(pairs.clone());
        rounds.push(pairs.into_iter().map(|(a, b)| (b, a)).collect());
    }
    rounds
}

/// Every ordered pair, one per round.
pub fn sequential_rounds(n_hosts: usize) -> Vec<Vec<(usize, usize)>> {
    (0..n_hosts).flat_map(|from| (0..n_hosts).filter(move |&to| to != from).map(move |to| vec![(from, to)])).collect()
}

/// Rounds for a given set of ordered pairs (diagnose's generator → broker and broker ↔
/// broker tests): no host in two tests of a round. Greedy, busiest hosts first: each round
/// takes the remaining pairs whose hosts have the most tests left (then the most between
/// them), so that the busiest host's tests — the lower bound on the number of rounds —
/// are spread over every round.
pub fn schedule(pairs: &[(usize, usize)]) -> Vec<Vec<(usize, usize)>> {
    let mut left: Vec<(usize, usize)> = pairs.to_vec();
    left.dedup();
    let mut rounds = Vec::new();
    while !left.is_empty() {
        let mut load: std::collections::BTreeMap<usize, usize> = Default::default();
        for &(a, b) in &left {
            *load.entry(a).or_default() += 1;
            *load.entry(b).or_default() += 1;
        }
        let mut order: Vec<usize> = (0..left.len()).collect();
        // Stable: among equals, the given order.
        order.sort_by_key(|&i| {
            let (a, b) = (load[&left[i].0], load[&left[i].1]);
            std::cmp::Reverse((a.max(b), a + b))
        });
        let mut busy = std::collections::BTreeSet::new();
        let mut round = Vec::new();
        for i in order {
            let (a, b) = left[i];
            if !busy.contains(&a) && !busy.contains(&b) {
                busy.insert(a);
                busy.insert(b);
                round.push((a, b));
            }
        }
        left.retain(|pair| !round.contains(pair));
        rounds.push(round);
    }
    rounds
}

/// The result of one ordered pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatrixCell {
    /// Index of the sending agent.
    pub from: usize,
    /// Index of the receiving agent.
    pub to: usize,
    /// Received throughput, bits/s; absent when the test failed.
    pub bits_per_second: Option<f64>,
    /// TCP retransmits.
    pub retransmits: Option<u64>,
    /// Who limited the test.
    pub limited_by: Option<LimitedBy>,
    /// UDP tests: the rate offered, bits/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_bits_per_second: Option<f64>,
    /// UDP tests: datagrams lost, percent of those sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_percent: Option<f64>,
    /// Why the test failed, if it did.
    pub error: Option<String>,
}

/// The whole matrix.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatrixReport {
    /// The agents' URLs, in index order.
    pub agents: Vec<String>,
    /// One cell per ordered pair.
    pub cells: Vec<MatrixCell>,
    /// Rounds run.
    pub rounds: usize,
    /// Seconds the whole matrix took.
    pub elapsed_secs: f64,
}

impl MatrixReport {
    /// The cell for `from → to`.
    pub fn cell(&self, from: usize, to: usize) -> Option<&MatrixCell> {
        self.cells.iter().find(|c| c.from == from && c.to == to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn check(n: usize) {
        let rounds = rounds(n);
        let mut seen = HashSet::new();
        for round in &rounds {
            let mut busy = HashSet::new();
            for &(a, b) in round {
                assert!(busy.insert(a) && busy.insert(b), "host in two tests at once: {round:?}");
                assert!(seen.insert((a, b)), "pair {a}->{b} twice");
            }
        }
        assert_eq!(seen.len(), n * (n - 1), "every ordered pair once for n={n}");
        let expected_rounds = 2 * (n + n % 2 - 1);
        assert_eq!(rounds.len(), expected_rounds);
    }

    #[test]
    fn rounds_cover_every_ordered_pair_without_overlap() {
        for n in 2..=9 {
            check(n);
        }
    }

    #[test]
    fn odd_numbers_of_hosts_take_two_rounds_per_host() {
        assert_eq!(rounds(4).len(), 6);
        assert_eq!(rounds(5).len(), 10);
        assert_eq!(rounds(7).len(), 14);
    }

    #[test]
    fn fifty_hosts_take_98_rounds_not_2450_tests() {
        assert_eq!(rounds(50).len(), 98);
        assert_eq!(sequential_rounds(50).len(), 2450);
    }

    #[test]
    fn the_seed_topologys_pairs_take_as_many_rounds_as_a_broker_has_tests() {
        // Two generators (0, 1) to three brokers (2, 3, 4), and the brokers to each other:
        // 12 tests, each broker in 6 of them.
        let mut pairs: Vec<(usize, usize)> = (0..2).flat_map(|g| (2..5).map(move |b| (g, b))).collect();
        pairs.extend((2..5).flat_map(|a| (2..5).filter(move |b| *b != a).map(move |b| (a, b))));
        let rounds = schedule(&pairs);
        let mut seen = HashSet::new();
        for round in &rounds {
            let mut busy = HashSet::new();
            for &(a, b) in round {
                assert!(busy.insert(a) && busy.insert(b), "host in two tests at once: {round:?}");
                assert!(seen.insert((a, b)));
            }
        }
        assert_eq!(seen.len(), 12);
        assert_eq!(rounds.len(), 6, "{rounds:?}");
    }

    #[test]
    fn any_topologys_pairs_are_each_scheduled_once_without_overlap() {
        for g in 0..4 {
            for b in 1..7 {
                let n = g + b;
                let mut pairs: Vec<(usize, usize)> = (0..g).flat_map(|x| (g..n).map(move |y| (x, y))).collect();
                pairs.extend((g..n).flat_map(|x| (g..n).filter(move |y| *y != x).map(move |y| (x, y))));
                let rounds = schedule(&pairs);
                let scheduled: Vec<(usize, usize)> = rounds.iter().flatten().copied().collect();
                assert_eq!(scheduled.len(), pairs.len(), "g={g} b={b}");
                assert!(pairs.iter().all(|p| scheduled.contains(p)), "g={g} b={b}");
                for round in &rounds {
                    let hosts: HashSet<usize> = round.iter().flat_map(|&(x, y)| [x, y]).collect();
                    assert_eq!(hosts.len(), 2 * round.len(), "g={g} b={b}: {round:?}");
                }
                // Never more rounds than tests one at a time; fewer once pairs can share one.
                assert!(rounds.len() <= pairs.len());
                if b >= 2 && n >= 4 {
                    assert!(rounds.len() < pairs.len(), "g={g} b={b}: {} rounds", rounds.len());
                }
            }
        }
    }

    #[test]
    fn one_host_has_no_pairs() {
        assert!(rounds(1).is_empty());
        assert!(sequential_rounds(1).is_empty());
    }
}
