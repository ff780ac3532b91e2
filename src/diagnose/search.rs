//! The rate search, diagnose's default load: like the OpenMessaging Benchmark's rate
//! controller it grows the summed target geometrically while the pipeline keeps up, then
//! narrows the bracket between the highest target that kept up and the lowest that did
//! not. A step that missed is a measurement of the ceiling (overloaded, the pipeline
//! delivers what it can), and a target keeps up while the ceiling is 95 % of it, so after
//! a miss the search tries a target just below that knee and one just above; where the
//! steps disagree with the estimate, it bisects. A knee is two missed steps, as on a
//! ramp: a lone miss at the top of a converged bracket is run again before it counts.
//!
//! Each step is held for `hold` (4 s by default). Measured on the testbed's seed
//! topology (100 Mbit/s links, 32 KB events, 100 ms intervals): after a target change the
//! acknowledged rate reaches its new level within about a second — at once when the new
//! target is above the ceiling — and a step's first fifth is not measured
//! (`kafka::report::SETTLE_SHARE`), so a 4 s step is measured over 3.2 s, as the
//! scenarios' 4 s ramps were.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::kafka::MAX_RATE;
use crate::kafka::report::KEPT_UP_RATIO;
use crate::plateau::{self, RampStep};

/// The search grows the target by this factor while every step keeps up.
const GROWTH: f64 = 2.0;
/// It stops when the bracket's top is within this share above its bottom.
pub const PRECISION: f64 = 0.05;
/// The most steps a search runs (growth from 1 msg/s to the largest rate takes 24).
pub const MAX_STEPS: usize = 40;

/// `START:MAX:HOLD_S` — the first target and the highest, msg/s over all generators, and
/// how long each step is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSpec {
    /// First target, msg/s.
    pub start: u64,
    /// Highest target, msg/s: a pipeline that keeps up there has no plateau below it.
    pub max: u64,
    /// How long each step is held.
    pub hold: Duration,
}

impl FromStr for SearchSpec {
    type Err = String;

    /// Parses `START:MAX` or `START:MAX:HOLD_S`, e.g. `20000:200000:4`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid search '{text}'; use START:MAX[:HOLD_S] msg/s, e.g. 20000:200000:4");
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let (start, max, hold) = match parts[..] {
            [start, max] => (start, max, "4"),
            [start, max, hold] => (start, max, hold),
            _ => return Err(bad()),
        };
        let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let hold: f64 = hold.parse().map_err(|_| bad())?;
        let spec = SearchSpec {
            start: number(start)?,
            max: number(max)?,
            hold: Duration::try_from_secs_f64(hold).map_err(|_| bad())?,
        };
        if spec.start == 0 || spec.max < spec.start || spec.max > MAX_RATE {
            return Err(format!("search '{text}': need 0 < START <= MAX <= {MAX_RATE} msg/s"));
        }
        if spec.hold < Duration::from_secs(2) || spec.hold > crate::kafka::MAX_STEP_LENGTH {
            return Err(format!(
                "search '{text}': hold each step 2 to {} s (shorter steps are mostly settling)",
                crate::kafka::MAX_STEP_LENGTH.as_secs()
            ));
        }
        Ok(spec)
    }
}

impl fmt::Display for SearchSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.max, self.hold.as_secs_f64())
    }
}

/// The search's state: the steps judged so far and the bracket they make.
#[derive(Debug, Clone)]
pub struct RateSearch {
    spec: SearchSpec,
    /// The highest target that kept up.
    kept_up: Option<f64>,
    /// The lowest target that did not.
    missed: Option<f64>,
    /// The most a step that did not keep up delivered: overloaded, a pipeline delivers
    /// its ceiling.
    ceiling: f64,
    /// A lone miss is being run again.
    confirming: bool,
    steps: usize,
}

impl RateSearch {
    /// A search from `spec.start`.
    pub fn new(spec: SearchSpec) -> RateSearch {
        RateSearch { spec, kept_up: None, missed: None, ceiling: 0.0, confirming: false, steps: 0 }
    }

    /// The first target.
    pub fn first(&self) -> u64 {
        self.spec.start
    }

    /// The most steps this search can take, for progress.
    pub fn planned_steps(&self) -> usize {
        let growth = ((self.spec.max as f64 / self.spec.start as f64).log2().ceil() as usize).max(1);
        (growth + 6).min(MAX_STEPS)
    }

    /// Judges the step just held (the pipeline's steps so far, the last one at `target`)
    /// and returns the next target, or `None` when the search is over.
    pub fn next(&mut self, steps: &[RampStep]) -> Option<u64> {
        let step = steps.last()?;
        self.steps += 1;
        let target = step.target_rate;
        if step.sustained {
            self.kept_up = Some(self.kept_up.map_or(target, |k| k.max(target)));
            if self.confirming {
                // The miss was noise: the bracket opens upwards again.
                self.missed = None;
            }
        } else {
            self.missed = Some(self.missed.map_or(target, |m| m.min(target)));
            self.ceiling = self.ceiling.max(step.pipeline_rate());
        }
        self.confirming = false;
        if self.steps >= MAX_STEPS {
            return None;
        }
        let wider = |rate: f64| rate * (1.0 + PRECISION);
        let next = match (self.kept_up, self.missed) {
            (Some(up), None) if up >= self.spec.max as f64 => return None,
            (up, None) => (up.unwrap_or(target) * GROWTH).min(self.spec.max as f64),
            (Some(up), Some(missed)) if missed <= wider(up) => {
                if plateau::find_plateau(steps).found {
                    return None;
                }
                self.confirming = true;
                missed
            }
            // The first step ran on a cold producer and cluster: one miss there is run
            // again before the search comes down.
            (None, Some(missed)) if steps.len() == 1 => missed,
            (up, Some(missed)) => {
                // The ceiling seen says where the knee is: a target keeps up while the
                // ceiling is 95 % of it. One target just below that and one just above
                // close the bracket, unless the steps already ran disagree.
                let knee = self.ceiling / KEPT_UP_RATIO;
                let (below, above) =
                    ((knee * (1.0 - 0.4 * PRECISION)).round(), (knee * (1.0 + 0.4 * PRECISION)).round());
                let up = up.unwrap_or(0.0);
                // Split over the generators, a target runs as a little less (365 msg/s on
                // two runs as 364): one that ran that close counts as tried.
                let tried = |rate: f64| steps.iter().any(|s| (s.target_rate - rate).abs() <= (rate * 0.005).max(1.0));
                if self.ceiling >= 1.0 && up < below && below < missed && !tried(below) {
                    below
                } else if self.ceiling >= 1.0 && up < above && above < missed && !tried(above) {
                    above
                } else if up > 0.0 {
                    (up + missed) / 2.0
                } else if missed > 1.0 {
                    // Nothing kept up and nothing got through: lower the target.
                    missed / GROWTH
                } else {
                    return None;
                }
            }
        };
        Some(next.round().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step at `target` msg/s that delivered `achieved`.
    fn step(target: f64, achieved: f64) -> RampStep {
        RampStep {
            target_rate: target,
            achieved_rate: achieved,
            sustained: crate::kafka::report::kept_up(achieved, target),
            ..RampStep::default()
        }
    }

    /// A pipeline whose ceiling is `ceiling` msg/s, searched from `spec`: the targets it
    /// ran and the plateau found.
    fn search(spec: &str, ceiling: f64) -> (Vec<u64>, plateau::Plateau) {
        search_with(spec, |t| t.min(ceiling))
    }

    /// A pipeline that delivers `delivered(target)`, searched from `spec`.
    fn search_with(spec: &str, delivered: impl Fn(f64) -> f64) -> (Vec<u64>, plateau::Plateau) {
        let mut search = RateSearch::new(spec.parse().unwrap());
        let mut steps = Vec::new();
        let mut target = Some(search.first());
        while let Some(t) = target {
            steps.push(step(t as f64, delivered(t as f64)));
            target = search.next(&steps);
        }
        (steps.iter().map(|s| s.target_rate as u64).collect(), plateau::find_plateau(&steps))
    }

    #[test]
    fn it_grows_then_closes_on_the_knee_the_overloaded_step_showed() {
        // 400 delivered 340: targets up to 340 / 0.95 = 358 keep up.
        let (targets, found) = search("50:600:4", 340.0);
        assert_eq!(targets, [50, 100, 200, 400, 351, 365]);
        assert!(found.found);
        assert_eq!(found.plateau_msgs_per_sec, 340.0);
        assert_eq!(found.knee_step, Some(5), "365 is the lowest target missed");
        // A ramp of 50 msg/s steps would have placed it between 350 and 400.
    }

    #[test]
    fn a_start_above_the_ceiling_comes_down_in_one_step() {
        let (targets, found) = search("20000:200000", 340.0);
        assert_eq!(targets, [20000, 20000, 351, 365], "the cold first step is run again");
        assert!(found.found);
    }

    #[test]
    fn where_the_estimate_is_wrong_it_bisects() {
        // Overloaded, this pipeline delivers less than it sustains below its knee (it
        // thrashes): 1000 sustained, 600 delivered above.
        let (targets, found) = search_with("250:4000", |t| if t <= 1000.0 { t } else { 600.0 });
        assert_eq!(targets[..4], [250, 500, 1000, 2000]);
        assert!(found.found && targets.len() <= 10, "{targets:?}");
        let knee = targets[found.knee_step.unwrap()] as f64;
        assert!((1000.0..=1000.0 * (1.0 + PRECISION)).contains(&knee), "{targets:?}");
    }

    #[test]
    fn a_pipeline_that_keeps_up_to_the_top_has_no_plateau() {
        let (targets, found) = search("50:200", 10_000.0);
        assert_eq!(targets, [50, 100, 200]);
        assert!(!found.found);
    }

    #[test]
    fn a_target_split_over_generators_is_not_run_twice() {
        // Two generators run 365 msg/s as 2 × 182 = 364: the step just below the knee ran.
        let mut search = RateSearch::new("50:600".parse().unwrap());
        let mut steps = vec![step(200.0, 200.0), step(400.0, 353.5)];
        search.next(&steps[..1]);
        assert_eq!(search.next(&steps), Some(365));
        steps.push(step(364.0, 355.0));
        assert_eq!(search.next(&steps), Some(380), "not 365 again");
    }

    #[test]
    fn a_lone_miss_is_run_again_and_noise_opens_the_bracket() {
        // The step at 400 misses once (noise); the ceiling is 1000.
        let mut search = RateSearch::new("100:800".parse().unwrap());
        let mut steps = vec![step(100.0, 100.0)];
        assert_eq!(search.next(&steps), Some(200));
        steps.push(step(200.0, 200.0));
        assert_eq!(search.next(&steps), Some(400));
        steps.push(step(400.0, 300.0));
        assert_eq!(search.next(&steps), Some(309), "just below the knee 300 msg/s delivered says");
        steps.push(step(309.0, 309.0));
        assert_eq!(search.next(&steps), Some(322), "just above it");
        steps.push(step(322.0, 322.0));
        assert_eq!(search.next(&steps), Some(361), "the estimate was wrong: bisect");
        steps.push(step(361.0, 361.0));
        assert_eq!(search.next(&steps), Some(381));
        steps.push(step(381.0, 381.0));
        assert_eq!(search.next(&steps), Some(400), "converged on a lone miss: run it again");
        steps.push(step(400.0, 400.0));
        assert_eq!(search.next(&steps), Some(800), "it kept up: grow on");
        steps.push(step(800.0, 800.0));
        assert_eq!(search.next(&steps), None, "kept up at the top");
        assert!(!plateau::find_plateau(&steps).found);
    }

    #[test]
    fn a_search_is_parsed_with_a_clear_error() {
        let spec: SearchSpec = "20000:200000".parse().unwrap();
        assert_eq!((spec.start, spec.max, spec.hold), (20_000, 200_000, Duration::from_secs(4)));
        assert_eq!("50:600:5".parse::<SearchSpec>().unwrap().hold, Duration::from_secs(5));
        assert!("50".parse::<SearchSpec>().unwrap_err().contains("START:MAX[:HOLD_S]"));
        assert!("600:50".parse::<SearchSpec>().unwrap_err().contains("START <= MAX"));
        assert!("50:600:1".parse::<SearchSpec>().unwrap_err().contains("hold each step 2"));
        assert!("0:600".parse::<SearchSpec>().is_err());
    }
}
