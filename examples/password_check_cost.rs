//! What the password rules cost on the worst inputs that can be built, for
//! BENCHMARKS.md: `cargo run --release --example password_check_cost`.
//!
//! It times `PasswordPolicy::check` (what registration and password
//! changes run) on the known slow families and on thousands of random
//! strings drawn from l33t symbols, and, for comparison, zxcvbn given the
//! same passwords whole, which is what the check did before it was bounded.
//! Each figure is the best of three runs of one input, so a scheduler
//! hiccup does not pass for a slow input.

use std::time::Instant;

use gatehouse::domain::PasswordPolicy;

fn best_of_three(work: impl Fn()) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::MAX, f64::min)
}

fn policy_cost(password: &str) -> f64 {
    let policy = PasswordPolicy { min_length: 8 };
    best_of_three(|| {
        let _ = policy.check("password", password, None, None);
    })
}

fn unbounded_cost(password: &str) -> f64 {
    best_of_three(|| {
        let _ = zxcvbn::zxcvbn(password, &[]);
    })
}

/// A small xorshift generator: the same inputs on every run.
struct Inputs(u64);

impl Inputs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn password(&mut self, alphabet: &[char]) -> String {
        let length = 8 + (self.next() % 121) as usize;
        let size = 2 + (self.next() % 30) as usize;
        let letters: Vec<char> = (0..size)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect();
        (0..length)
            .map(|_| letters[(self.next() % size as u64) as usize])
            .collect()
    }
}

fn main() {
    let families: Vec<(&str, String)> = vec![
        (
            "10 l33t symbols ×13, 128 chars",
            "@4$5!1|0+7".repeat(13)[..128].to_owned(),
        ),
        (
            "20 l33t symbols, 20 chars",
            "@4(<{[1|7!$5+69023%8".to_owned(),
        ),
        (
            "20 l33t symbols ×3, 64 chars",
            "@4(<{[1|7!$5+69023%8".repeat(4)[..64].to_owned(),
        ),
        (
            "random printable, 128 chars",
            "xK9#mQ2!vL7@pR4$wT8%zY3^bN6&cF1*".repeat(4),
        ),
        (
            "one long run, 128 chars",
            (0x100u32..0x180).filter_map(char::from_u32).collect(),
        ),
    ];
    println!("| input | check now | zxcvbn on the whole password |");
    println!("|---|---|---|");
    for (name, password) in &families {
        println!(
            "| {name} | {:.3} ms | {:.1} ms |",
            policy_cost(password),
            unbounded_cost(password)
        );
    }

    let alphabet: Vec<char> = "4@8({[<369!|170$5+%2abcdefgilostxzpqwyASDF .-_#&*"
        .chars()
        .collect();
    let mut inputs = Inputs(0x9e37_79b9_7f4a_7c15);
    let samples = 20_000;
    let mut worst = (0.0, String::new());
    let mut total = 0.0;
    for _ in 0..samples {
        let password = inputs.password(&alphabet);
        let started = Instant::now();
        let _ = PasswordPolicy { min_length: 8 }.check("password", &password, None, None);
        let cost = started.elapsed().as_secs_f64() * 1e3;
        total += cost;
        if cost > worst.0 {
            worst = (cost, password);
        }
    }
    // The slowest sample, timed again: was it the input or the machine?
    let again = policy_cost(&worst.1);
    println!();
    println!(
        "{samples} random passwords of 8–128 characters from l33t symbols: mean {:.3} ms; \
         slowest {:.3} ms once, {again:.3} ms timed again ({} chars)",
        total / samples as f64,
        worst.0,
        worst.1.chars().count()
    );
}
