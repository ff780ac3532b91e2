//! Finding the plateau: where achieved throughput, summed over the generators, stops
//! following the target. The window from the last step that kept up to the end of the
//! ramp is what the rules judge.

use serde::{Deserialize, Serialize};

use crate::kafka::report::{Step, kept_up};

/// One ramp step over all generators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RampStep {
    /// Target over all generators, msg/s.
    pub target_rate: f64,
    /// Acknowledged over all generators, msg/s.
    pub achieved_rate: f64,
    /// Whether the sum kept up (≥ 95 % of the target).
    pub sustained: bool,
}

/// Where the plateau is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    /// Whether throughput stopped following the target before the ramp's end.
    pub found: bool,
    /// The highest rate reached, msg/s (the plateau's level, or the top of the ramp).
    pub plateau_msgs_per_sec: f64,
    /// Index of the first step that did not keep up (when found).
    pub knee_step: Option<usize>,
    /// Steps the ramp ran.
    pub steps: usize,
}

/// Sums the generators' steps step by step (over the steps all of them ran).
pub fn combine_steps(per_generator: &[Vec<Step>]) -> Vec<RampStep> {
    let n = per_generator.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|i| {
            let target: f64 = per_generator.iter().map(|steps| steps[i].target_rate as f64).sum();
            let achieved: f64 = per_generator.iter().map(|steps| steps[i].achieved_rate).sum();
            RampStep { target_rate: target, achieved_rate: achieved, sustained: kept_up(achieved, target) }
        })
        .collect()
}

/// The knee: the first of two consecutive steps that did not keep up.
pub fn find_plateau(steps: &[RampStep]) -> Plateau {
    let best = steps.iter().map(|s| s.achieved_rate).fold(0.0, f64::max);
    let knee = steps.windows(2).position(|pair| !pair[0].sustained && !pair[1].sustained);
    Plateau { found: knee.is_some(), plateau_msgs_per_sec: best, knee_step: knee, steps: steps.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(target: f64, achieved: f64) -> RampStep {
        RampStep { target_rate: target, achieved_rate: achieved, sustained: kept_up(achieved, target) }
    }

    #[test]
    fn the_knee_is_the_first_of_two_missed_steps() {
        let steps = [step(10.0, 10.0), step(20.0, 19.5), step(30.0, 24.0), step(40.0, 25.0)];
        let plateau = find_plateau(&steps);
        assert!(plateau.found);
        assert_eq!(plateau.knee_step, Some(2));
        assert_eq!(plateau.plateau_msgs_per_sec, 25.0);
    }

    #[test]
    fn one_missed_step_is_noise_and_a_full_ramp_has_no_plateau() {
        let steps = [step(10.0, 10.0), step(20.0, 15.0), step(30.0, 30.0)];
        assert!(!find_plateau(&steps).found);
        assert_eq!(find_plateau(&steps).plateau_msgs_per_sec, 30.0);
        assert!(!find_plateau(&[]).found);
    }

    #[test]
    fn generators_are_summed_step_by_step() {
        let a = vec![
            Step { target_rate: 100, achieved_rate: 100.0, ..Default::default() },
            Step { target_rate: 200, achieved_rate: 150.0, ..Default::default() },
        ];
        let b = vec![Step { target_rate: 100, achieved_rate: 99.0, ..Default::default() }];
        let combined = combine_steps(&[a, b]);
        assert_eq!(combined.len(), 1);
        assert_eq!(combined[0].target_rate, 200.0);
        assert_eq!(combined[0].achieved_rate, 199.0);
        assert!(combined[0].sustained);
    }
}
