//! Kafka offset commits and their real outcomes.
//!
//! What ClickHouse acknowledged is committed without the loop waiting (it never waits on a
//! broker that may be down). A queued commit is not a committed one: the broker's answer
//! arrives as an event, is counted as `ok` or `error`, and a rejected commit is sent again at the next
//! tick. One commit is awaited at a time; one whose answer never comes is sent again after
//! [`ANSWER_TIMEOUT`].

use std::time::{Duration, Instant};

use clickmatch_kafka::offsets::CommitPositions;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Commits {
    /// The positions of the last batch ClickHouse acknowledged: what Kafka should hold.
    wanted: CommitPositions,
    /// Sent, waiting for the broker's answer.
    awaiting: Option<(CommitPositions, Instant)>,
    /// What the broker confirmed last.
    confirmed: CommitPositions,
}

/// What an answer was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// To the commit this joiner was waiting for.
    Awaited,
    /// To another commit (a synchronous one, or one given up on).
    Other,
}

impl Commits {
    pub fn want(&mut self, positions: CommitPositions) {
        self.wanted = positions;
    }

    /// The positions to send now: new ones wanted and no answer awaited (or one overdue).
    pub fn due(&self) -> Option<&CommitPositions> {
        if self.wanted.is_empty() || self.wanted == self.confirmed {
            return None;
        }
        match &self.awaiting {
            Some((_, sent)) if sent.elapsed() < ANSWER_TIMEOUT => None,
            _ => Some(&self.wanted),
        }
    }

    pub fn sent(&mut self) {
        self.awaiting = Some((self.wanted.clone(), Instant::now()));
    }

    /// Records the broker's answer for `positions`.
    pub fn answered(&mut self, positions: &CommitPositions, ok: bool) -> Answer {
        if ok {
            self.confirmed = positions.clone();
        }
        match &self.awaiting {
            Some((awaited, _)) if awaited == positions => {
                self.awaiting = None;
                Answer::Awaited
            }
            _ => Answer::Other,
        }
    }

    /// Everything for a partition that left this member.
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.wanted.remove_partition(topic, partition);
        self.confirmed.remove_partition(topic, partition);
        if let Some((awaited, _)) = &mut self.awaiting {
            awaited.remove_partition(topic, partition);
        }
    }

    /// The positions of `partitions` wanted now (to commit before they are given up).
    pub fn wanted_of(&self, partitions: &[(&str, i32)]) -> CommitPositions {
        let mut positions = CommitPositions::default();
        for &(topic, partition) in partitions {
            if let Some(next) = self.wanted.get(topic, partition) {
                positions.set(topic, partition, next);
            }
        }
        positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(next: i64) -> CommitPositions {
        let mut positions = CommitPositions::default();
        positions.set("clicks", 0, next);
        positions
    }

    #[test]
    fn a_commit_is_sent_once_and_again_only_after_a_rejection() {
        let mut commits = Commits::default();
        assert_eq!(commits.due(), None, "nothing wanted yet");
        commits.want(at(5));
        assert_eq!(commits.due(), Some(&at(5)));
        commits.sent();
        assert_eq!(commits.due(), None, "awaiting the answer");
        assert_eq!(commits.answered(&at(5), false), Answer::Awaited);
        assert_eq!(commits.due(), Some(&at(5)), "rejected: sent again");
        commits.sent();
        assert_eq!(commits.answered(&at(5), true), Answer::Awaited);
        assert_eq!(commits.due(), None, "confirmed");
        commits.want(at(9));
        assert_eq!(commits.due(), Some(&at(9)));
    }

    #[test]
    fn answers_to_other_commits_do_not_end_the_wait() {
        let mut commits = Commits::default();
        commits.want(at(5));
        commits.sent();
        commits.want(at(7));
        assert_eq!(commits.answered(&at(3), true), Answer::Other);
        assert_eq!(commits.due(), None, "still awaiting 5");
        assert_eq!(commits.answered(&at(5), true), Answer::Awaited);
        assert_eq!(commits.due(), Some(&at(7)));
    }

    #[test]
    fn a_partition_that_left_is_forgotten() {
        let mut commits = Commits::default();
        commits.want(at(5));
        assert_eq!(commits.wanted_of(&[("clicks", 0)]), at(5));
        commits.forget("clicks", 0);
        assert_eq!(commits.due(), None);
        assert!(commits.wanted_of(&[("clicks", 0)]).is_empty());
    }
}
