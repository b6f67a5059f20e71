//! One JSON object written field by field into a byte buffer: the access
//! log's line. serde_json escapes every string byte by byte through a table;
//! most log fields (ids, methods, routes, decisions) are plain ASCII with
//! nothing to escape, and one check over the bytes lets them be copied whole.
//! The output is byte for byte what serde_json writes for the same fields.

use std::io::Write as _;

/// An object being written; `finish` closes it.
pub struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    pub fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, empty: true }
    }

    // The writers are inlined so that each key, a literal at the call,
    // becomes a copy of known length (a few moves) instead of a call to
    // memcpy: a log line has twenty of them.
    #[inline(always)]
    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        // Keys are the gateway's own names: nothing in them to escape.
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline(always)]
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_str(self.out, value);
        self
    }

    #[inline(always)]
    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// An address as text (nothing in it to escape).
    pub fn ip(&mut self, key: &str, ip: std::net::IpAddr) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        push_ip(self.out, ip);
        self.out.push(b'"');
        self
    }

    /// An unsigned integer.
    #[inline(always)]
    pub fn uint(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// Microseconds as milliseconds with up to three decimals
    /// (`12.345`, `0.5`, `3.0`), null for `None`: byte for byte what
    /// serde_json writes for the `f64` `micros / 1000`, without the float
    /// formatter.
    #[inline(always)]
    pub fn millis(&mut self, key: &str, micros: Option<u64>) -> &mut Self {
        self.key(key);
        match micros {
            None => self.out.extend_from_slice(b"null"),
            Some(us) => push_millis(self.out, us),
        }
        self
    }

    #[inline(always)]
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(b"null");
        self
    }

    pub fn finish(&mut self) {
        self.out.push(b'}');
    }
}

/// An address as `Display` writes it; IPv4 (nearly every client) without
/// the formatter, which costs about a thousand instructions per address.
/// Also writes `X-Forwarded-For`.
pub fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    let std::net::IpAddr::V4(v4) = ip else {
        let _ = write!(out, "{ip}");
        return;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

/// Below this (12.7 days) a double's spacing is far under a microsecond,
/// so the three-decimal text is the shortest that reads back as
/// `micros / 1000`; above it the float formatter decides.
const EXACT_BELOW_MICROS: u64 = 1 << 40;

fn push_millis(out: &mut Vec<u8>, micros: u64) {
    if micros >= EXACT_BELOW_MICROS {
        let _ = serde_json::to_writer(&mut *out, &(micros as f64 / 1e3));
        return;
    }
    let (whole, fraction) = (micros / 1000, micros % 1000);
    out.extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
    out.push(b'.');
    // The shortest decimal that reads back as the same double: at most
    // three places for a whole number of microseconds, trailing zeros
    // dropped, at least one digit after the point.
    let digits = [
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ];
    let places = if fraction % 100 == 0 {
        1
    } else if fraction % 10 == 0 {
        2
    } else {
        3
    };
    out.extend_from_slice(&digits[..places]);
}

/// A quoted, escaped JSON string.
fn push_str(out: &mut Vec<u8>, text: &str) {
    // JSON must escape `"`, `\` and control characters; anything else,
    // UTF-8 included, may stand as it is (and serde_json leaves it so).
    if !needs_escape(text.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        let start = out.len();
        if serde_json::to_writer(&mut *out, text).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"\"\"");
        }
    }
}

/// Whether any byte is a control character, `"` or `\\`. Eight bytes at a
/// time (SWAR: a byte's high bit is set in the mask where it matched), as a
/// log line is mostly strings and this check sees all of them.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Below 0x20: x - 0x20 borrows into the high bit of a byte that had it clear.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if control
            | zero_byte(x ^ (ONES * u64::from(b'"')))
            | zero_byte(x ^ (ONES * u64::from(b'\\')))
            != 0
        {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.0.255",
            "127.0.0.1",
            "192.168.100.9",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.1.2.3",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("address");
            let mut out = Vec::new();
            push_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).expect("utf-8"), ip.to_string());
        }
    }

    #[test]
    fn strings_are_what_serde_json_writes() {
        for text in [
            "",
            "plain-ascii_1.2",
            "quote\" and \\ back",
            "line\nbreak\ttab\u{1}\u{7f}",
            "caf\u{e9} \u{1F600}",
            "</script>",
        ] {
            let mut ours = Vec::new();
            JsonObject::start(&mut ours).str("k", text).finish();
            let theirs = serde_json::to_vec(&serde_json::json!({ "k": text })).expect("json");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    #[test]
    fn the_word_check_finds_each_byte_that_needs_escaping_wherever_it_stands() {
        for len in 0..20 {
            for at in 0..len {
                for bad in [0u8, 0x1f, b'"', b'\\', b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = bad;
                    assert!(needs_escape(&bytes), "{bad:#x} at {at} of {len}");
                }
                // Neighbours of the bad values, and bytes with the high bit set, pass.
                let mut bytes = vec![b'a'; len];
                bytes[at] = [0x20u8, b'!', b'#', b'[', b']', 0x7f, 0x80, 0xa2, 0xdc, 0xff][at % 10];
                assert!(!needs_escape(&bytes), "{:#x} at {at} of {len}", bytes[at]);
            }
        }
    }

    #[test]
    fn addresses_are_what_display_prints() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "203.0.113.255",
            "127.0.0.1",
            "2001:db8::7",
            "::ffff:1.2.3.4",
        ] {
            let ip: std::net::IpAddr = ip.parse().expect("ip");
            let mut out = Vec::new();
            JsonObject::start(&mut out).ip("ip", ip).finish();
            assert_eq!(String::from_utf8_lossy(&out), format!(r#"{{"ip":"{ip}"}}"#));
        }
    }

    #[test]
    fn milliseconds_are_what_serde_json_writes_for_the_float() {
        let samples = [
            0,
            1,
            9,
            10,
            99,
            100,
            999,
            1000,
            1001,
            1010,
            1100,
            12_345,
            120_000,
            987_654_321,
        ]
        .into_iter()
        .chain((0..5000).map(|i| i * 7919 % 10_000_000))
        .chain([(1 << 40) - 1, 1 << 40, (1 << 40) + 1, u64::MAX]);
        for micros in samples {
            let mut ours = Vec::new();
            JsonObject::start(&mut ours)
                .millis("ms", Some(micros))
                .finish();
            let theirs = serde_json::to_vec(&serde_json::json!({ "ms": micros as f64 / 1e3 }))
                .expect("json");
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{micros} µs"
            );
        }
        let mut out = Vec::new();
        JsonObject::start(&mut out)
            .millis("ms", None)
            .uint("n", 42)
            .finish();
        assert_eq!(String::from_utf8_lossy(&out), r#"{"ms":null,"n":42}"#);
    }

    #[test]
    fn fields_numbers_and_nulls() {
        let mut out = Vec::new();
        JsonObject::start(&mut out)
            .str("a", "x")
            .uint("n", 7)
            .millis("f", Some(1500))
            .millis("none", None)
            .opt_str("s", None)
            .ip("ip", std::net::Ipv6Addr::LOCALHOST.into())
            .finish();
        assert_eq!(
            String::from_utf8_lossy(&out),
            r#"{"a":"x","n":7,"f":1.5,"none":null,"s":null,"ip":"::1"}"#
        );
    }
}
