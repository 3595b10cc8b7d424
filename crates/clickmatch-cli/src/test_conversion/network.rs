//! Playing the network: what it reads from the test click's redirect, and the values it fills
//! into its postback.

use clickmatch_core::presets::{FireValues, Preset};

use super::plan::Plan;
use crate::demo;

/// The payout a test conversion reports.
pub const TEST_PAYOUT: &str = "1.23";

/// The test click as the redirect showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClick {
    pub click_id: String,
    /// The redirect target (the offer link with the click ID in it).
    pub location: String,
    /// The query parameter of the offer link that carries the click ID.
    pub click_param: Option<String>,
    /// The value of the preset's offer-link parameter: what the network echoes back. `None`
    /// when the offer link has no such parameter (the network then sends its macro literally).
    pub network_value: Option<String>,
}

/// Reads [`TestClick`] out of a redirect `location` for `preset`.
pub fn read_redirect(preset: &Preset, location: &str) -> Option<TestClick> {
    let click_id = demo::click_id_in(location)?;
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let click_param = pairs
        .iter()
        .find(|(_, v)| *v == click_id)
        .map(|(k, _)| k.clone());
    let network_value = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(preset.offer_param))
        .map(|(_, v)| v.clone());
    Some(TestClick {
        click_id,
        location: location.to_string(),
        click_param,
        network_value,
    })
}

/// The values the network substitutes into its postback for the test conversion.
pub fn fire_values(plan: &Plan, click: &TestClick, txid: &str) -> FireValues {
    FireValues {
        click_id: click.network_value.clone(),
        payout: Some(TEST_PAYOUT.to_string()),
        offer: Some(plan.offer.clone()),
        txid: Some(txid.to_string()),
        event: Some(plan.route.default_event.clone()),
        status: Some(plan.preset.status_code("approved").to_string()),
        currency: Some(plan.route.currency.to_string()),
    }
}
