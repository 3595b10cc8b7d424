//! SQL text with `?` placeholders and the values bound to them, built piece by piece: names and
//! expressions of ours go into the text, every other value is bound, and the `clickhouse` crate
//! sends it as an escaped literal (18.16 has no server-side query parameters).

/// A bound value, in the order of the `?` in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Str(String),
    Strs(Vec<String>),
    Seconds(u32),
}

/// SQL text with `?` placeholders and their values.
#[derive(Debug, Default)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub(crate) fn bind(&mut self, arg: Arg) {
        self.text.push('?');
        self.args.push(arg);
    }

    /// `column >= from AND column < to`, in Unix seconds.
    pub(crate) fn between(&mut self, column: &str, from: u32, to: u32) {
        self.push(&format!("{column} >= toDateTime("));
        self.bind(Arg::Seconds(from));
        self.push(&format!(") AND {column} < toDateTime("));
        self.bind(Arg::Seconds(to));
        self.push(")");
    }

    pub(crate) fn bound(&self, client: &clickhouse::Client) -> clickhouse::query::Query {
        let mut query = client.query(&self.text);
        for arg in &self.args {
            query = match arg {
                Arg::Str(s) => query.bind(s.as_str()),
                Arg::Strs(v) => query.bind(v.as_slice()),
                Arg::Seconds(s) => query.bind(*s),
            };
        }
        query
    }
}
