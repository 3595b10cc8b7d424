//! Commit positions. Kafka commits the *next* offset to read; `store_offset` adds one for you but
//! `commit` with a list does not. Everything here speaks "next offset" so no caller has to
//! remember which is which.

use std::collections::BTreeMap;

use rdkafka::{Offset, TopicPartitionList};

/// Next offsets to commit, per topic and partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitPositions {
    next: BTreeMap<(String, i32), i64>,
}

impl CommitPositions {
    /// Records that everything before `next_offset` on `topic`/`partition` is done. Positions
    /// only move forward.
    pub fn advance(&mut self, topic: &str, partition: i32, next_offset: i64) {
        let entry = self
            .next
            .entry((topic.to_string(), partition))
            .or_insert(next_offset);
        *entry = (*entry).max(next_offset);
    }

    /// Sets the position even backwards (a pending record holds it back).
    pub fn set(&mut self, topic: &str, partition: i32, next_offset: i64) {
        self.next
            .insert((topic.to_string(), partition), next_offset);
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.next.get(&(topic.to_string(), partition)).copied()
    }

    pub fn remove_partition(&mut self, topic: &str, partition: i32) {
        self.next.remove(&(topic.to_string(), partition));
    }

    pub fn is_empty(&self) -> bool {
        self.next.is_empty()
    }

    /// The list to pass to `Consumer::commit`.
    pub fn to_list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &self.next {
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))
                .expect("offsets are valid");
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_carries_next_offsets_and_positions_only_advance() {
        let mut positions = CommitPositions::default();
        positions.advance("a", 0, 10);
        positions.advance("a", 0, 5);
        positions.advance("b", 1, 3);
        assert_eq!(positions.get("a", 0), Some(10));
        let list = positions.to_list();
        assert_eq!(
            list.find_partition("a", 0).unwrap().offset(),
            Offset::Offset(10)
        );
        assert_eq!(
            list.find_partition("b", 1).unwrap().offset(),
            Offset::Offset(3)
        );
        positions.set("a", 0, 4);
        assert_eq!(positions.get("a", 0), Some(4));
    }
}
