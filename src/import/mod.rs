//! `gatehouse import-users`: accounts copied from an older backend with
//! their password hashes, so nobody has to reset a password (API.md
//! section 8).
//!
//! Each row is held to the rules a registration is held to (section 3),
//! except the password rules: the password is not known, and a legacy
//! password keeps working until it is changed. Rows are never altered to
//! fit: a row that breaks a rule is rejected with its reasons. A row whose
//! username or email already belongs to an account, or was imported
//! before (its account may since be deleted or renamed), is left alone, so
//! importing twice adds nothing.

mod dates;
mod fields;
mod report;
mod source;

use std::collections::HashMap;

pub use fields::{ColumnChoice, Field};
pub use report::{Rejection, Report, printable};
pub use source::{Source, SourceError};

use crate::auth::legacy;
use crate::domain::{DisplayName, Email, FieldError, Role, Username};
use crate::store::{NewUser, Store, StoreError};
use fields::{Cell, Mapping};

/// The longest hash the `password_hash` column holds.
const MAX_HASH_LENGTH: usize = 255;

pub struct Options {
    pub source: Source,
    pub choices: Vec<ColumnChoice>,
    pub dry_run: bool,
    /// The server's `REQUIRE_EMAIL`: rows without an email are rejected.
    pub require_email: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Nothing was written.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The gatehouse database failed part way; the rows before stayed, as
    /// the report so far says.
    #[error(
        "stopped after {} rows were imported: {cause}; \
         running the same import again adds the rest",
        report.imported
    )]
    Stopped { report: Box<Report>, cause: String },
}

/// A row that passed every check.
struct Account {
    username: Option<Username>,
    email: Option<Email>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    password_hash: String,
    role: Role,
    created_at: Option<i64>,
}

/// Runs an import into `store` (or, with `dry_run`, works out what it
/// would do) and reports it. The caller audits a real run.
pub async fn run(store: &Store, options: Options) -> Result<Report, ImportError> {
    let table = options.source.read(&options.choices).await?;
    let mut report = Report {
        source: options.source.describe(),
        dry_run: options.dry_run,
        rows_read: table.rows.len(),
        ..Report::default()
    };
    let mut claims = Claims::default();
    for (index, row) in table.rows.iter().enumerate() {
        let number = index + 1;
        let checked = check_row(
            row,
            &table.mapping,
            &mut claims,
            number,
            options.require_email,
        );
        if let Some(scheme) = checked.scheme {
            *report.schemes.entry(scheme).or_default() += 1;
        }
        let account = match checked.account {
            Ok(account) => account,
            Err(reasons) => {
                report.rejected.push(Rejection {
                    row: number,
                    who: checked.who,
                    reasons,
                });
                continue;
            }
        };
        match settle(store, &account, options.dry_run).await {
            Ok(Settled::Imported) => {
                report.imported += 1;
                if account.role == Role::Admin {
                    report.admins.push((number, checked.who));
                }
            }
            Ok(Settled::AlreadyPresent) => report.already_present += 1,
            Err(e) => {
                return Err(ImportError::Stopped {
                    report: Box::new(report),
                    cause: e.to_string(),
                });
            }
        }
    }
    Ok(report)
}

enum Settled {
    Imported,
    AlreadyPresent,
}

/// Inserts `account` unless its username or email is taken or was
/// imported before (in a dry run, only looks).
async fn settle(store: &Store, account: &Account, dry_run: bool) -> Result<Settled, StoreError> {
    let username_key = account.username.as_ref().map(Username::key);
    let email_key = account.email.as_ref().map(Email::key);
    if store
        .holds_or_imported(username_key.as_deref(), email_key.as_deref())
        .await?
    {
        return Ok(Settled::AlreadyPresent);
    }
    if dry_run {
        return Ok(Settled::Imported);
    }
    let inserted = store
        .insert_imported_user(NewUser {
            username: account.username.as_ref().map(Username::as_str),
            username_key: username_key.as_deref(),
            email: account.email.as_ref().map(Email::as_str),
            email_key: email_key.as_deref(),
            name: account.name.as_deref(),
            first_name: account.first_name.as_deref(),
            last_name: account.last_name.as_deref(),
            password_hash: &account.password_hash,
            role: account.role,
            created_at: account.created_at,
        })
        .await;
    match inserted {
        Ok(_) => Ok(Settled::Imported),
        // Registered meanwhile, through the API.
        Err(StoreError::UsernameTaken | StoreError::EmailTaken) => Ok(Settled::AlreadyPresent),
        Err(e) => Err(e),
    }
}

/// The usernames and emails earlier rows of the source hold, by their
/// case-folded keys: the first row with one wins it, whether or not that
/// row is imported, and later case variants are duplicates.
#[derive(Default)]
struct Claims {
    usernames: HashMap<String, usize>,
    emails: HashMap<String, usize>,
}

impl Claims {
    fn claim(
        &mut self,
        row: usize,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut hold = |held: &mut HashMap<String, usize>, key: Option<String>, what: &str| {
            if let Some(key) = key {
                let first = *held.entry(key).or_insert(row);
                if first != row {
                    problems.push(format!(
                        "duplicate of row {first}: the same {what}, ignoring case"
                    ));
                }
            }
        };
        hold(&mut self.usernames, username.map(Username::key), "username");
        hold(&mut self.emails, email.map(Email::key), "email");
        problems
    }
}

/// What checking one row found.
struct Checked {
    /// The row's username or email as the source has it, to name it by.
    who: Option<String>,
    /// The hash scheme, when the hash is one gatehouse verifies.
    scheme: Option<&'static str>,
    account: Result<Account, Vec<String>>,
}

fn check_row(
    row: &[Cell],
    mapping: &Mapping,
    claims: &mut Claims,
    number: usize,
    require_email: bool,
) -> Checked {
    let value = |field| mapping.value(row, field);
    let mut problems = mapping.unreadable(row);
    let username = parsed(value(Field::Username), Username::parse, &mut problems);
    let email = parsed(value(Field::Email), Email::parse, &mut problems);
    let mut name_in = |field: Field| {
        let parse = |raw: &str| DisplayName::parse_field(field.as_str(), raw);
        parsed(value(field), parse, &mut problems).map(DisplayName::into_inner)
    };
    let name = name_in(Field::Name);
    let first_name = name_in(Field::FirstName);
    let last_name = name_in(Field::LastName);

    let given = |field| mapping.given(row, field);
    if !given(Field::Username) && !given(Field::Email) {
        problems.push("neither a username nor an email".to_owned());
    }
    if require_email && !given(Field::Email) {
        problems.push("no email, and REQUIRE_EMAIL is true".to_owned());
    }
    problems.extend(claims.claim(number, username.as_ref(), email.as_ref()));

    let password_hash = value(Field::PasswordHash);
    let scheme = match password_hash.map(hash_scheme) {
        Some(Ok(scheme)) => Some(scheme),
        Some(Err(reason)) => {
            problems.push(reason);
            None
        }
        None if given(Field::PasswordHash) => None,
        None => {
            problems.push("no password hash".to_owned());
            None
        }
    };
    let role = match value(Field::Role) {
        None => Some(Role::User),
        Some(raw) => Role::parse(raw).or_else(|| {
            problems.push(format!("role: {raw:?} is neither user nor admin"));
            None
        }),
    };
    let created_at = match value(Field::CreatedAt) {
        None => Some(None),
        Some(raw) => match dates::unix_seconds(raw) {
            Some(seconds) => Some(Some(seconds)),
            None => {
                problems.push(format!(
                    "created_at: {raw:?} is not a date from 1970 to 9999 (Unix seconds, \
                     RFC 3339 or YYYY-MM-DD HH:MM:SS); --map created_at= dates the \
                     accounts now"
                ));
                None
            }
        },
    };

    let who = value(Field::Username)
        .or(value(Field::Email))
        .map(str::to_owned);
    let account = match (password_hash, scheme, role, created_at) {
        (Some(hash), Some(_), Some(role), Some(created_at)) if problems.is_empty() => Ok(Account {
            username,
            email,
            name,
            first_name,
            last_name,
            password_hash: hash.to_owned(),
            role,
            created_at,
        }),
        _ => Err(problems),
    };
    Checked {
        who,
        scheme,
        account,
    }
}

/// `raw` parsed, or `None` with the reason added to `problems`.
fn parsed<T>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Result<T, FieldError>,
    problems: &mut Vec<String>,
) -> Option<T> {
    match parse(raw?) {
        Ok(value) => Some(value),
        Err(e) => {
            problems.push(format!("{}: {}", e.field, e.message));
            None
        }
    }
}

/// The scheme of a stored hash, or why no login could be checked against
/// it. The hash itself is never part of the reason.
fn hash_scheme(stored: &str) -> Result<&'static str, String> {
    if stored.len() > MAX_HASH_LENGTH || !stored.is_ascii() {
        return Err(format!(
            "password hash: not a hash gatehouse verifies (longer than {MAX_HASH_LENGTH} \
             characters, or not ASCII)"
        ));
    }
    legacy::scheme_of(stored).map_err(|refused| format!("password hash: {refused}"))
}
