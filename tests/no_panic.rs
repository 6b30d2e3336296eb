//! Bad input gets an error, never a panic: every parser tagback runs on user
//! input is fed mutated versions of real inputs (a deterministic xorshift
//! fuzzer, so failures reproduce) and must return, Ok or Err.

use tagback::django::{migration, python};
use tagback::ledger::evidence;
use tagback::stack::{ImageRef, compose, interpolate, tag_order};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "'",
    "\"",
    "\\",
    "\n",
    " ",
    "&a",
    "*a",
    "<<:",
    "${",
    "$",
    "-",
    "#",
    "@",
    "\u{0}",
    "é",
    "migrations.RunPython(",
    "dependencies = ",
    "class Migration(",
    "replaces = [",
    " [X] ",
    " [ ] ",
    "__first__",
    "\t",
];

/// Mutate `seed` `rounds` times: delete, duplicate or insert tokens.
fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut s: Vec<char> = seed.chars().collect();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (at + rng.below(20)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 if !s.is_empty() => {
                let start = rng.below(s.len());
                let end = (start + rng.below(40)).min(s.len());
                let chunk: Vec<char> = s[start..end].to_vec();
                s.splice(at..at, chunk);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                s.splice(at..at, t.chars());
            }
        }
    }
    s.into_iter().collect()
}

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(rel),
    )
    .unwrap()
}

fn iterations() -> usize {
    std::env::var("TAGBACK_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

#[test]
fn stack_files_never_panic() {
    let seeds = [
        fixture("demo/stack.yml"),
        fixture("stack/malformed.yml"),
        fixture("stack/required_var.yml"),
    ];
    let mut rng = Rng(0x5eed_0001);
    for i in 0..iterations() {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        if let Ok(services) = compose::parse(&input) {
            for s in services.values() {
                if let Some((img, _)) = &s.image
                    && let Ok(v) = interpolate::interpolate(img, &|_| Some("1".into()))
                {
                    let _ = ImageRef::parse(&v);
                }
            }
        }
    }
}

#[test]
fn migrations_and_settings_never_panic() {
    let seeds = [
        fixture("demo/v2/shop/migrations/0003_order_badge.py"),
        fixture("demo/v2/accounts/migrations/0003_normalize_nicknames.py"),
        fixture("demo/v2/shopsite/settings.py"),
        fixture("django/err/unparsable.py"),
    ];
    let mut rng = Rng(0x5eed_0002);
    for i in 0..iterations() {
        let input = mutate(&mut rng, &seeds[i % seeds.len()]);
        let _ = migration::parse(&input, "shop");
        let _ = python::parse_module(&input);
    }
}

#[test]
fn small_grammars_never_panic() {
    let mut rng = Rng(0x5eed_0003);
    let evidence_seed =
        "shop\n [X] 0001_initial\n [ ] 0002_x (2 squashed migrations)\n[X]  members.0001_initial\n";
    for _ in 0..iterations() {
        let _ = evidence::parse_showmigrations(&mutate(&mut rng, evidence_seed));
        let _ = interpolate::interpolate(
            &mutate(&mut rng, "reg:5000/shop:${TAG:-1.2}-$$x${A:?m}"),
            &|_| None,
        );
        let _ = interpolate::parse_dotenv(&mutate(&mut rng, "A=1\nexport B='x y'\n# c\n"));
        let a = mutate(&mut rng, "v1.10.0-rc.1-alpine");
        let b = mutate(&mut rng, "2024.05.1");
        let _ = tag_order::compare(&a, &b);
        let _ = tag_order::why_not_comparable(&a, &b);
        let _ = ImageRef::parse(&mutate(
            &mut rng,
            "registry.example.com:5000/team/shop:2.1.0@sha256:abc",
        ));
        let _ = tagback::git::hook::parse_pre_push(&mutate(
            &mut rng,
            "refs/heads/main 1111111111111111111111111111111111111111 refs/heads/main 0000000000000000000000000000000000000000\n",
        ));
    }
}
