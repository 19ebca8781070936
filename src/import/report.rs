//! What an import did, or would do: printed the same for a dry run and a
//! real one, and summed up in the `users_imported` audit event.

use std::collections::BTreeMap;
use std::fmt;

/// A row that was not imported, and why. Names the row by its number in
/// the source and by its username or email; never by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub row: usize,
    pub who: Option<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub source: String,
    pub dry_run: bool,
    pub rows_read: usize,
    /// Rows per hash scheme, over the rows whose hash gatehouse verifies.
    pub schemes: BTreeMap<&'static str, usize>,
    pub imported: usize,
    /// The imported rows with the admin role: their numbers and names.
    pub admins: Vec<(usize, Option<String>)>,
    pub already_present: usize,
    pub rejected: Vec<Rejection>,
}

impl Report {
    /// The `users_imported` event's detail: counts only, never a name or
    /// the source's URL. `completed` is false for a run that stopped part
    /// way.
    pub fn audit_detail(&self, source_kind: &str, completed: bool) -> serde_json::Value {
        serde_json::json!({
            "source": source_kind,
            "completed": completed,
            "rows_read": self.rows_read,
            "schemes": self.schemes,
            "imported": self.imported,
            "admins": self.admins.len(),
            "already_present": self.already_present,
            "rejected": self.rejected.len(),
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let imported = if self.dry_run {
            "would be imported"
        } else {
            "imported"
        };
        if self.dry_run {
            writeln!(f, "dry run: nothing is written")?;
        }
        writeln!(f, "source: {}", self.source)?;
        writeln!(f, "rows read: {}", self.rows_read)?;
        let schemes = self
            .schemes
            .iter()
            .map(|(scheme, rows)| format!("{scheme} {rows}"))
            .collect::<Vec<_>>();
        if !schemes.is_empty() {
            writeln!(f, "hash schemes: {}", schemes.join(", "))?;
        }
        write!(f, "{imported}: {}", self.imported)?;
        if !self.admins.is_empty() {
            write!(f, " ({} with the admin role)", self.admins.len())?;
        }
        writeln!(f)?;
        // Admins are named: an older backend may have let anyone pick a role.
        for (row, who) in &self.admins {
            writeln!(f, "  admin: row {row}{}", named(who.as_deref()))?;
        }
        writeln!(f, "already present: {}", self.already_present)?;
        writeln!(f, "rejected: {}", self.rejected.len())?;
        for rejection in &self.rejected {
            writeln!(
                f,
                "  row {}{}: {}",
                rejection.row,
                named(rejection.who.as_deref()),
                printable(&rejection.reasons.join("; "))
            )?;
        }
        Ok(())
    }
}

/// ` (name)` for a row's username or email, made printable and cut short.
fn named(who: Option<&str>) -> String {
    const LONGEST: usize = 80;
    who.map(|who| {
        let mut shown: String = who.chars().take(LONGEST).collect();
        if who.chars().count() > LONGEST {
            shown.push('…');
        }
        format!(" ({})", printable(&shown))
    })
    .unwrap_or_default()
}

/// `text` with every character that could drive or disguise a terminal
/// (control, invisible and bidirectional ones) written as an escape: the
/// names and column names come from tables anyone could register into.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || crate::domain::is_invisible_formatting(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_and_lists_rejections_without_hidden_characters() {
        let report = Report {
            source: "CSV file users.csv".into(),
            dry_run: true,
            rows_read: 3,
            schemes: [("bcrypt", 2)].into_iter().collect(),
            imported: 1,
            admins: vec![(1, Some("root".into()))],
            already_present: 1,
            rejected: vec![Rejection {
                row: 3,
                who: Some("eve\u{1b}[2J\u{202E}".into()),
                reasons: vec!["first".into(), "second".into()],
            }],
        };
        assert_eq!(
            report.to_string(),
            "dry run: nothing is written\n\
             source: CSV file users.csv\n\
             rows read: 3\n\
             hash schemes: bcrypt 2\n\
             would be imported: 1 (1 with the admin role)\n  \
             admin: row 1 (root)\n\
             already present: 1\n\
             rejected: 1\n  \
             row 3 (eve\\u{1b}[2J\\u{202e}): first; second\n"
        );
    }
}
