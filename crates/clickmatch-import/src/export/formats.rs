//! Which columns of a network's conversion export hold what: one mapping per supported network
//! (TUNE, Everflow, CAKE), clickmatch's own column names, and `--columns` for any other export.
//!
//! Header names are compared by their letters and digits only, case-insensitively
//! ([`normalize`]): `Sub ID 2`, `sub_id_2` and `SubID2` are one name, as are `Date / Time` and
//! `datetime`. Each field lists the names its column goes by, most specific first; the first
//! one the header has wins.

use std::collections::BTreeMap;
use std::fmt;

/// What a column of an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExportField {
    /// The sub-parameter our click ID went out in (TUNE `aff_sub`, Everflow `sub1`, CAKE `s2`).
    ClickId,
    /// The network's transaction ID: what our route stored as `txid`.
    Txid,
    Payout,
    Currency,
    Status,
    /// When the network recorded the conversion.
    Time,
    /// The conversion's goal or event.
    Event,
}

impl ExportField {
    pub const ALL: [ExportField; 7] = [
        ExportField::ClickId,
        ExportField::Txid,
        ExportField::Payout,
        ExportField::Currency,
        ExportField::Status,
        ExportField::Time,
        ExportField::Event,
    ];

    /// The name `--columns` and messages use.
    pub fn name(self) -> &'static str {
        match self {
            ExportField::ClickId => "click_id",
            ExportField::Txid => "txid",
            ExportField::Payout => "payout",
            ExportField::Currency => "currency",
            ExportField::Status => "status",
            ExportField::Time => "time",
            ExportField::Event => "event",
        }
    }

    pub fn parse(name: &str) -> Option<ExportField> {
        ExportField::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for ExportField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built-in mapping: the names each field's column goes by, and where they come from.
struct Mapping {
    name: &'static str,
    title: &'static str,
    columns: [(ExportField, &'static [&'static str]); 7],
    sources: &'static [&'static str],
}

// TUNE (HasOffers) conversion report, exported from Reports > Conversion Report: the column
// titles of the UI (default fields "Status", "Payout", "Transaction ID", "Date / Time",
// "Partner Sub ID 1"; "Affiliate" before TUNE renamed affiliates to partners) and the API's
// field names (`Stat.affiliate_info1` is aff_sub, `Stat.ad_id` the transaction ID).
// https://support.tune.com/hc/en-us/articles/1500005163401-Using-the-Conversion-Report
// https://developers.tune.com/affiliate-models/conversionreport
// https://developers.tune.com/network-models/conversion
const TUNE: Mapping = Mapping {
    name: "tune",
    title: "TUNE (HasOffers)",
    columns: [
        (
            ExportField::ClickId,
            &[
                "Partner Sub ID 1",
                "Affiliate Sub ID 1",
                "Sub ID 1",
                "Stat.affiliate_info1",
                "aff_sub",
            ],
        ),
        (ExportField::Txid, &["Transaction ID", "Stat.ad_id"]),
        (ExportField::Payout, &["Payout", "Stat.payout"]),
        (ExportField::Currency, &["Currency", "Stat.currency"]),
        (ExportField::Status, &["Status", "Stat.conversion_status"]),
        (ExportField::Time, &["Date / Time", "Stat.datetime"]),
        (
            ExportField::Event,
            &["Goal ID", "Stat.goal_id", "Goal", "Goal.name"],
        ),
    ],
    sources: &[
        "https://support.tune.com/hc/en-us/articles/1500005163401-Using-the-Conversion-Report",
        "https://developers.tune.com/affiliate-models/conversionreport",
        "https://developers.tune.com/network-models/conversion",
    ],
};

// Everflow conversion report and its CSV export (network and partner APIs; the UI's Conversion
// Report has the same columns titled): `sub1`, `transaction_id`, `payout` (network side; a
// partner's export calls what it earns `revenue`), `currency_id`, `status` or
// `conversion_status`, `conversion_unix_timestamp`, `event` or `event_name`.
// https://developers.everflow.io/api-reference/post-networksreportingconversionsexport
// https://developers.everflow.io/docs/affiliate/reporting/affiliate_raw_conversions
// https://developers-beta.everflow.io/api-reference/post-affiliatesreportingconversions
const EVERFLOW: Mapping = Mapping {
    name: "everflow",
    title: "Everflow",
    columns: [
        (ExportField::ClickId, &["sub1"]),
        (ExportField::Txid, &["transaction_id"]),
        (ExportField::Payout, &["payout", "revenue"]),
        (ExportField::Currency, &["currency_id", "currency"]),
        (ExportField::Status, &["status", "conversion_status"]),
        (
            ExportField::Time,
            &["conversion_unix_timestamp", "conversion_date", "date"],
        ),
        (ExportField::Event, &["event", "event_name"]),
    ],
    sources: &[
        "https://developers.everflow.io/api-reference/post-networksreportingconversionsexport",
        "https://developers.everflow.io/docs/affiliate/reporting/affiliate_raw_conversions",
        "https://developers-beta.everflow.io/api-reference/post-affiliatesreportingconversions",
    ],
};

// CAKE conversions report (Reports > Conversions, exported; the same fields as the Conversions
// API): `conversion_date` (MM/DD/YYYY HH:mm:ss in the API), `subid_2` (s2, where our click ID
// goes), `price` (what the affiliate is paid), `disposition`, `lead_id` (#leadid#, what the
// CAKE preset stores as txid; CAKE's `transaction_id` is its click's ID, not this one).
// https://support.getcake.com/support/solutions/articles/5000545787-reports-conversions-api-version-11-deprecated-
// https://support.getcake.com/support/solutions/articles/13000118753-how-to-pull-conversion-and-sub-id-reports-via-the-cake-api
const CAKE: Mapping = Mapping {
    name: "cake",
    title: "CAKE",
    columns: [
        (ExportField::ClickId, &["Sub ID 2", "s2"]),
        (ExportField::Txid, &["Lead ID"]),
        (ExportField::Payout, &["Price", "Payout", "Paid"]),
        (ExportField::Currency, &["Currency", "currency_code"]),
        (ExportField::Status, &["Disposition", "Status", "conversion_status"]),
        (ExportField::Time, &["Conversion Date", "Date"]),
        (ExportField::Event, &["Event", "event_name"]),
    ],
    sources: &[
        "https://support.getcake.com/support/solutions/articles/5000545787-reports-conversions-api-version-11-deprecated-",
        "https://support.getcake.com/support/solutions/articles/13000118753-how-to-pull-conversion-and-sub-id-reports-via-the-cake-api",
    ],
};

/// clickmatch's own column names: an export without `--network`, or one made by hand.
const CLICKMATCH: Mapping = Mapping {
    name: "clickmatch",
    title: "clickmatch columns",
    columns: [
        (ExportField::ClickId, &["click_id"]),
        (ExportField::Txid, &["txid"]),
        (ExportField::Payout, &["payout"]),
        (ExportField::Currency, &["currency"]),
        (ExportField::Status, &["status"]),
        (ExportField::Time, &["time"]),
        (ExportField::Event, &["event"]),
    ],
    sources: &[],
};

const NETWORKS: [&Mapping; 3] = [&TUNE, &EVERFLOW, &CAKE];

/// How to read one export: for each field, the names its column goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFormat {
    /// `tune`, `everflow`, `cake` or `clickmatch`.
    pub name: &'static str,
    pub title: &'static str,
    columns: BTreeMap<ExportField, Vec<String>>,
    /// Fields `--columns` named: their column must be in the header.
    explicit: Vec<ExportField>,
    /// The documentation the mapping follows.
    pub sources: &'static [&'static str],
}

/// A `--columns` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error(
        "no export mapping for network {given:?} (built in: tune, everflow, cake; give \
         --columns for another export)"
    )]
    UnknownNetwork { given: String },
    #[error(
        "--columns {part:?}: expected FIELD=COLUMN, FIELD one of click_id, txid, payout, \
         currency, status, time, event"
    )]
    BadColumns { part: String },
}

impl ExportFormat {
    /// The mapping of a network preset by any of its names (`tune`, `hasoffers`, `getcake`).
    pub fn for_network(name: &str) -> Result<ExportFormat, FormatError> {
        let unknown = || FormatError::UnknownNetwork {
            given: name.to_string(),
        };
        let preset = clickmatch_core::presets::preset(name).ok_or_else(unknown)?;
        let mapping = NETWORKS
            .into_iter()
            .find(|m| m.name == preset.name)
            .ok_or_else(unknown)?;
        Ok(ExportFormat::of(mapping))
    }

    /// clickmatch's own column names (`click_id`, `txid`, `payout`, `currency`, `status`,
    /// `time`, `event`).
    pub fn clickmatch() -> ExportFormat {
        ExportFormat::of(&CLICKMATCH)
    }

    /// The networks with a built-in mapping.
    pub fn networks() -> impl Iterator<Item = ExportFormat> {
        NETWORKS.into_iter().map(ExportFormat::of)
    }

    fn of(mapping: &Mapping) -> ExportFormat {
        ExportFormat {
            name: mapping.name,
            title: mapping.title,
            columns: mapping
                .columns
                .iter()
                .map(|(field, names)| (*field, names.iter().map(|n| n.to_string()).collect()))
                .collect(),
            explicit: Vec::new(),
            sources: mapping.sources,
        }
    }

    /// The mapping with the columns of `spec` (`click_id=aff_sub,txid=Order`) in place of its
    /// own for those fields. A named column must then be in the export's header.
    pub fn with_columns(mut self, spec: &str) -> Result<ExportFormat, FormatError> {
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let bad = || FormatError::BadColumns {
                part: part.to_string(),
            };
            let (field, column) = part.split_once('=').ok_or_else(bad)?;
            let field = ExportField::parse(field).ok_or_else(bad)?;
            let column = column.trim();
            if normalize(column).is_empty() {
                return Err(bad());
            }
            self.columns.insert(field, vec![column.to_string()]);
            if !self.explicit.contains(&field) {
                self.explicit.push(field);
            }
        }
        Ok(self)
    }

    /// The names `field`'s column goes by, most specific first.
    pub fn names(&self, field: ExportField) -> &[String] {
        self.columns.get(&field).map_or(&[], Vec::as_slice)
    }

    /// Whether `--columns` named `field`.
    pub fn is_explicit(&self, field: ExportField) -> bool {
        self.explicit.contains(&field)
    }
}

/// A header name reduced to its lowercase letters and digits: how names are compared.
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A network's status word as one of ours (`approved`, `pending`, `hold`, `declined`,
/// `reversed`); other words lower-cased, as route status maps pass unmapped values through.
/// Both sides of a comparison go through it, so `Rejected` there and `rejected` stored by a
/// route without a status map agree with `declined`.
pub fn canonical_status(word: &str) -> String {
    let lower = word.trim().to_lowercase();
    let key: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
    let ours = match key.as_str() {
        // TUNE, Everflow and CAKE all say approved / pending / rejected; Everflow's UI shows
        // "On Hold", CAKE also has "ignored".
        "approved" | "approve" | "accepted" | "confirmed" | "valid" | "paid" => "approved",
        "pending" | "new" | "open" | "processing" => "pending",
        "hold" | "onhold" | "held" => "hold",
        "declined" | "rejected" | "denied" | "invalid" | "ignored" | "cancelled" | "canceled" => {
            "declined"
        }
        "reversed" | "reversal" | "chargeback" | "chargedback" | "refunded" | "refund"
        | "returned" | "clawback" => "reversed",
        _ => return lower,
    };
    ours.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_by_any_name() {
        assert_eq!(ExportFormat::for_network("hasoffers").unwrap().name, "tune");
        assert_eq!(ExportFormat::for_network("getcake").unwrap().name, "cake");
        assert_eq!(
            ExportFormat::for_network("Everflow").unwrap().name,
            "everflow"
        );
        // A preset without an export mapping, and no preset at all.
        assert!(matches!(
            ExportFormat::for_network("voluum"),
            Err(FormatError::UnknownNetwork { .. })
        ));
        assert!(ExportFormat::for_network("nope").is_err());
    }

    #[test]
    fn click_id_column_is_the_presets_sub_parameter() {
        // The column holding what went out in the preset's offer parameter.
        for format in ExportFormat::networks() {
            let preset = clickmatch_core::presets::preset(format.name).unwrap();
            let names: Vec<String> = format
                .names(ExportField::ClickId)
                .iter()
                .map(|n| normalize(n))
                .collect();
            assert!(
                names.contains(&normalize(preset.offer_param)),
                "{}: {names:?} vs {}",
                format.name,
                preset.offer_param
            );
        }
    }

    #[test]
    fn columns_override_and_refuse_nonsense() {
        let format = ExportFormat::for_network("tune")
            .unwrap()
            .with_columns("click_id=aff_sub2, payout = Revenue ")
            .unwrap();
        assert_eq!(format.names(ExportField::ClickId), ["aff_sub2"]);
        assert_eq!(format.names(ExportField::Payout), ["Revenue"]);
        assert!(format.is_explicit(ExportField::Payout));
        assert!(!format.is_explicit(ExportField::Txid));
        assert_eq!(format.names(ExportField::Txid)[0], "Transaction ID");
        for bad in ["click_id", "clickid=x", "payout=", "payout= / "] {
            assert!(
                ExportFormat::clickmatch().with_columns(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_map_to_ours() {
        for (word, ours) in [
            ("Approved", "approved"),
            ("On Hold", "hold"),
            ("Rejected", "declined"),
            ("ignored", "declined"),
            ("Charged back", "reversed"),
            ("pending", "pending"),
            ("Custom Thing", "custom thing"),
        ] {
            assert_eq!(canonical_status(word), ours, "{word}");
        }
    }

    #[test]
    fn names_compare_by_letters_and_digits() {
        assert_eq!(normalize("Date / Time"), "datetime");
        assert_eq!(normalize("Sub ID 2"), normalize("sub_id_2"));
        assert_eq!(normalize("Stat.affiliate_info1"), "stataffiliateinfo1");
    }
}
