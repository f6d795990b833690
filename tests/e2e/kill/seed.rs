//! The seeds of the kill runs: SplitMix64 (no dependency), the seed of each run of a series,
//! and the series' seed from `PVE_OPERATOR_KILL_SEED` or the clock.

/// SplitMix64: a small, good generator whose whole state is its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// The seed of run `index` of a series started from `base`.
pub fn run_seed(base: u64, index: u64) -> u64 {
    Rng::new(base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// The environment variable that repeats a series of runs.
pub const SEED_VAR: &str = "PVE_OPERATOR_KILL_SEED";

/// `PVE_OPERATOR_KILL_SEED` (decimal or `0x` hex), else one from the clock.
pub fn base_seed() -> u64 {
    match std::env::var(SEED_VAR) {
        Ok(text) => parse_seed(&text)
            .unwrap_or_else(|| panic!("{SEED_VAR}={text:?} is not a number (decimal or 0x hex)")),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Rng::new(now.as_nanos() as u64).next_u64()
        }
    }
}

/// A seed as printed (`0x...`) or in decimal.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}
