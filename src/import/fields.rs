//! Which source column each account field is read from: the column of the
//! field's own name unless `--map FIELD=COLUMN` says otherwise.

/// One value of a source row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL, a missing JSON key, an empty CSV cell, or a column no
    /// field is read from.
    Missing,
    Text(String),
    /// A value that is not text (invalid UTF-8, a JSON array or object):
    /// the row is rejected with this reason, the rest of the source is not.
    Unreadable(String),
}

/// An account field an import can fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Username,
    Email,
    PasswordHash,
    FirstName,
    LastName,
    Name,
    Role,
    CreatedAt,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Username,
        Field::Email,
        Field::PasswordHash,
        Field::FirstName,
        Field::LastName,
        Field::Name,
        Field::Role,
        Field::CreatedAt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::Email => "email",
            Field::PasswordHash => "password_hash",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Name => "name",
            Field::Role => "role",
            Field::CreatedAt => "created_at",
        }
    }

    /// The columns tried, in order, when `--map` names none.
    fn default_columns(self) -> &'static [&'static str] {
        match self {
            // The names the older backends gave it.
            Field::PasswordHash => &["password_hash", "hashed_password", "password"],
            Field::Username => &["username"],
            Field::Email => &["email"],
            Field::FirstName => &["first_name"],
            Field::LastName => &["last_name"],
            Field::Name => &["name"],
            Field::Role => &["role"],
            Field::CreatedAt => &["created_at"],
        }
    }
}

/// One `--map FIELD=COLUMN`; an empty COLUMN reads the field from no column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnChoice {
    pub field: Field,
    pub column: Option<String>,
}

impl std::str::FromStr for ColumnChoice {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let fields = || {
            Field::ALL
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (field, column) = raw
            .split_once('=')
            .ok_or_else(|| format!("expected FIELD=COLUMN, where FIELD is one of {}", fields()))?;
        let field = Field::ALL
            .into_iter()
            .find(|f| f.as_str() == field)
            .ok_or_else(|| format!("unknown field {field:?}: FIELD is one of {}", fields()))?;
        Ok(Self {
            field,
            column: (!column.is_empty()).then(|| column.to_owned()),
        })
    }
}

/// For each field, the index of the column it is read from, if any.
#[derive(Debug)]
pub struct Mapping {
    columns: [Option<usize>; Field::ALL.len()],
}

impl Mapping {
    /// Settles the fields' columns among `names`, refusing a `--map` to a
    /// column the source lacks, a source without a password hash column or
    /// with neither a username nor an email column, and a hash column that
    /// another field would read too (the hashes would end up in names, or in
    /// the report's reasons).
    pub fn resolve(names: &[String], choices: &[ColumnChoice]) -> Result<Self, String> {
        // Column names ignore case; two that differ only in case (or a name
        // given twice) leave it unknown which one is meant.
        let find = |name: &str| -> Result<Option<usize>, String> {
            let mut matching = names
                .iter()
                .enumerate()
                .filter(|(_, c)| c.eq_ignore_ascii_case(name));
            match (matching.next(), matching.next()) {
                (Some((i, _)), None) => Ok(Some(i)),
                (None, _) => Ok(None),
                (Some((_, first)), Some((_, second))) => Err(format!(
                    "the source has two columns for {name} ({first} and {second}); \
                     name one with --map"
                )),
            }
        };
        let mut columns = [None; Field::ALL.len()];
        for (slot, field) in columns.iter_mut().zip(Field::ALL) {
            // The last --map for a field wins, as with most command lines.
            *slot = match choices.iter().rev().find(|c| c.field == field) {
                Some(ColumnChoice { column: None, .. }) => None,
                Some(ColumnChoice {
                    column: Some(name), ..
                }) => Some(find(name)?.ok_or_else(|| {
                    format!(
                        "--map {}={name}: the source has no column {name} (its columns: {})",
                        field.as_str(),
                        names.join(", ")
                    )
                })?),
                None => {
                    let mut found = None;
                    for name in field.default_columns() {
                        if let Some(column) = find(name)? {
                            found = Some(column);
                            break;
                        }
                    }
                    found
                }
            };
        }
        let mapping = Self { columns };
        if mapping.column(Field::PasswordHash).is_none() {
            return Err(format!(
                "the source has no password hash column (none of password_hash, \
                 hashed_password, password; its columns: {}): name it with \
                 --map password_hash=COLUMN",
                names.join(", ")
            ));
        }
        if mapping.column(Field::Username).is_none() && mapping.column(Field::Email).is_none() {
            return Err(format!(
                "the source has neither a username nor an email column (its columns: {}): \
                 name one with --map username=COLUMN or --map email=COLUMN",
                names.join(", ")
            ));
        }
        let hashes = mapping.column(Field::PasswordHash);
        if let Some(field) = Field::ALL
            .into_iter()
            .find(|&f| f != Field::PasswordHash && mapping.column(f) == hashes)
        {
            return Err(format!(
                "{} would be read from the password hash column; map it to another \
                 column, or to none with --map {}=",
                field.as_str(),
                field.as_str()
            ));
        }
        Ok(mapping)
    }

    /// The columns some field is read from, in column order.
    pub fn columns_used(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self.columns.iter().flatten().copied().collect();
        used.sort_unstable();
        used.dedup();
        used
    }

    fn column(&self, field: Field) -> Option<usize> {
        self.columns[field as usize]
    }

    fn cell<'r>(&self, row: &'r [Cell], field: Field) -> Option<&'r Cell> {
        row.get(self.column(field)?)
    }

    /// The text of `field` in `row`, if it has any: an empty value counts
    /// as none.
    pub fn value<'r>(&self, row: &'r [Cell], field: Field) -> Option<&'r str> {
        match self.cell(row, field)? {
            Cell::Text(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }

    /// Whether `row` has a value for `field`, readable or not.
    pub fn given(&self, row: &[Cell], field: Field) -> bool {
        match self.cell(row, field) {
            Some(Cell::Text(text)) => !text.is_empty(),
            Some(Cell::Unreadable(_)) => true,
            Some(Cell::Missing) | None => false,
        }
    }

    /// Why the values of `row` that fields are read from cannot be read.
    pub fn unreadable(&self, row: &[Cell]) -> Vec<String> {
        Field::ALL
            .into_iter()
            .filter_map(|field| match self.cell(row, field) {
                Some(Cell::Unreadable(why)) => Some(format!("{}: {why}", field.as_str())),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(columns: &[&str]) -> Vec<String> {
        columns.iter().map(|c| c.to_string()).collect()
    }

    fn choices(raw: &[&str]) -> Vec<ColumnChoice> {
        raw.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn defaults_find_each_backends_hash_column() {
        for column in ["password_hash", "hashed_password", "password"] {
            let t = table(&["id", "username", column]);
            let mapping = Mapping::resolve(&t, &[]).unwrap();
            assert_eq!(mapping.column(Field::PasswordHash), Some(2));
        }
        // password_hash is preferred to password when both exist.
        let t = table(&["password", "username", "password_hash"]);
        let mapping = Mapping::resolve(&t, &[]).unwrap();
        assert_eq!(mapping.column(Field::PasswordHash), Some(2));
    }

    #[test]
    fn the_fastapi_backends_table_reads_with_its_map_line() {
        let t = table(&["id", "name", "username", "email", "hashed_password"]);
        let map = choices(&[
            "first_name=name",
            "last_name=username",
            "username=",
            "name=",
        ]);
        let mapping = Mapping::resolve(&t, &map).unwrap();
        assert_eq!(mapping.column(Field::FirstName), Some(1));
        assert_eq!(mapping.column(Field::LastName), Some(2));
        assert_eq!(mapping.column(Field::Username), None);
        assert_eq!(mapping.column(Field::Name), None);
        assert_eq!(mapping.column(Field::Email), Some(3));
    }

    #[test]
    fn refuses_what_it_cannot_import() {
        let no_hash = Mapping::resolve(&table(&["username", "pw"]), &[]).unwrap_err();
        assert!(no_hash.contains("--map password_hash="), "{no_hash}");
        let no_identity = Mapping::resolve(&table(&["id", "password"]), &[]).unwrap_err();
        assert!(no_identity.contains("neither"), "{no_identity}");
        let no_column =
            Mapping::resolve(&table(&["username", "password"]), &choices(&["email=mail"]))
                .unwrap_err();
        assert!(no_column.contains("no column mail"), "{no_column}");
        let twice =
            Mapping::resolve(&table(&["username", "email", "Email", "password"]), &[]).unwrap_err();
        assert!(twice.contains("two columns for email"), "{twice}");
        let hash_as_name = Mapping::resolve(
            &table(&["username", "password"]),
            &choices(&["name=password"]),
        )
        .unwrap_err();
        assert!(hash_as_name.contains("--map name="), "{hash_as_name}");
        assert!("nickname=x".parse::<ColumnChoice>().is_err());
        assert!("username".parse::<ColumnChoice>().is_err());
    }

    #[test]
    fn empty_values_count_as_none() {
        let t = table(&["username", "password", "email"]);
        let mapping = Mapping::resolve(&t, &[]).unwrap();
        let row = vec![
            Cell::Text("bob".into()),
            Cell::Unreadable("not UTF-8 text".into()),
            Cell::Text(String::new()),
        ];
        assert_eq!(mapping.value(&row, Field::Username), Some("bob"));
        assert_eq!(mapping.value(&row, Field::Email), None);
        assert!(!mapping.given(&row, Field::Email));
        assert_eq!(mapping.value(&row, Field::Name), None);
        assert_eq!(mapping.value(&row, Field::PasswordHash), None);
        assert!(mapping.given(&row, Field::PasswordHash));
        assert_eq!(
            mapping.unreadable(&row),
            vec!["password_hash: not UTF-8 text".to_owned()]
        );
    }
}
