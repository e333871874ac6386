//! A seeded generator of realistic self-describing e-commerce events from
//! the book's Nile store: shoppers view products, add some to their carts and
//! place orders (or abandon their carts). The same seed gives the same events,
//! so demos and benchmarks are repeatable.

use std::io::{self, Write};

use crate::time;

/// Schema of a product view.
pub const VIEWED_PRODUCT: &str = "iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0";
/// Schema of an add to cart.
pub const ADDED_TO_CART: &str = "iglu:com.nile/shopper_added_to_cart/jsonschema/1-0-0";
/// Schema of an order.
pub const PLACED_ORDER: &str = "iglu:com.nile/shopper_placed_order/jsonschema/1-0-0";

const FIRST_NAMES: &[&str] = &[
    "Jane", "Amir", "Li", "Sofia", "Kwame", "Priya", "Lukas", "Mei", "Carlos", "Aiko", "Noah",
    "Fatima", "Oliver", "Zara", "Mateo", "Ingrid",
];
const PRODUCTS: &[(&str, &str, u32)] = &[
    ("aapl-001", "iPad", 89_999),
    ("sony-102", "PlayStation 5", 49_999),
    ("lego-877", "Lego Millennium Falcon", 84_999),
    ("kndl-044", "Kindle Paperwhite", 13_999),
    ("dysn-310", "Dyson V15 Vacuum", 74_999),
    ("nike-519", "Nike Pegasus 40", 12_999),
    ("book-002", "Event Streams in Action", 4_499),
    ("bose-700", "Bose 700 Headphones", 37_999),
    ("rasp-400", "Raspberry Pi 400", 9_999),
    ("stnl-016", "Stanley Quencher 40oz", 4_500),
];

/// SplitMix64: small, fast and good enough for test data; no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Settings of a generated stream.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Events to write.
    pub count: u64,
    /// Random seed.
    pub seed: u64,
    /// Time of the first event, ms since the epoch.
    pub start_ms: i64,
    /// Distinct shoppers.
    pub shoppers: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            count: 1000,
            seed: 42,
            start_ms: time::parse_rfc3339_ms("2026-11-27T09:00:00Z").expect("valid time"),
            shoppers: 5000,
        }
    }
}

struct Shopper {
    id: u64,
    cart: Vec<(usize, u32)>,
}

/// Writes `options.count` events, one JSON object per line.
pub fn generate(options: &GenOptions, out: &mut impl Write) -> io::Result<()> {
    generate_each(options, &mut |line: &[u8]| {
        out.write_all(line)?;
        out.write_all(b"\n")
    })
}

/// Hands `options.count` events to `each`, one JSON object (without its
/// newline) at a time.
pub fn generate_each(
    options: &GenOptions,
    each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut rng = Rng::new(options.seed);
    let mut now = options.start_ms;
    let mut active: Vec<Shopper> = Vec::new();
    let mut line = Vec::with_capacity(512);
    let mut order_seq = 0u64;
    for _ in 0..options.count {
        now += rng.below(40) as i64;
        // Keep a pool of shoppers mid-visit; new ones arrive, some leave
        // with full carts (the abandoned carts of chapter 4).
        if active.len() < 64 || rng.chance(10) {
            active.push(Shopper {
                id: rng.below(options.shoppers) + 1,
                cart: Vec::new(),
            });
        }
        let i = rng.below(active.len() as u64) as usize;
        line.clear();
        let roll = rng.below(100);
        let shopper = &mut active[i];
        if roll < 65 || (roll < 90 && shopper.cart.len() >= 5) {
            let product = rng.below(PRODUCTS.len() as u64) as usize;
            write_viewed(&mut line, shopper.id, product, now);
        } else if roll < 90 {
            let product = rng.below(PRODUCTS.len() as u64) as usize;
            let quantity = 1 + rng.below(3) as u32;
            shopper.cart.push((product, quantity));
            write_added(&mut line, shopper.id, product, quantity, now);
        } else if !shopper.cart.is_empty() && roll < 97 {
            order_seq += 1;
            write_order(&mut line, shopper, order_seq, options.seed, now);
            active.swap_remove(i);
        } else {
            let product = rng.below(PRODUCTS.len() as u64) as usize;
            write_viewed(&mut line, shopper.id, product, now);
            if rng.chance(30) {
                active.swap_remove(i);
            }
        }
        each(&line)?;
    }
    Ok(())
}

fn write_shopper(line: &mut Vec<u8>, id: u64) {
    let name = FIRST_NAMES[(id % FIRST_NAMES.len() as u64) as usize];
    // Public-looking addresses spread over the whole range, stable per shopper.
    let h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let ip = [
        [23u8, 45, 62, 81, 104, 151, 185, 203][(h >> 8) as usize % 8],
        (h >> 16) as u8,
        (h >> 24) as u8,
        ((h >> 32) as u8).max(1),
    ];
    let _ = write!(
        line,
        r#"{{"id":"{id}","name":"{name}","ipAddress":"{}.{}.{}.{}"}}"#,
        ip[0], ip[1], ip[2], ip[3]
    );
}

fn write_product(line: &mut Vec<u8>, product: usize) {
    let (sku, name, cents) = PRODUCTS[product];
    let _ = write!(
        line,
        r#"{{"sku":"{sku}","name":"{name}","price":{}.{:02}}}"#,
        cents / 100,
        cents % 100
    );
}

fn write_viewed(line: &mut Vec<u8>, shopper: u64, product: usize, now: i64) {
    let _ = write!(line, r#"{{"schema":"{VIEWED_PRODUCT}","data":{{"shopper":"#);
    write_shopper(line, shopper);
    line.extend_from_slice(br#","product":"#);
    write_product(line, product);
    let _ = write!(
        line,
        r#","timestamp":"{}"}}}}"#,
        time::format_rfc3339_ms(now)
    );
}

fn write_added(line: &mut Vec<u8>, shopper: u64, product: usize, quantity: u32, now: i64) {
    let _ = write!(line, r#"{{"schema":"{ADDED_TO_CART}","data":{{"shopper":"#);
    write_shopper(line, shopper);
    line.extend_from_slice(br#","item":{"product":"#);
    write_product(line, product);
    let _ = write!(
        line,
        r#","quantity":{quantity}}},"timestamp":"{}"}}}}"#,
        time::format_rfc3339_ms(now)
    );
}

fn write_order(line: &mut Vec<u8>, shopper: &Shopper, seq: u64, seed: u64, now: i64) {
    let total: u64 = shopper
        .cart
        .iter()
        .map(|&(p, q)| u64::from(PRODUCTS[p].2) * u64::from(q))
        .sum();
    let _ = write!(line, r#"{{"schema":"{PLACED_ORDER}","data":{{"shopper":"#);
    write_shopper(line, shopper.id);
    let _ = write!(
        line,
        r#","order":{{"id":"o-{seed:x}-{seq:08}","value":{}.{:02},"items":["#,
        total / 100,
        total % 100
    );
    for (n, &(product, quantity)) in shopper.cart.iter().enumerate() {
        if n > 0 {
            line.push(b',');
        }
        line.extend_from_slice(br#"{"product":"#);
        write_product(line, product);
        let _ = write!(line, r#","quantity":{quantity}}}"#);
    }
    let _ = write!(
        line,
        r#"]}},"timestamp":"{}"}}}}"#,
        time::format_rfc3339_ms(now)
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::SelfDescribing;

    #[test]
    fn same_seed_same_events_all_self_describing() {
        let options = GenOptions {
            count: 2000,
            ..GenOptions::default()
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        generate(&options, &mut a).unwrap();
        generate(&options, &mut b).unwrap();
        assert_eq!(a, b);
        let mut kinds = std::collections::BTreeMap::new();
        for line in a.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            let sd = SelfDescribing::from_value(&v).unwrap();
            *kinds.entry(sd.schema.name.clone()).or_insert(0) += 1;
            assert!(v["data"]["shopper"]["id"].is_string());
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds["shopper_viewed_product"] > kinds["shopper_placed_order"]);
    }
}
