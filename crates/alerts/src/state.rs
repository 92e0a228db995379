//! The alert state machine: `ok → firing → resolved → firing …`. One evaluation makes at most
//! one transition, and each transition carries an idempotency key made of the alert id, the
//! transition's sequence number and its kind, so the same transition always has the same key
//! (the `webhook-id` a receiver deduplicates on) and two transitions never share one.
//!
//! State is written with compare-and-set on `version` (see [`crate::store::AlertStore`]): an
//! evaluation that lost a race to another writes nothing and sends nothing.

use serde::{Deserialize, Serialize};

use crate::model::Minutes;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Never fired.
    #[default]
    Ok,
    Firing,
    /// Fired, then the condition stopped holding.
    Resolved,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [Status::Ok, Status::Firing, Status::Resolved]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A change of status that is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    Firing,
    Resolved,
}

impl TransitionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Firing => "firing",
            TransitionKind::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<TransitionKind> {
        match text {
            "firing" => Some(TransitionKind::Firing),
            "resolved" => Some(TransitionKind::Resolved),
            _ => None,
        }
    }
}

/// One transition: its kind and its sequence number (1 for the alert's first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub kind: TransitionKind,
    pub seq: u64,
}

impl Transition {
    /// The idempotency key: `<alert id>.<seq>.<kind>`, the same for every attempt at this
    /// transition's delivery, different for every other transition.
    pub fn key(&self, alert_id: &str) -> String {
        format!("{alert_id}.{}.{}", self.seq, self.kind.as_str())
    }
}

/// A notification written with its transition and not yet settled (delivered or dead
/// lettered). Whoever holds the claim sends it; an expired claim is taken over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub key: String,
    pub kind: TransitionKind,
    /// The exact body to send (signed per attempt).
    pub body: String,
    /// Wall-clock epoch milliseconds until which the claimant owns the delivery.
    pub claimed_until_ms: i64,
}

/// An alert's state, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub status: Status,
    /// Bumped by every write; writes are conditional on it.
    pub version: u64,
    /// Transitions so far.
    pub transitions: u64,
    /// Evaluation time (epoch ms) at which the alert is next due; 0 is at once.
    pub next_due_ms: i64,
    pub last_evaluated_ms: Option<i64>,
    pub last_value: Option<f64>,
    /// Evaluation time of the last `firing` transition (for the cooldown).
    pub last_fired_ms: Option<i64>,
    pub pending: Option<Pending>,
}

impl AlertState {
    /// The transition an evaluation at `at_ms` makes when the condition `holds`, if any:
    /// firing when it starts to hold (unless the last firing is within `cooldown`), resolved
    /// when a firing alert's condition stops holding, else none.
    pub fn step(&self, holds: bool, at_ms: i64, cooldown: Minutes) -> Option<Transition> {
        let kind = match (self.status, holds) {
            (Status::Ok | Status::Resolved, true) => {
                let cooling = self
                    .last_fired_ms
                    .is_some_and(|fired| at_ms >= fired && at_ms - fired < cooldown.millis());
                if cooling {
                    return None;
                }
                TransitionKind::Firing
            }
            (Status::Firing, false) => TransitionKind::Resolved,
            _ => return None,
        };
        Some(Transition {
            kind,
            seq: self.transitions + 1,
        })
    }

    /// The state after an evaluation at `at_ms` (next due `interval` later), with `transition`
    /// applied and its notification `pending` if there is one.
    pub fn next(
        &self,
        at_ms: i64,
        value: Option<f64>,
        interval: Minutes,
        transition: Option<(Transition, Pending)>,
    ) -> AlertState {
        let mut next = self.clone();
        next.version = self.version + 1;
        next.next_due_ms = at_ms + interval.millis();
        next.last_evaluated_ms = Some(at_ms);
        next.last_value = value;
        if let Some((t, pending)) = transition {
            next.transitions = t.seq;
            next.status = match t.kind {
                TransitionKind::Firing => Status::Firing,
                TransitionKind::Resolved => Status::Resolved,
            };
            if t.kind == TransitionKind::Firing {
                next.last_fired_ms = Some(at_ms);
            }
            next.pending = Some(pending);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn after(
        state: &AlertState,
        holds: bool,
        at: i64,
        cooldown: Minutes,
    ) -> (AlertState, Option<Transition>) {
        let t = state.step(holds, at, cooldown);
        let pending = t.map(|t| {
            (
                t,
                Pending {
                    key: t.key("al_1"),
                    kind: t.kind,
                    body: String::new(),
                    claimed_until_ms: 0,
                },
            )
        });
        (state.next(at, None, Minutes(5), pending), t)
    }

    #[test]
    fn ok_fires_once_resolves_once_and_fires_again() {
        let s = AlertState::default();
        let (s, t) = after(&s, false, 0, Minutes(0));
        assert_eq!((s.status, t), (Status::Ok, None));
        let (s, t) = after(&s, true, HOUR, Minutes(0));
        assert_eq!(s.status, Status::Firing);
        assert_eq!(t.map(|t| t.key("al_1")), Some("al_1.1.firing".into()));
        // Still holding: no second notification.
        let (s, t) = after(&s, true, 2 * HOUR, Minutes(0));
        assert_eq!((s.status, t), (Status::Firing, None));
        let (s, t) = after(&s, false, 3 * HOUR, Minutes(0));
        assert_eq!(s.status, Status::Resolved);
        assert_eq!(t.map(|t| t.key("al_1")), Some("al_1.2.resolved".into()));
        let (s, t) = after(&s, false, 4 * HOUR, Minutes(0));
        assert_eq!((s.status, t), (Status::Resolved, None));
        let (s, t) = after(&s, true, 5 * HOUR, Minutes(0));
        assert_eq!(t.map(|t| t.key("al_1")), Some("al_1.3.firing".into()));
        assert_eq!(s.version, 6);
    }

    #[test]
    fn the_cooldown_holds_back_a_new_firing() {
        let (s, _) = after(&AlertState::default(), true, 0, Minutes(120));
        let (s, _) = after(&s, false, HOUR / 2, Minutes(120));
        assert_eq!(s.status, Status::Resolved);
        let (s, t) = after(&s, true, HOUR, Minutes(120));
        assert_eq!((s.status, t), (Status::Resolved, None));
        let (s, t) = after(&s, true, 2 * HOUR, Minutes(120));
        assert_eq!(s.status, Status::Firing);
        assert_eq!(t.map(|t| t.seq), Some(3));
    }
}
