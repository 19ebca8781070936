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
    /// Of the imported rows, those with the admin role.
    pub admins: usize,
    pub already_present: usize,
    pub rejected: Vec<Rejection>,
}

impl Report {
    pub fn audit_detail(&self, source_kind: &str) -> serde_json::Value {
        serde_json::json!({
            "source": source_kind,
            "rows_read": self.rows_read,
            "schemes": self.schemes,
            "imported": self.imported,
            "admins": self.admins,
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
        if self.admins > 0 {
            write!(f, " ({} with the admin role)", self.admins)?;
        }
        writeln!(f)?;
        writeln!(f, "already present: {}", self.already_present)?;
        writeln!(f, "rejected: {}", self.rejected.len())?;
        for rejection in &self.rejected {
            let who = rejection
                .who
                .as_deref()
                .map(|who| format!(" ({who})"))
                .unwrap_or_default();
            writeln!(
                f,
                "  row {}{who}: {}",
                rejection.row,
                rejection.reasons.join("; ")
            )?;
        }
        Ok(())
    }
}
