//! The clickmatch click ID.
//!
//! 128 bits = 48-bit Unix time in ms ‖ 48 random bits ‖ 32-bit truncated HMAC-SHA256 tag over the
//! first 96 bits. Text form: 26 characters of lowercase Crockford base32 (the top two bits of the
//! 130 the text can hold are zero, so the first character is `0`–`7`).
//!
//! From the ID alone the joiner knows when the click happened (window check and state bucket
//! without a lookup) and whether the ID is genuine (typo, truncation, forgery).

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the text form.
pub const CLICK_ID_LEN: usize = 26;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Largest timestamp the 48-bit field holds (year 10889).
const MAX_TIME_MS: u64 = (1 << 48) - 1;

/// A decoded click ID whose tag has not been checked yet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClickId(u128);

/// Why a string is not a clickmatch click ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClickIdError {
    #[error("a click ID has {CLICK_ID_LEN} characters, this one has {0}")]
    Length(usize),
    #[error("character {0:?} at position {1} is not in the click ID alphabet")]
    Alphabet(char, usize),
    #[error("the value overflows 128 bits (first character above '7')")]
    Overflow,
}

impl ClickId {
    /// Parses the text form, case-insensitively (some networks upper-case sub-parameters).
    pub fn parse(text: &str) -> Result<Self, ClickIdError> {
        let bytes = text.as_bytes();
        if bytes.len() != CLICK_ID_LEN {
            return Err(ClickIdError::Length(text.chars().count()));
        }
        let mut value: u128 = 0;
        for (position, &byte) in bytes.iter().enumerate() {
            let digit = decode_digit(byte).ok_or_else(|| {
                let ch = text[position..].chars().next().unwrap_or('?');
                ClickIdError::Alphabet(ch, position)
            })?;
            if position == 0 && digit > 7 {
                return Err(ClickIdError::Overflow);
            }
            value = (value << 5) | u128::from(digit);
        }
        Ok(ClickId(value))
    }

    pub fn from_u128(value: u128) -> Self {
        ClickId(value)
    }

    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Click time in Unix milliseconds, as encoded in the ID.
    pub fn time_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }

    fn body(self) -> [u8; 12] {
        let bytes = self.0.to_be_bytes();
        let mut body = [0u8; 12];
        body.copy_from_slice(&bytes[..12]);
        body
    }

    fn tag(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Display for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; CLICK_ID_LEN];
        let mut value = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(value & 31) as usize];
            value >>= 5;
        }
        // ALPHABET is ASCII, so this cannot fail.
        f.write_str(std::str::from_utf8(&out).expect("ascii"))
    }
}

impl fmt::Debug for ClickId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClickId({self})")
    }
}

/// Digit of every byte, either case; `INVALID` outside the alphabet. A table: `parse` runs for
/// every click and postback the joiner reads.
const DIGITS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut digit = 0;
    while digit < ALPHABET.len() {
        let c = ALPHABET[digit];
        table[c as usize] = digit as u8;
        table[c.to_ascii_uppercase() as usize] = digit as u8;
        digit += 1;
    }
    table
};
const INVALID: u8 = u8::MAX;

fn decode_digit(byte: u8) -> Option<u8> {
    Some(DIGITS[byte as usize]).filter(|&d| d != INVALID)
}

/// Mints and verifies click IDs with the account's secrets.
///
/// Verification accepts the current secret and any previous ones, so a secret can be rotated
/// without orphaning the clicks still inside their attribution window.
#[derive(Clone)]
pub struct ClickIdSigner {
    current: Vec<u8>,
    previous: Vec<Vec<u8>>,
}

impl fmt::Debug for ClickIdSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach logs.
        f.debug_struct("ClickIdSigner")
            .field("previous_secrets", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl ClickIdSigner {
    pub fn new(current: impl Into<Vec<u8>>, previous: Vec<Vec<u8>>) -> Self {
        ClickIdSigner {
            current: current.into(),
            previous,
        }
    }

    /// A new ID for a click at `time_ms` with 48 bits of caller-supplied randomness.
    pub fn mint(&self, time_ms: u64, random: u64) -> ClickId {
        let time = u128::from(time_ms.min(MAX_TIME_MS));
        let random = u128::from(random & ((1 << 48) - 1));
        let unsigned = ClickId((time << 80) | (random << 32));
        let tag = tag(&self.current, &unsigned.body());
        ClickId(unsigned.0 | u128::from(tag))
    }

    /// A new ID for a click at `time_ms`, randomness from the thread RNG.
    pub fn mint_now(&self, time_ms: u64) -> ClickId {
        self.mint(time_ms, rand::random::<u64>())
    }

    /// True when the tag verifies under the current or a previous secret.
    pub fn verify(&self, id: ClickId) -> bool {
        let body = id.body();
        std::iter::once(&self.current)
            .chain(self.previous.iter())
            .any(|secret| tag(secret, &body) == id.tag())
    }
}

fn tag(secret: &[u8], body: &[u8; 12]) -> u32 {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signer() -> ClickIdSigner {
        ClickIdSigner::new(b"test-secret".to_vec(), vec![])
    }

    #[test]
    fn text_form_is_26_lowercase_crockford_chars() {
        let id = signer().mint(1_764_000_000_000, 0xdead_beef_cafe);
        let text = id.to_string();
        assert_eq!(text.len(), CLICK_ID_LEN);
        assert!(text.bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(ClickId::parse(&text), Ok(id));
        assert_eq!(ClickId::parse(&text.to_uppercase()), Ok(id));
        assert_eq!(id.time_ms(), 1_764_000_000_000);
        assert!(signer().verify(id));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let signer = signer();
        let text = signer.mint(1_764_000_000_000, 42).to_string();
        for position in 0..CLICK_ID_LEN {
            for &replacement in ALPHABET.iter() {
                if text.as_bytes()[position] == replacement {
                    continue;
                }
                let mut changed = text.clone().into_bytes();
                changed[position] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                match ClickId::parse(&changed) {
                    Ok(id) => assert!(!signer.verify(id), "{changed} verified"),
                    Err(error) => assert_eq!(error, ClickIdError::Overflow),
                }
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let text = signer().mint(1_764_000_000_000, 7).to_string();
        for len in 0..CLICK_ID_LEN {
            assert_eq!(ClickId::parse(&text[..len]), Err(ClickIdError::Length(len)));
        }
        assert!(ClickId::parse(&format!("{text}0")).is_err());
    }

    #[test]
    fn foreign_characters_name_their_position() {
        let mut text = signer().mint(1, 1).to_string();
        text.replace_range(5..6, "u");
        assert_eq!(ClickId::parse(&text), Err(ClickIdError::Alphabet('u', 5)));
        assert!(ClickId::parse("ééééééééééééé").is_err());
    }

    #[test]
    fn the_digit_table_is_the_alphabet_in_either_case() {
        for byte in 0..=u8::MAX {
            let lower = byte.to_ascii_lowercase();
            let expected = ALPHABET.iter().position(|&c| c == lower).map(|p| p as u8);
            assert_eq!(decode_digit(byte), expected, "byte {byte}");
        }
    }

    #[test]
    fn rotated_secret_still_verifies_old_ids() {
        let old = ClickIdSigner::new(b"old".to_vec(), vec![]);
        let rotated = ClickIdSigner::new(b"new".to_vec(), vec![b"old".to_vec()]);
        let id = old.mint(5, 5);
        assert!(rotated.verify(id));
        assert!(!ClickIdSigner::new(b"new".to_vec(), vec![]).verify(id));
    }

    proptest! {
        #[test]
        fn round_trip(time in 0u64..(1 << 48), random: u64) {
            let id = signer().mint(time, random);
            let parsed = ClickId::parse(&id.to_string()).unwrap();
            prop_assert_eq!(parsed, id);
            prop_assert_eq!(parsed.time_ms(), time);
            prop_assert!(signer().verify(parsed));
        }

        #[test]
        fn random_strings_never_panic_and_rarely_verify(text in "\\PC{0,40}") {
            if let Ok(id) = ClickId::parse(&text) {
                // A random 26-char string verifies with probability 2^-32.
                let _ = signer().verify(id);
            }
        }

        #[test]
        fn wrong_secret_does_not_verify(time in 0u64..(1 << 48), random: u64) {
            let id = signer().mint(time, random);
            prop_assert!(!ClickIdSigner::new(b"other".to_vec(), vec![]).verify(id));
        }
    }
}
