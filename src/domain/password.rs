use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use zxcvbn::Score;
use zxcvbn::feedback::Warning;
use zxcvbn::matching::patterns::MatchPattern;

use super::{Email, FieldError, Username, reject_control_characters};
use crate::config::PASSWORD_MAX_LENGTH;

/// A password as received. It never prints, and it is bounded in length
/// before anything expensive (hashing, the common-password check) sees it.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Accepts any password a stored account could have; used where a
    /// password is checked against a hash rather than chosen.
    pub fn given(field: &str, raw: &str) -> Result<Self, FieldError> {
        reject_control_characters(field, raw)?;
        if raw.is_empty() {
            return Err(FieldError::new(field, "required", "Password is required."));
        }
        if raw.chars().count() > PASSWORD_MAX_LENGTH {
            return Err(too_long(field));
        }
        Ok(Self(raw.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

fn too_long(field: &str) -> FieldError {
    FieldError::new(
        field,
        "too_long",
        format!("Password must be at most {PASSWORD_MAX_LENGTH} characters."),
    )
}

/// The rules a newly chosen password must meet (API.md section 3). There are
/// no composition rules: length and not being guessable are what matter.
#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

/// A local part this short would forbid nearly every password.
const MIN_LOCAL_PART_CHECKED: usize = 3;

impl PasswordPolicy {
    pub fn check(
        &self,
        field: &str,
        raw: &str,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<Password, FieldError> {
        reject_control_characters(field, raw)?;
        let length = raw.chars().count();
        if length > PASSWORD_MAX_LENGTH {
            return Err(too_long(field));
        }
        if length < self.min_length {
            return Err(FieldError::new(
                field,
                "too_short",
                format!("Password must be at least {} characters.", self.min_length),
            ));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(FieldError::new(
                field,
                "repeated_character",
                "Password must not be one character repeated.",
            ));
        }
        // Compared in the same NFKC form usernames are, so full-width or
        // other compatibility spellings of the name are caught too.
        let folded = raw.nfkc().collect::<String>().to_lowercase();
        if username.is_some_and(|u| folded.contains(&u.key())) {
            return Err(FieldError::new(
                field,
                "contains_username",
                "Password must not contain the username.",
            ));
        }
        if let Some(local) = email.map(|e| e.local_part().to_lowercase())
            && local.chars().count() >= MIN_LOCAL_PART_CHECKED
            && folded.contains(&local)
        {
            return Err(FieldError::new(
                field,
                "contains_email",
                "Password must not contain the email address.",
            ));
        }
        if is_common(raw) {
            return Err(FieldError::new(
                field,
                "common_password",
                "Password is too common; choose one that is harder to guess.",
            ));
        }
        Ok(Password(raw.into()))
    }
}

/// The longest password zxcvbn is asked about. Its estimator costs time
/// that grows with the square of the length (and more, see
/// [`L33T_VARIANT_BUDGET`]), so it only ever sees short input. Nothing
/// longer can be refused by it anyway: the longest entry of its password
/// list has 20 characters, and a keyboard walk long enough to need more
/// than two turns is scored above "weak". Longer passwords get the cheap
/// check for one long run ([`is_one_run`]).
pub const COMMON_CHECK_MAX_CHARS: usize = 32;

/// How many l33t readings zxcvbn may try for one password. It tries every
/// combination of readings of the l33t symbols present (`4` or `@` for
/// `a`, `1`, `!` or `|` for `i` …), each with a full dictionary scan, so
/// a password made of many such symbols costs hundreds of milliseconds.
/// Within this budget the check stays around a millisecond; a password
/// beyond it is not a l33t spelling zxcvbn would recognise, since it never
/// reads one letter from two symbols in one word.
pub const L33T_VARIANT_BUDGET: u64 = 64;

/// zxcvbn's l33t table (its `L33T_TABLE`): the symbols read as each letter.
const L33T_READINGS: [(char, &[char]); 12] = [
    ('a', &['4', '@']),
    ('b', &['8']),
    ('c', &['(', '{', '[', '<']),
    ('e', &['3']),
    ('g', &['6', '9']),
    ('i', &['1', '!', '|']),
    ('l', &['1', '|', '7']),
    ('o', &['0']),
    ('s', &['$', '5']),
    ('t', &['+', '7']),
    ('x', &['%']),
    ('z', &['2']),
];

/// An upper bound on the l33t readings zxcvbn would try for `raw`: the
/// product over letters of the symbols present that read as it, doubled
/// for each symbol present that reads as two letters.
fn l33t_variants(raw: &str) -> u64 {
    let present = |symbol: &char| raw.contains(*symbol);
    let per_letter: u64 = L33T_READINGS
        .iter()
        .map(|(_, symbols)| symbols.iter().filter(|s| present(s)).count().max(1) as u64)
        .product();
    let shared = ['1', '|', '7'].iter().filter(|s| present(s)).count() as u32;
    per_letter.saturating_mul(1 << shared)
}

/// True when the password, as a whole, is one of zxcvbn's ~30,000 common
/// passwords, ignoring case and including l33t and reversed spellings
/// (`P@ssw0rd`, `drowssap`), or is nothing but a trivial run or keyboard
/// walk (`87654321`, `1qaz2wsx`), which top every such list.
///
/// Its cost is bounded whatever the input: zxcvbn only sees passwords of
/// at most [`COMMON_CHECK_MAX_CHARS`] whose l33t readings fit
/// [`L33T_VARIANT_BUDGET`]; every other password only gets the linear
/// [`is_one_run`].
fn is_common(raw: &str) -> bool {
    if is_one_run(raw) {
        return true;
    }
    if raw.chars().count() > COMMON_CHECK_MAX_CHARS || l33t_variants(raw) > L33T_VARIANT_BUDGET {
        return false;
    }
    is_one_common_pattern(raw)
}

/// zxcvbn explains a password as its cheapest sequence of matches; a single
/// match covering everything means the password is exactly that pattern.
/// Its feedback warnings are the public way to tell that a dictionary match
/// came from the password list rather than from English words or names.
fn is_one_common_pattern(raw: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(raw, &[]);
    let [only] = entropy.sequence() else {
        return false;
    };
    match &only.pattern {
        MatchPattern::Dictionary(_) => matches!(
            entropy.feedback().and_then(|f| f.warning()),
            Some(
                Warning::ThisIsATop10Password
                    | Warning::ThisIsATop100Password
                    | Warning::ThisIsACommonPassword
                    | Warning::ThisIsSimilarToACommonlyUsedPassword
            )
        ),
        MatchPattern::Sequence(_) | MatchPattern::Spatial(_) => entropy.score() <= Score::One,
        _ => false,
    }
}

/// A run of characters a fixed step apart (`abcdefgh`, `97531`, or any
/// stretch of consecutive code points), which zxcvbn scores as a trivial
/// sequence at any length. Checked here in one pass, for passwords too
/// long to hand to zxcvbn.
fn is_one_run(raw: &str) -> bool {
    let codes: Vec<i64> = raw.chars().map(|c| i64::from(u32::from(c))).collect();
    let Some(step) = codes.windows(2).next().map(|w| w[1] - w[0]) else {
        return false;
    };
    (1..=5).contains(&step.abs())
        && codes.len() >= 3
        && codes.windows(2).all(|w| w[1] - w[0] == step)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 8 };

    fn code(raw: &str) -> &'static str {
        let user = Username::parse("alice").unwrap();
        let email = Email::parse("wonder.land@example.com").unwrap();
        POLICY
            .check("password", raw, Some(&user), Some(&email))
            .map(|_| "ok")
            .unwrap_or_else(|e| e.code)
    }

    #[test]
    fn length_limits_are_inclusive() {
        assert_eq!(code("xk4!qz9"), "too_short");
        assert_eq!(code("xk4!qz9#"), "ok");
        assert_eq!(code(&"xk4!qz9#".repeat(16)), "ok");
        assert_eq!(code(&format!("{}y", "xk4!qz9#".repeat(16))), "too_long");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(code("ñøþæ€ßðŧ"), "ok");
        assert_eq!(code("ñøþæ€ßð"), "too_short");
    }

    #[test]
    fn ordinary_strong_passwords_pass() {
        for ok in [
            "correct horse battery staple",
            "S3cure!Passw0rd#2026",
            "tulip-marble-47-orbit",
            "Zx9#mQ2!vL",
        ] {
            assert_eq!(code(ok), "ok", "{ok}");
        }
    }

    #[test]
    fn spaces_are_allowed_and_control_characters_are_not() {
        assert_eq!(code("correct horse battery"), "ok");
        assert_eq!(code("correct\0horse battery"), "control_character");
    }

    #[test]
    fn guessable_passwords_are_refused() {
        assert_eq!(code("password"), "common_password");
        assert_eq!(code("PassWord"), "common_password");
        assert_eq!(code("iloveyou"), "common_password");
        assert_eq!(code("qwerty123"), "common_password");
        assert_eq!(code("P@ssw0rd"), "common_password");
        assert_eq!(code("passw0rd"), "common_password");
        assert_eq!(code("drowssap"), "common_password");
        assert_eq!(code("87654321"), "common_password");
        assert_eq!(code("12345678"), "common_password");
        assert_eq!(code("1qaz2wsx"), "common_password");
        assert_eq!(code("trustno1"), "common_password");
        assert_eq!(code("aaaaaaaaaaaa"), "repeated_character");
        assert_eq!(code("my-ALICE-pass-42"), "contains_username");
        assert_eq!(code("my-ａｌｉｃｅ-pass-42"), "contains_username");
        assert_eq!(code("xx-wonder.land-xx"), "contains_email");
    }

    /// Every spelling the check must refuse is decided the same way when it
    /// is at the length limits of what zxcvbn is given.
    #[test]
    fn long_runs_are_refused_at_any_length() {
        let letters: String = ('a'..='z').collect();
        assert_eq!(code(&letters), "common_password");
        let codepoints: String = (0x100u32..0x140).filter_map(char::from_u32).collect();
        assert_eq!(codepoints.chars().count(), 64);
        assert_eq!(code(&codepoints), "common_password");
        let descending: String = (0x4e00u32..0x4e80)
            .rev()
            .step_by(3)
            .filter_map(char::from_u32)
            .collect();
        assert_eq!(code(&descending), "common_password");
        // A run with a break in it is not one run.
        assert_eq!(code("abcdefghijklmnopqrstuvwxyz0123456789abcd"), "ok");
    }

    #[test]
    fn zxcvbn_only_sees_short_passwords_with_few_l33t_readings() {
        // The slowest inputs found: many distinct l33t symbols.
        for slow in [
            "@4(<{[1|7!$5+69023%8",
            "@034+6$785(9!<%1{2|[4+6$785(9!<%1{2|[@03",
            &"@4$5!1|0+7".repeat(13)[..128],
        ] {
            assert!(
                slow.chars().count() > COMMON_CHECK_MAX_CHARS
                    || l33t_variants(slow) > L33T_VARIANT_BUDGET,
                "{slow} would reach zxcvbn"
            );
            assert_eq!(code(slow), "ok", "{slow}");
        }
        // Common passwords' l33t spellings stay well within the budget.
        for l33t in [
            "P@$$w0rd",
            "p@55w0rd",
            "q1w2e3r4t5y6u7i8o9p0",
            "!qaz@wsx",
            "1|0v3y0u",
        ] {
            assert!(l33t_variants(l33t) <= L33T_VARIANT_BUDGET, "{l33t}");
        }
    }
}
