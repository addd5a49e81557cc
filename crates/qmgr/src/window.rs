//! A destination's concurrency window: slow start, feedback and the dead
//! state (Postfix's qmgr_queue.c and SCHEDULER_README).
//!
//! A destination starts with `initial_destination_concurrency` deliveries
//! in flight. Each delivery that ends without a site failure is positive
//! feedback (by default 1/window): once it adds up to 1 the window grows
//! by one, as long as it stays below the transport's concurrency limit
//! and below the deliveries in flight plus the initial concurrency. Each
//! site failure (no server could be reached) is negative feedback: the
//! window shrinks by one per unit (never below 1), and adds 1/window to
//! the failed cohorts; when they reach the failed cohort limit with the
//! window at 1 the destination is dead. A dead destination's mail is
//! deferred without delivery attempts until minimal_backoff_time has
//! passed; then it comes back with the deliveries in flight (or the
//! initial concurrency) as its window.

use std::fmt;

/// A feedback amount: a constant, or a constant divided by the window
/// (`1/concurrency`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Feedback {
    value: f64,
    per_window: bool,
}

impl Feedback {
    /// Parses `N` or `N/concurrency` (N in (0, 1]); anything else is
    /// refused with the reason.
    pub(crate) fn parse(text: &str) -> Result<Feedback, String> {
        let text = text.trim();
        let (num, per_window) = match text.split_once('/') {
            Some((n, d)) if d.trim().eq_ignore_ascii_case("concurrency") => (n.trim(), true),
            Some(_) => return Err(format!("bad feedback value {text:?}")),
            None => (text, false),
        };
        match num.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 1.0 => Ok(Feedback {
                value: v,
                per_window,
            }),
            _ => Err(format!("feedback value {text:?} is not in (0, 1]")),
        }
    }

    fn at(self, window: i64) -> f64 {
        if self.per_window {
            // Precision loss only for windows beyond 2^53.
            #[allow(clippy::cast_precision_loss)]
            let w = window.max(1) as f64;
            self.value / w
        } else {
            self.value
        }
    }
}

impl Default for Feedback {
    fn default() -> Self {
        Feedback {
            value: 1.0,
            per_window: false,
        }
    }
}

/// One transport's scheduling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// `<transport>_destination_concurrency_limit` (usize::MAX: none).
    pub(crate) limit: usize,
    /// `<transport>_initial_destination_concurrency`.
    pub(crate) initial: usize,
    /// `<transport>_destination_concurrency_failed_cohort_limit` (0: never dead).
    pub(crate) cohort_limit: f64,
    /// Positive feedback.
    pub(crate) positive: Feedback,
    /// Negative feedback.
    pub(crate) negative: Feedback,
    /// destination_concurrency_feedback_debug.
    pub(crate) debug: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            limit: usize::MAX,
            initial: usize::MAX,
            cohort_limit: 0.0,
            positive: Feedback::default(),
            negative: Feedback::default(),
            debug: false,
        }
    }
}

fn int(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The window state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Window {
    /// Deliveries allowed in flight; 0 when dead.
    window: i64,
    success: f64,
    failure: f64,
    fail_cohorts: f64,
}

impl Window {
    /// A new destination's window: the initial concurrency, within the limit.
    pub(crate) fn new(p: &Policy) -> Window {
        Window {
            window: int(p.initial.min(p.limit).max(1)),
            success: 0.0,
            failure: 0.0,
            fail_cohorts: 0.0,
        }
    }

    /// Deliveries allowed in flight now (0 when dead).
    pub(crate) fn allowed(&self) -> usize {
        usize::try_from(self.window).unwrap_or(0)
    }

    /// True when the destination is dead.
    pub(crate) fn dead(&self) -> bool {
        self.window <= 0
    }

    /// A delivery ended without a site failure; `busy`: deliveries still
    /// in flight.
    pub(crate) fn success(&mut self, p: &Policy, busy: usize) {
        if self.dead() {
            self.revive(p, busy);
            return;
        }
        self.fail_cohorts = 0.0;
        let limit = int(p.limit);
        if self.window < limit && self.window < int(busy).saturating_add(int(p.initial)) {
            let feedback = p.positive.at(self.window);
            self.success += feedback;
            while self.success + feedback / 2.0 >= 1.0 {
                self.window = self.window.saturating_add(1);
                self.success -= 1.0;
                self.failure = 0.0;
            }
            self.window = self.window.min(limit);
        }
    }

    /// A delivery ended with a site failure. Returns true when this made
    /// the destination dead.
    pub(crate) fn failure(&mut self, p: &Policy) -> bool {
        if self.dead() {
            return false;
        }
        #[allow(clippy::cast_precision_loss)]
        let w = self.window as f64;
        self.fail_cohorts += 1.0 / w;
        let cohorts_spent = p.cohort_limit > 0.0 && self.fail_cohorts >= p.cohort_limit;
        if cohorts_spent {
            self.window = 1;
        }
        let feedback = p.negative.at(self.window);
        self.failure -= feedback;
        while self.failure - feedback / 2.0 < 0.0 {
            self.window -= 1;
            self.success = 0.0;
            self.failure += 1.0;
        }
        self.window = self.window.max(1);
        if self.window == 1 && cohorts_spent {
            self.window = 0;
            return true;
        }
        false
    }

    /// Back from the dead (the back-off timer ran out): the deliveries in
    /// flight, or the initial concurrency, as the window.
    pub(crate) fn revive(&mut self, p: &Policy, busy: usize) {
        let w = if busy > 0 { busy } else { p.initial };
        *self = Window::new(&Policy { initial: w, ..*p });
    }
}

impl fmt::Display for Window {
    /// As Postfix's destination_concurrency_feedback_debug lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "window {} success {} failure {} fail_cohorts {}",
            self.window, self.success, self.failure, self.fail_cohorts
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: usize, initial: usize) -> Policy {
        Policy {
            limit,
            initial,
            cohort_limit: 1.0,
            ..Policy::default()
        }
    }

    #[test]
    fn slow_start_grows_by_one_per_success_up_to_the_limit() {
        let p = policy(8, 3);
        let mut w = Window::new(&p);
        assert_eq!(w.allowed(), 3);
        w.success(&p, 3);
        assert_eq!(w.allowed(), 4);
        for _ in 0..20 {
            w.success(&p, 8);
        }
        assert_eq!(w.allowed(), 8);
        // Never above the in-flight count plus the initial concurrency.
        let mut w = Window::new(&p);
        w.success(&p, 0);
        w.success(&p, 0);
        w.success(&p, 0);
        assert_eq!(w.allowed(), 3);
        // The initial window stays within the limit.
        assert_eq!(Window::new(&policy(2, 5)).allowed(), 2);
    }

    #[test]
    fn per_window_feedback_needs_a_whole_window_of_successes() {
        let mut p = policy(20, 4);
        p.positive = Feedback::parse("1/concurrency").unwrap();
        let mut w = Window::new(&p);
        for _ in 0..3 {
            w.success(&p, 4);
        }
        assert_eq!(w.allowed(), 4, "{w}");
        w.success(&p, 4);
        assert_eq!(w.allowed(), 5, "{w}");
    }

    #[test]
    fn failed_cohort_marks_the_destination_dead() {
        let p = policy(20, 5);
        let mut w = Window::new(&p);
        // The first failure opens a negative hysteresis cycle: -2; then -1
        // each; cohorts 1/5 + 1/3 < 1, + 1/2 >= 1: dead.
        assert!(!w.failure(&p));
        assert_eq!(w.allowed(), 3);
        assert!(!w.failure(&p));
        assert_eq!(w.allowed(), 2);
        assert!(w.failure(&p), "{w}");
        assert!(w.dead());
        assert_eq!(w.allowed(), 0);
        assert!(!w.failure(&p));
        w.revive(&p, 0);
        assert_eq!(w.allowed(), 5);
        // A success in between resets the cohorts.
        let mut w = Window::new(&policy(20, 1));
        assert!(w.failure(&policy(20, 1)));
        let mut w2 = Window::new(&p);
        w2.failure(&p);
        w2.success(&p, 0);
        w2.failure(&p);
        w2.failure(&p);
        assert!(!w2.dead(), "{w2}");
        w.success(&p, 2);
        assert_eq!(w.allowed(), 2);
    }

    #[test]
    fn no_cohort_limit_never_dies() {
        let mut p = policy(20, 2);
        p.cohort_limit = 0.0;
        let mut w = Window::new(&p);
        for _ in 0..10 {
            assert!(!w.failure(&p));
        }
        assert_eq!(w.allowed(), 1);
    }

    #[test]
    fn feedback_values_parse() {
        assert_eq!(Feedback::parse("1").unwrap(), Feedback::default());
        assert!(Feedback::parse("1/concurrency").unwrap().per_window);
        assert!(Feedback::parse("0").is_err());
        assert!(Feedback::parse("2").is_err());
        assert!(Feedback::parse("1/8").is_err());
        assert!(Feedback::parse("x").is_err());
    }
}
