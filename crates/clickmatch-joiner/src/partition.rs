//! One partition's join and its bookkeeping: read positions, what to emit during a rebuild, and
//! whether its restore has finished.

use clickmatch_core::join::PartitionJoin;
use clickmatch_store::{Checkpoint, PartitionStore, LAYOUT_VERSION};

/// How a partition's state came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// From a local checkpoint: consistent at once.
    Checkpoint,
    /// From the topics' beginning; postbacks wait (paused) until the clicks partition reached
    /// `clicks_target`, so that no outcome is decided on half a state.
    Rebuilding {
        clicks_target: i64,
    },
    Done,
}

pub struct PartitionState {
    pub join: PartitionJoin<PartitionStore>,
    /// Rows of records before these offsets were written before this assignment.
    pub clicks_emit_from: i64,
    pub postbacks_emit_from: i64,
    /// Next offset to read on each topic.
    pub clicks_next: i64,
    pub postbacks_next: i64,
    pub clicks_caught_up: bool,
    pub restore: Restore,
    /// Both topics' assignments seen (they arrive as two events).
    pub topics_assigned: u8,
}

impl PartitionState {
    /// State resumed from `checkpoint`.
    pub fn from_checkpoint(join: PartitionJoin<PartitionStore>, checkpoint: &Checkpoint) -> Self {
        PartitionState {
            join,
            clicks_emit_from: 0,
            postbacks_emit_from: 0,
            clicks_next: checkpoint.clicks_next,
            postbacks_next: checkpoint.postbacks_next,
            clicks_caught_up: false,
            restore: Restore::Checkpoint,
            topics_assigned: 0,
        }
    }

    /// Empty state to be rebuilt from the topics' beginning.
    pub fn rebuilding(join: PartitionJoin<PartitionStore>) -> Self {
        PartitionState {
            join,
            clicks_emit_from: 0,
            postbacks_emit_from: 0,
            clicks_next: 0,
            postbacks_next: 0,
            clicks_caught_up: false,
            restore: Restore::Rebuilding { clicks_target: 0 },
            topics_assigned: 0,
        }
    }

    /// Records the group's committed offset of one topic (rebuilds emit from there).
    pub fn set_committed(&mut self, is_clicks: bool, committed: Option<i64>) {
        if !matches!(self.restore, Restore::Rebuilding { .. }) {
            return;
        }
        let committed = committed.unwrap_or(0).max(0);
        if is_clicks {
            self.clicks_emit_from = committed;
            self.restore = Restore::Rebuilding {
                clicks_target: committed,
            };
        } else {
            self.postbacks_emit_from = committed;
        }
    }

    /// True once the clicks partition has been read up to where the rebuild must reach.
    pub fn restore_reached(&self) -> bool {
        match self.restore {
            Restore::Rebuilding { clicks_target } => self.clicks_next >= clicks_target,
            _ => true,
        }
    }

    /// Restore progress in [0, 1].
    pub fn restore_progress(&self) -> f64 {
        match self.restore {
            Restore::Rebuilding { clicks_target } if clicks_target > 0 => {
                (self.clicks_next as f64 / clicks_target as f64).min(1.0)
            }
            _ => 1.0,
        }
    }

    pub fn emits_click(&self, offset: i64) -> bool {
        offset >= self.clicks_emit_from
    }

    pub fn emits_postback(&self, position: i64) -> bool {
        position >= self.postbacks_emit_from
    }

    /// The checkpoint of the state as it is now.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: LAYOUT_VERSION,
            clicks_next: self.clicks_next,
            postbacks_next: self.postbacks_next,
            watermark_ms: self.join.watermark_ms(),
        }
    }

    /// Offsets safe to commit to Kafka for another member that would rebuild this partition:
    /// postbacks stop at the oldest one still pending (its wait lives only in this member's
    /// state), and nothing goes below what a rebuild has not re-emitted yet.
    pub fn kafka_positions(&self) -> (i64, i64) {
        let clicks = self.clicks_next.max(self.clicks_emit_from);
        let postbacks = self
            .join
            .oldest_pending_position()
            .map_or(self.postbacks_next, |p| p.min(self.postbacks_next))
            .max(self.postbacks_emit_from);
        (clicks, postbacks)
    }
}
