//! Rows waiting to be written.

use std::time::Instant;

use clickmatch_core::join::Positioned;
use clickmatch_core::records::{ClickRecord, Outcome};

use crate::partition::PartitionState;

#[derive(Default)]
pub(crate) struct Batch {
    pub clicks: Vec<ClickRecord>,
    pub outcomes: Vec<Outcome>,
    pub opened: Option<Instant>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.clicks.len() + self.outcomes.len()
    }

    pub fn touch(&mut self) {
        self.opened.get_or_insert_with(Instant::now);
    }

    /// An empty batch keeping this one's capacity: batches of tens of thousands of records
    /// would otherwise regrow (copies, fresh pages) every time.
    pub fn recycled(mut self) -> Batch {
        self.clicks.clear();
        self.outcomes.clear();
        self.opened = None;
        self
    }

    /// Adds released outcomes, except those a rebuild replays from before the group's
    /// committed offset (their rows were written by whoever processed them first).
    pub fn emit(&mut self, state: &PartitionState, outcomes: impl IntoIterator<Item = Positioned>) {
        let before = self.outcomes.len();
        self.outcomes.extend(
            outcomes
                .into_iter()
                .filter(|(p, _)| state.emits_postback(*p))
                .map(|(_, o)| o),
        );
        if self.outcomes.len() > before {
            self.touch();
        }
    }
}
