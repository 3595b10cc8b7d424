//! Compact encodings of what the state keeps per click: a click is a 17-byte key and a value of
//! a few bytes more than its campaign and offer IDs, country, device type, OS, browser and the
//! subs its conversions carry, so the state stays small on disk.

use clickmatch_core::join::{JoinClick, Seen, StoreError, StoreResult};
use clickmatch_core::records::Conversion;
use clickmatch_core::subs::{CarriedSubs, SubSet};
use clickmatch_core::ClickId;
use serde::Deserialize;

const CLICK_PREFIX: u8 = b'c';
const SEEN_PREFIX: u8 = b's';
const FLAG_TEST: u8 = 1;
const FLAG_FOREIGN: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("corrupt click value ({0} bytes)")]
    Click(usize),
    #[error("corrupt pending key ({0} bytes)")]
    Position(usize),
}

fn corrupt(error: CodecError) -> StoreError {
    crate::store_error(error)
}

/// Key of a click in its bucket: the 128-bit ID for clickmatch IDs, the text otherwise.
pub fn click_key(click_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(CLICK_PREFIX);
    match ClickId::parse(click_id) {
        Ok(id) => key.extend_from_slice(&id.as_u128().to_be_bytes()),
        Err(_) => key.extend_from_slice(click_id.as_bytes()),
    }
    key
}

pub fn seen_key(dedup_key: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(dedup_key.len() + 1);
    key.push(SEEN_PREFIX);
    key.extend_from_slice(dedup_key.as_bytes());
    key
}

/// The first 255 bytes of `text` (what a one-byte length can say).
fn short(text: &str) -> &[u8] {
    &text.as_bytes()[..text.len().min(255)]
}

/// `[flags][time_ms: 8 BE][campaign len][campaign][offer len][offer]`, then the enrichment a
/// conversion copies, `[len][country][len][device type]` then `[len][os][len][browser]`, up to
/// the last pair with one known, then the subs its conversions carry, `[carried: 2 BE]` and
/// `[len][sub]` for each carried one in order (all four enrichment fields are written before
/// them). IDs longer than 255 bytes are cut (configuration limits them to 64; a longer sub is
/// not carried). Values written before a field was kept end before it, and read it back empty;
/// a reader of a release before reads the fields it knows and ignores what follows.
pub fn encode_click(click: &JoinClick) -> Vec<u8> {
    let campaign = short(&click.campaign_id);
    let offer = short(&click.offer_id);
    let enrichment = enrichment(click);
    let subs = &click.subs;
    // In pairs, up to the last pair with a field known: a reader of the release before reads
    // the country and device type and ignores what follows.
    let known = if subs.is_empty() {
        enrichment
            .iter()
            .rposition(|field| !field.is_empty())
            .map_or(0, |last| last / 2 * 2 + 2)
    } else {
        enrichment.len()
    };
    let mut value = Vec::with_capacity(
        13 + campaign.len()
            + offer.len()
            + enrichment.iter().map(|f| 1 + f.len()).sum::<usize>()
            + subs.values.iter().map(|f| 1 + f.len()).sum::<usize>(),
    );
    let mut flags = 0;
    if click.is_test {
        flags |= FLAG_TEST;
    }
    if click.foreign {
        flags |= FLAG_FOREIGN;
    }
    value.push(flags);
    value.extend_from_slice(&click.time_ms.to_be_bytes());
    value.push(campaign.len() as u8);
    value.extend_from_slice(campaign);
    value.push(offer.len() as u8);
    value.extend_from_slice(offer);
    for field in &enrichment[..known] {
        value.push(field.len() as u8);
        value.extend_from_slice(field);
    }
    if !subs.is_empty() {
        value.extend_from_slice(&subs.carried.bits().to_be_bytes());
        for i in subs.carried.indexes() {
            // `CarriedSubs::of` leaves out what is longer than a length byte says.
            let sub = short(subs.get(i));
            value.push(sub.len() as u8);
            value.extend_from_slice(sub);
        }
    }
    value
}

/// The enrichment fields of a click value, in their order.
fn enrichment(click: &JoinClick) -> [&[u8]; 4] {
    [
        short(&click.country),
        short(&click.device_type),
        short(&click.os),
        short(&click.browser),
    ]
}

pub fn decode_click(click_id: &str, value: &[u8]) -> StoreResult<JoinClick> {
    let bad = || corrupt(CodecError::Click(value.len()));
    let (&flags, rest) = value.split_first().ok_or_else(bad)?;
    let time: [u8; 8] = rest
        .get(..8)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let mut rest = &rest[8..];
    let campaign_id = take_field(&mut rest).ok_or_else(bad)?;
    let offer_id = take_field(&mut rest).ok_or_else(bad)?;
    let mut enrichment: [String; 4] = Default::default();
    for pair in enrichment.chunks_mut(2) {
        if rest.is_empty() {
            break;
        }
        for slot in pair {
            *slot = take_field(&mut rest).ok_or_else(bad)?;
        }
    }
    let [country, device_type, os, browser] = enrichment;
    let mut subs = CarriedSubs::default();
    if !rest.is_empty() {
        let carried = rest.get(..2).ok_or_else(bad)?;
        let carried = SubSet::from_bits(u16::from_be_bytes([carried[0], carried[1]]));
        rest = &rest[2..];
        for i in carried.indexes() {
            subs.carry(i, take_field(&mut rest).ok_or_else(bad)?);
        }
    }
    Ok(JoinClick {
        click_id: click_id.to_string(),
        time_ms: u64::from_be_bytes(time),
        campaign_id,
        offer_id,
        is_test: flags & FLAG_TEST != 0,
        foreign: flags & FLAG_FOREIGN != 0,
        country,
        device_type,
        os,
        browser,
        subs,
    })
}

/// One `[len][text]` field off the front of `rest`; `None` when it is cut short.
fn take_field(rest: &mut &[u8]) -> Option<String> {
    let (&len, after) = rest.split_first()?;
    let text = after.get(..usize::from(len))?;
    *rest = &after[usize::from(len)..];
    Some(String::from_utf8_lossy(text).into_owned())
}

pub fn encode_seen(seen: &Seen) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(seen).map_err(crate::store_error)
}

/// A seen entry as layout 3 writes it, or as layout 2 did: the whole conversion, read so that
/// an upgrade keeps the state (and its duplicates) of the version before.
pub fn decode_seen(value: &[u8]) -> StoreResult<Seen> {
    #[derive(Deserialize)]
    struct Whole {
        postback_id: String,
        status: String,
        conversion: Conversion,
    }
    let compact = match serde_json::from_slice::<Seen>(value) {
        Ok(seen) => return Ok(seen),
        Err(e) => e,
    };
    match serde_json::from_slice::<Whole>(value) {
        Ok(whole) => Ok(Seen {
            postback_id: whole.postback_id,
            status: whole.status,
            ..Seen::of(&whole.conversion)
        }),
        Err(_) => Err(crate::store_error(compact)),
    }
}

pub fn position(key: &[u8]) -> StoreResult<i64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| corrupt(CodecError::Position(key.len())))?;
    Ok(i64::from_be_bytes(bytes))
}
