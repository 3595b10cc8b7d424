//! The click's subs a conversion row carries, so that reports group conversions by them
//! without joining every click of the range. Which ones is configured (`[joiner]
//! conversion_subs`): each is kept in the joiner's state for every click.

use serde::{Deserialize, Serialize};

use crate::records::SUB_COUNT;

/// The longest sub the state carries: what its one-byte length can say. A longer one is left
/// out (and its bit unset), never cut: a report must not group a cut value as the click's.
pub const MAX_CARRIED_SUB: usize = 255;

/// A set of subs, bit `i` for `sub{i + 1}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubSet(u16);

impl SubSet {
    pub const NONE: SubSet = SubSet(0);
    /// Every bit a sub can have.
    const ALL: u16 = (1 << SUB_COUNT) - 1;

    /// `sub{n}`, for `n` in 1..=10.
    pub fn one(n: u8) -> Option<SubSet> {
        (1..=SUB_COUNT as u8)
            .contains(&n)
            .then(|| SubSet(1 << (n - 1)))
    }

    /// The set from its bits; bits past `sub10` are dropped.
    pub fn from_bits(bits: u16) -> SubSet {
        SubSet(bits & Self::ALL)
    }

    /// `["sub1", "sub3"]`; the name it does not know is the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<SubSet, String> {
        let mut set = SubSet::NONE;
        for name in names {
            let n = name
                .strip_prefix("sub")
                .filter(|n| !n.starts_with('0'))
                .and_then(|n| n.parse::<u8>().ok())
                .and_then(SubSet::one)
                .ok_or_else(|| name.to_string())?;
            set = set.union(n);
        }
        Ok(set)
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn union(self, other: SubSet) -> SubSet {
        SubSet(self.0 | other.0)
    }

    pub fn contains(self, other: SubSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Indexes (0 for `sub1`) of the subs in the set, in order.
    pub fn indexes(self) -> impl Iterator<Item = usize> {
        (0..SUB_COUNT).filter(move |i| self.0 & (1 << i) != 0)
    }
}

/// The subs a conversion took from its click: `carried` says which (a bit set with the value
/// empty means the click had none); the others are empty and read from the click by a report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedSubs {
    pub carried: SubSet,
    /// The carried values by index (`values[0]` is `sub1`), without trailing unset ones.
    pub values: Vec<String>,
}

impl CarriedSubs {
    /// What of a click's `subs` a conversion carries under `wanted`: a sub longer than
    /// [`MAX_CARRIED_SUB`] is left out.
    pub fn of(subs: &[String], wanted: SubSet) -> CarriedSubs {
        let mut out = CarriedSubs::default();
        for i in wanted.indexes() {
            let value = subs.get(i).map_or("", String::as_str);
            if value.len() <= MAX_CARRIED_SUB {
                out.carry(i, value.to_owned());
            }
        }
        out
    }

    /// Carries `sub{index + 1}` with `value` (empty: the click had none). `index` is below
    /// [`SUB_COUNT`].
    pub fn carry(&mut self, index: usize, value: String) {
        self.carried = self.carried.union(SubSet(1 << index));
        if !value.is_empty() {
            if self.values.len() <= index {
                self.values.resize(index + 1, String::new());
            }
            self.values[index] = value;
        }
    }

    /// `sub{index + 1}`'s value: empty when not carried or empty.
    pub fn get(&self, index: usize) -> &str {
        self.values.get(index).map_or("", String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.carried.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_parse_to_bits_and_unknown_ones_are_named() {
        assert_eq!(SubSet::parse(["sub1", "sub3"]).unwrap().bits(), 0b101);
        assert_eq!(SubSet::parse(["sub10"]).unwrap().bits(), 1 << 9);
        assert_eq!(SubSet::parse([]).unwrap(), SubSet::NONE);
        for bad in ["sub0", "sub11", "sub01", "Sub1", "sub", "country", "sub1 "] {
            assert_eq!(SubSet::parse(["sub2", bad]), Err(bad.to_string()), "{bad}");
        }
        assert_eq!(SubSet::from_bits(u16::MAX).bits(), 0x3ff);
    }

    #[test]
    fn a_conversion_carries_the_wanted_subs_empty_ones_included() {
        let wanted = SubSet::parse(["sub1", "sub2", "sub4"]).unwrap();
        let carried = CarriedSubs::of(&subs(&["pub-1", "", "mobile", "cr-9"]), wanted);
        assert_eq!(carried.carried, wanted);
        assert_eq!(carried.values, subs(&["pub-1", "", "", "cr-9"]));
        assert_eq!(carried.get(2), "", "sub3 is not wanted");
        assert_eq!(carried.get(9), "");
        // A click with fewer subs than wanted carries them as empty.
        let short = CarriedSubs::of(&subs(&["pub-1"]), wanted);
        assert_eq!(short.carried, wanted);
        assert_eq!(short.values, subs(&["pub-1"]));
        assert!(CarriedSubs::of(&subs(&["x"]), SubSet::NONE).is_empty());
    }

    #[test]
    fn a_sub_too_long_for_the_state_is_left_out_not_cut() {
        let long = "x".repeat(MAX_CARRIED_SUB + 1);
        let fits = "y".repeat(MAX_CARRIED_SUB);
        let wanted = SubSet::parse(["sub1", "sub2"]).unwrap();
        let carried = CarriedSubs::of(&[long, fits.clone()], wanted);
        assert_eq!(carried.carried, SubSet::one(2).unwrap());
        assert_eq!(carried.get(0), "");
        assert_eq!(carried.get(1), fits);
    }
}
