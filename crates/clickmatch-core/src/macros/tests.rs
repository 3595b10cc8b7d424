use super::*;
use crate::click_id::ClickIdSigner;
use crate::presets::{dialects, preset};
use proptest::prelude::*;
use ValueShape::{LiteralMacro, Missing, Value};

#[test]
fn dialects_of_real_networks() {
    let cases: &[(&str, ValueShape, &str)] = &[
        // TUNE / HasOffers
        ("{aff_sub}", LiteralMacro, "TUNE aff_sub"),
        ("{aff_sub2}", LiteralMacro, "TUNE aff_sub2"),
        ("{transaction_id}", LiteralMacro, "TUNE transaction_id"),
        ("{AFF_SUB}", LiteralMacro, "TUNE upper case"),
        // CAKE, MaxBounty (when URL-encoded so the fragment survives)
        ("#s2#", LiteralMacro, "CAKE s2"),
        ("#tid#", LiteralMacro, "CAKE tid"),
        ("#S2#", LiteralMacro, "MaxBounty S2"),
        ("%23s2%23", LiteralMacro, "CAKE s2 still encoded"),
        ("##s2##", LiteralMacro, "doubled hashes"),
        // Everflow
        ("{sub1}", LiteralMacro, "Everflow sub1"),
        ("{Sub5}", LiteralMacro, "Everflow wrong case"),
        ("{sub_5}", LiteralMacro, "Everflow wrong spelling"),
        (
            "{payout_amount}",
            LiteralMacro,
            "Everflow payout macro in the id slot",
        ),
        // Affise, Voluum, Binom, Keitaro, RedTrack
        ("{clickid}", LiteralMacro, "Affise/Voluum/Binom clickid"),
        ("{ClickID}", LiteralMacro, "mixed case clickid"),
        ("{subid}", LiteralMacro, "Keitaro subid"),
        ("{click_id}", LiteralMacro, "clickmatch's own token"),
        // Prosper202 and bracket families
        ("[[subid]]", LiteralMacro, "Prosper202"),
        ("[subid]", LiteralMacro, "single brackets"),
        ("[[[subid]]]", LiteralMacro, "triple brackets"),
        ("[[ subid ]]", LiteralMacro, "spaced brackets"),
        ("<click_id>", LiteralMacro, "angle brackets"),
        ("{{click_id}}", LiteralMacro, "double braces"),
        ("{{ click_id }}", LiteralMacro, "jinja spacing"),
        ("${click_id}", LiteralMacro, "shell style"),
        ("$clickid", LiteralMacro, "dollar prefix"),
        ("%clickid%", LiteralMacro, "percent delimited"),
        ("%CLICK_ID%", LiteralMacro, "percent delimited upper"),
        (
            "%aff_sub%",
            LiteralMacro,
            "percent delimited, hex-looking start",
        ),
        ("!!!clickid!!!", LiteralMacro, "bang delimited"),
        ("@clickid@", LiteralMacro, "at delimited"),
        // AdCombo and friends: URL-encoded once or twice more
        ("%7Bsubid%7D", LiteralMacro, "AdCombo encoded"),
        ("%7bsubid%7d", LiteralMacro, "AdCombo lowercase hex"),
        ("%7Bcid%7D", LiteralMacro, "encoded cid"),
        ("%257Bsub1%257D", LiteralMacro, "double encoded"),
        ("%5B%5Bsubid%5D%5D", LiteralMacro, "encoded Prosper202"),
        ("%24%7Bclick_id%7D", LiteralMacro, "encoded shell style"),
        ("%3Cclick_id%3E", LiteralMacro, "encoded angle brackets"),
        // Contained in a longer value
        ("abc{sub1}", LiteralMacro, "prefix then macro"),
        ("{sub1}-{sub2}", LiteralMacro, "two macros"),
        ("\"{click_id}\"", LiteralMacro, "quoted macro"),
        (" {click_id} ", LiteralMacro, "padded macro"),
        ("{0}", LiteralMacro, "format string"),
        // Bare template words
        ("REPLACE", LiteralMacro, "bare REPLACE"),
        ("CLICK_ID", LiteralMacro, "bare CLICK_ID"),
        ("CLICKID", LiteralMacro, "bare CLICKID"),
        ("click-id", LiteralMacro, "bare click-id"),
        ("SUBID", LiteralMacro, "bare SUBID"),
        ("aff_sub", LiteralMacro, "bare aff_sub"),
        ("sub1", LiteralMacro, "bare sub1"),
        ("'s2'", LiteralMacro, "bare quoted s2"),
        // Placeholders
        ("", Missing, "empty"),
        ("   ", Missing, "whitespace"),
        ("undefined", Missing, "javascript undefined"),
        ("NULL", Missing, "sql null"),
        ("None", Missing, "python none"),
        ("nil", Missing, "ruby nil"),
        ("(null)", Missing, "printf null"),
        ("N/A", Missing, "n/a"),
        ("-", Missing, "dash"),
        ("\"null\"", Missing, "quoted null"),
        ("''", Missing, "empty quotes"),
        ("%22undefined%22", Missing, "encoded quoted undefined"),
        ("%20", Missing, "encoded space"),
        ("%2520", Missing, "double encoded space"),
        // Values
        ("0123456789abcdefghjkmnpqrs", Value, "26 crockford chars"),
        ("0123456789ABCDEFGHJKMNPQRS", Value, "upper-case 26 chars"),
        ("12345", Value, "Prosper202 integer id"),
        ("a1b2c3d4e5f60718293a4b5c6d7e8f90", Value, "Everflow hex id"),
        ("AbCdEfGhIjKlMnOpQrStUvWxYz", Value, "Voluum mixed-case id"),
        ("%C3%A9t%C3%A9", Value, "double-encoded utf-8 is not %x%"),
        ("%C3%A9", Value, "double-encoded e-acute"),
        ("50%", Value, "lone percent"),
        ("user@example.com", Value, "single at sign"),
        ("#123#", Value, "digits between hashes"),
        ("[1]", Value, "digit in brackets"),
        ("$5", Value, "dollar amount"),
        ("{}", Value, "empty braces hold no word"),
        ("subway", Value, "a word that merely starts like sub"),
    ];
    assert!(cases.len() >= 40);
    for &(raw, expected, label) in cases {
        assert_eq!(shape(raw), expected, "{label}: {raw:?}");
    }
}

#[test]
fn find_macro_names_the_macro_its_form_and_encoding() {
    let cases: &[(&str, &str, &str, MacroForm, usize)] = &[
        ("{aff_sub}", "{aff_sub}", "aff_sub", MacroForm::Braces, 0),
        (
            "x{{ click_id }}y",
            "{{ click_id }}",
            "click_id",
            MacroForm::Braces,
            0,
        ),
        (
            "${click_id}",
            "${click_id}",
            "click_id",
            MacroForm::Braces,
            0,
        ),
        ("#s2#", "#s2#", "s2", MacroForm::Hashes, 0),
        ("##S2##", "##S2##", "S2", MacroForm::Hashes, 0),
        ("[[subid]]", "[[subid]]", "subid", MacroForm::Brackets, 0),
        (
            "!!!clickref!!!",
            "!!!clickref!!!",
            "clickref",
            MacroForm::Bangs,
            0,
        ),
        ("%clickid%", "%clickid%", "clickid", MacroForm::Percents, 0),
        ("<click_id>", "<click_id>", "click_id", MacroForm::Angles, 0),
        ("$clickid", "$clickid", "clickid", MacroForm::Dollar, 0),
        ("%7Bsubid%7D", "{subid}", "subid", MacroForm::Braces, 1),
        ("%257Bsub1%257D", "{sub1}", "sub1", MacroForm::Braces, 2),
        (" REPLACE ", "REPLACE", "REPLACE", MacroForm::BareWord, 0),
    ];
    for &(raw, text, word, form, decodes) in cases {
        let found = find_macro(raw).unwrap_or_else(|| panic!("{raw}"));
        assert_eq!(
            found,
            super::LiteralMacro {
                text: text.into(),
                word: word.into(),
                form,
                decodes
            },
            "{raw}"
        );
    }
    assert_eq!(find_macro("0123456789abcdefghjkmnpqrs"), None);
    assert_eq!(find_macro("null"), None);
}

#[test]
fn spellings_against_network_dialects() {
    let dialect = |name| preset(name).map(|p| &p.dialect);
    let everflow = dialect("Everflow").unwrap();
    let impact = dialect("impact").unwrap();
    assert_eq!(dialect("Prosper 202").unwrap().example, "[[subid]]");
    assert_eq!(dialect("HasOffers").unwrap().example, "{aff_sub}");
    assert!(dialect("nonesuch").is_none());
    assert_eq!(spelling("sub5", [everflow]), Spelling::Exact);
    assert_eq!(spelling("Sub5", [everflow]), Spelling::WrongCase);
    assert_eq!(spelling("sub_5", [everflow]), Spelling::Misspelt);
    assert_eq!(spelling("subid1", [impact]), Spelling::WrongCase);
    assert_eq!(spelling("SubId1", [impact]), Spelling::Exact);
    assert_eq!(spelling("aff_sub", dialects()), Spelling::Exact);
    assert_eq!(spelling("aff_sub3", dialects()), Spelling::Exact);
    assert_eq!(spelling("AFF_SUB", dialects()), Spelling::WrongCase);
    assert_eq!(spelling("whatever", dialects()), Spelling::Unknown);
    assert_eq!(spelling("sub", [everflow]), Spelling::Unknown);
}

#[test]
fn words_are_shorter_than_a_click_id() {
    // `shape` takes any 26-character ID-alphabet value for a value without looking.
    for word in PLACEHOLDER_WORDS.iter().chain(BARE_WORDS) {
        assert!(word.len() < crate::CLICK_ID_LEN, "{word}");
    }
}

#[test]
fn decode_layers_stop_at_the_first_fixpoint_or_invalid_utf8() {
    assert_eq!(decode_layers("abc", 2).len(), 1);
    assert_eq!(decode_layers("%257B", 2), vec!["%257B", "%7B", "{"]);
    assert_eq!(decode_layers("%25257B", 2).len(), 3);
    assert_eq!(decode_layers("%aff_sub%", 2).len(), 1);
}

#[test]
fn strips_nested_quotes_and_whitespace() {
    assert_eq!(strip_whitespace_and_quotes(" \"' x '\" "), "x");
    assert_eq!(strip_whitespace_and_quotes("\u{201C}x\u{201D}"), "x");
}

fn wrap(form: usize, word: &str) -> String {
    match form {
        0 => format!("{{{word}}}"),
        1 => format!("{{{{{word}}}}}"),
        2 => format!("${{{word}}}"),
        3 => format!("#{word}#"),
        4 => format!("##{word}##"),
        5 => format!("%{word}%"),
        6 => format!("<{word}>"),
        7 => format!("[{word}]"),
        8 => format!("[[{word}]]"),
        9 => format!("[[[{word}]]]"),
        10 => format!("!!!{word}!!!"),
        11 => format!("${word}"),
        _ => format!("@{word}@"),
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

proptest! {
    #[test]
    fn genuine_click_ids_are_values(time in 0u64..(1 << 48), random: u64, upper: bool) {
        let signer = ClickIdSigner::new(b"macros".to_vec(), vec![]);
        let mut text = signer.mint(time, random).to_string();
        if upper {
            text = text.to_ascii_uppercase();
        }
        prop_assert_eq!(shape(&text), Value);
    }

    #[test]
    fn every_dialect_in_any_case_and_encoding_is_a_macro(
        word in "[a-zA-Z_][a-zA-Z0-9_]{0,15}",
        form in 0usize..13,
        encodings in 0usize..3,
        prefix in "[a-z0-9]{0,4}",
    ) {
        // `%x%` with a hex-looking start is ambiguous by design (module docs).
        prop_assume!(!(form == 5 && word.len() >= 2
            && word.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)));
        let mut text = format!("{prefix}{}", wrap(form, &word));
        for _ in 0..encodings {
            text = encode(&text);
        }
        prop_assert_eq!(shape(&text), LiteralMacro, "{}", text);
    }

    #[test]
    fn arbitrary_input_never_panics(raw in "\\PC{0,64}") {
        let _ = shape(&raw);
    }

    #[test]
    fn find_macro_agrees_with_shape(
        raw in prop_oneof!["\\PC{0,40}", "[a-z]{0,3}[{#<\\[%!$@]{1,3}[a-zA-Z_][a-zA-Z0-9_]{0,8}[}#>\\]%!@]{0,3}"],
    ) {
        prop_assert_eq!(find_macro(&raw).is_some(), shape(&raw) == LiteralMacro, "{:?}", raw);
    }

    #[test]
    fn alphanumeric_values_longer_than_bare_words_are_values(raw in "[a-zA-Z0-9]{16,40}") {
        prop_assert_eq!(shape(&raw), Value);
    }
}
