//! Function libraries (`FUNCTION LOAD`, `FCALL`) as data: what a library is, its `#!lua name=`
//! first line, and the payload `FUNCTION DUMP` gives and `FUNCTION RESTORE` takes.
//!
//! The payload is Redis's, so libraries move between kvs and redis-server both ways: for each
//! library the byte `0xf5` and its code as an RDB string, then the RDB version (2 bytes, little
//! endian) and the CRC64 (Jones, as Redis computes it) of everything before it (8 bytes, little
//! endian). kvs writes strings plain; it reads Redis's every string encoding, LZF included.
//! The same payload is what the log and snapshots keep of the libraries.

use bytes::Bytes;

/// The name of the store's server state that holds the libraries (as a dump payload).
pub(crate) const META_NAME: &[u8] = b"functions";

/// The only engine there is, under the name Redis gives it.
pub(crate) const ENGINE: &str = "LUA";

/// How long a library's code may run while it loads, as Redis allows.
pub(crate) const LOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// The `#!lua flags=` / `register_function{flags=}` flags, in the order Redis lists them.
pub(crate) const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// What a script or function declares it does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    /// Declared at all (a script with a `#!lua` line, or any function): undeclared scripts keep
    /// the old, permissive rules.
    pub(crate) declared: bool,
    /// Bits by position in [`FLAG_NAMES`].
    pub(crate) bits: u8,
}

impl Flags {
    pub(crate) fn declared() -> Self {
        Self {
            declared: true,
            bits: 0,
        }
    }

    /// Adds the flag named `name` (any case); false if there is no such flag.
    pub(crate) fn add(&mut self, name: &str) -> bool {
        match FLAG_NAMES.iter().position(|f| f.eq_ignore_ascii_case(name)) {
            Some(i) => {
                self.bits |= 1 << i;
                true
            }
            None => false,
        }
    }

    pub(crate) fn no_writes(self) -> bool {
        self.bits & 1 != 0
    }

    pub(crate) fn allow_oom(self) -> bool {
        self.bits & 2 != 0
    }

    /// The names of the flags set, in Redis's order.
    pub(crate) fn names(self) -> impl Iterator<Item = &'static str> {
        FLAG_NAMES
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.bits & (1 << i) != 0)
            .map(|(_, name)| name)
    }
}

/// One function a library registered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FunctionInfo {
    pub(crate) name: String,
    pub(crate) description: Option<Bytes>,
    pub(crate) flags: Flags,
}

/// A loaded library, as `FUNCTION LIST` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Library {
    pub(crate) name: String,
    /// The whole code given to `FUNCTION LOAD`, first line included.
    pub(crate) code: Bytes,
    pub(crate) functions: Vec<FunctionInfo>,
}

/// A library's first line, read: its name and where its Lua code starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Metadata {
    pub(crate) name: String,
    /// Byte offset of the line's end (the `\n`, kept so line numbers stay as written).
    pub(crate) body: usize,
}

/// Whether `name` is a valid library or function name: letters, digits and `_`, at least one.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Reads `#!<engine> name=<name>`, with Redis's errors (without the `ERR ` prefix).
pub(crate) fn metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match kvs_protocol::resp::split_args(&code[..end]) {
        Ok(parts) if !parts.is_empty() => parts,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2..]).into_owned();
    let mut name: Option<Vec<u8>> = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_vec());
            continue;
        }
        return Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err(BAD_NAME.into());
    }
    if !engine.eq_ignore_ascii_case(ENGINE) {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok(Metadata {
        // Valid names are ASCII.
        name: String::from_utf8_lossy(&name).into_owned(),
        body: end,
    })
}

/// The RDB opcode that precedes each library in a payload.
const OPCODE_FUNCTION: u8 = 0xf5;
/// The opcode of the format before Redis 7.0 was released, which Redis itself refuses.
const OPCODE_FUNCTION_PRE_GA: u8 = 0xf6;
/// The RDB version kvs writes (Redis 7.0's) and the newest it reads.
const RDB_VERSION: u16 = 10;

/// The CRC64 Redis puts in RDB files and dump payloads (Jones polynomial, reflected).
pub(crate) fn crc64(bytes: &[u8]) -> u64 {
    const REDIS: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);
    REDIS.checksum(bytes)
}

/// The payload of `FUNCTION DUMP` for these libraries' codes.
pub(crate) fn dump<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Bytes {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION);
        put_length(&mut out, code.len() as u64);
        out.extend_from_slice(code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Bytes::from(out)
}

fn put_length(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// The library codes in a `FUNCTION RESTORE` payload, in order; or Redis's error text (without
/// `ERR `).
pub(crate) fn undump(payload: &[u8]) -> Result<Vec<Bytes>, String> {
    const WRONG: &str = "DUMP payload version or checksum are wrong";
    let Some(split) = payload.len().checked_sub(10) else {
        return Err(WRONG.into());
    };
    let (body, footer) = payload.split_at(split);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || crc64(&payload[..split + 2]) != u64::from_le_bytes(stored) {
        return Err(WRONG.into());
    }
    let mut reader = Reader(body);
    let mut codes = Vec::new();
    while let Some(&opcode) = reader.0.first() {
        reader.0 = &reader.0[1..];
        match opcode {
            OPCODE_FUNCTION => codes.push(reader.string()?),
            OPCODE_FUNCTION_PRE_GA => return Err("Pre-GA function format not supported".into()),
            _ => return Err("given type is not a function".into()),
        }
    }
    Ok(codes)
}

/// Reads RDB-encoded values from a byte slice; every length is checked against what is there.
struct Reader<'a>(&'a [u8]);

const TRUNCATED: &str = "failed loading the given functions payload";

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| TRUNCATED.to_string())?;
        if n > self.0.len() {
            return Err(TRUNCATED.into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    /// A length, or the special encoding number of a string (`Err` side of the inner result).
    fn length(&mut self) -> Result<Result<u64, u8>, String> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Ok(u64::from(first & 0x3f)),
            1 => Ok((u64::from(first & 0x3f) << 8) | u64::from(self.byte()?)),
            2 => match first {
                0x80 => {
                    let b = self.take(4)?;
                    Ok(u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
                }
                0x81 => {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(self.take(8)?);
                    Ok(u64::from_be_bytes(w))
                }
                _ => return Err(TRUNCATED.into()),
            },
            _ => Err(first & 0x3f),
        })
    }

    fn plain_length(&mut self) -> Result<u64, String> {
        self.length()?.map_err(|_| TRUNCATED.to_string())
    }

    fn string(&mut self) -> Result<Bytes, String> {
        match self.length()? {
            Ok(len) => Ok(Bytes::copy_from_slice(self.take(len)?)),
            // Integers kept as such: 8, 16 and 32 bits, little endian.
            Err(0) => Ok(Bytes::from((self.byte()? as i8).to_string())),
            Err(1) => {
                let b = self.take(2)?;
                Ok(Bytes::from(i16::from_le_bytes([b[0], b[1]]).to_string()))
            }
            Err(2) => {
                let b = self.take(4)?;
                Ok(Bytes::from(
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
                ))
            }
            Err(3) => {
                let compressed = self.plain_length()?;
                let len = self.plain_length()?;
                let data = self.take(compressed)?;
                lzf_decompress(data, len).map(Bytes::from)
            }
            Err(_) => Err(TRUNCATED.into()),
        }
    }
}

/// Expands LZF data that says it expands to `len` bytes. The output never grows past what the
/// input can produce (each input byte yields at most 264 output bytes), whatever `len` claims.
fn lzf_decompress(mut input: &[u8], len: u64) -> Result<Vec<u8>, String> {
    let bad = || TRUNCATED.to_string();
    let most = (input.len() as u64).saturating_mul(264);
    if len > most {
        return Err(bad());
    }
    let len = usize::try_from(len).map_err(|_| bad())?;
    let mut out = Vec::with_capacity(len);
    while let Some((&control, rest)) = input.split_first() {
        input = rest;
        if control < 32 {
            // A run of control + 1 literal bytes.
            let n = usize::from(control) + 1;
            if n > input.len() {
                return Err(bad());
            }
            out.extend_from_slice(&input[..n]);
            input = &input[n..];
        } else {
            // A back reference: length in the top 3 bits (7 means one more byte follows).
            let mut n = usize::from(control >> 5);
            if n == 7 {
                let (&more, rest) = input.split_first().ok_or_else(bad)?;
                input = rest;
                n += usize::from(more);
            }
            let (&low, rest) = input.split_first().ok_or_else(bad)?;
            input = rest;
            let back = (usize::from(control & 0x1f) << 8) + usize::from(low) + 1;
            let start = out.len().checked_sub(back).ok_or_else(bad)?;
            for i in 0..n + 2 {
                let b = out[start + i];
                out.push(b);
            }
        }
        if out.len() > len {
            return Err(bad());
        }
    }
    if out.len() != len {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_redis_crc64() {
        // The check value Redis's own crc64 test uses.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn a_dump_reads_back_and_a_damaged_one_does_not() {
        let long = vec![b'x'; 20_000];
        let payload = dump([&b"#!lua name=a\n"[..], &long[..]]);
        let codes = undump(&payload).expect("reads back");
        assert_eq!(
            codes,
            vec![Bytes::from_static(b"#!lua name=a\n"), Bytes::from(long)]
        );
        for at in [0, payload.len() / 2, payload.len() - 1] {
            let mut bad = payload.to_vec();
            bad[at] ^= 1;
            assert!(undump(&bad).is_err(), "flipped byte {at}");
        }
        assert!(undump(b"bad_payload").is_err());
        assert!(undump(b"").is_err());
    }

    #[test]
    fn a_payload_from_redis_server_with_lzf_reads() {
        // FUNCTION DUMP of redis-server 7.0.15 after loading
        // "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)".
        let payload: &[u8] = b"\xf5\xc3@V@[\x1f#!lua name=mylib\nredis.register_\x0bfunction('my@\x0b\x02', @\x06`\x12\x11keys, args) return`\x0c\x07[1] end)\n\x00\x8dY6\xad\xc6\xe7\x07\xda";
        let codes = undump(payload).expect("reads");
        assert_eq!(
            codes,
            vec![Bytes::from_static(
                b"#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"
            )]
        );
    }

    #[test]
    fn lzf_refuses_what_its_input_cannot_make() {
        assert!(
            lzf_decompress(b"\x00a", 1 << 40).is_err(),
            "claims too much"
        );
        assert!(
            lzf_decompress(b"\x20\x05", 10).is_err(),
            "refers before the start"
        );
        // One literal, then a reference one back of 7 + 0 + 2 bytes: ten in all.
        assert_eq!(
            lzf_decompress(b"\x00a\xe0\x00\x00", 10).as_deref(),
            Ok(&b"aaaaaaaaaa"[..])
        );
        assert!(
            lzf_decompress(b"\x00a\xe0\x00\x00", 11).is_err(),
            "says more than it makes"
        );
    }

    #[test]
    fn first_lines_are_read_with_redis_errors() {
        let ok = metadata(b"#!lua name=lib_1\nreturn").expect("valid");
        assert_eq!((ok.name.as_str(), ok.body), ("lib_1", 16));
        assert!(metadata(b"#!LUA NAME=x\n").is_ok());
        assert!(
            metadata(b"#!lua \"name=q\"\n").is_ok(),
            "quoted as arguments are"
        );
        let err = |code: &[u8]| metadata(code).expect_err("refused");
        assert_eq!(err(b"return 1"), "Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "Invalid library metadata");
        assert_eq!(
            err(b"#!lua name=x name=y\n"),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            err(b"#!lua foo=bar\n"),
            "Invalid metadata value given: foo=bar"
        );
        assert_eq!(err(b"#!lua\n"), "Library name was not given");
        assert_eq!(err(b"#!lua name=a-b\n"), BAD_NAME);
        assert_eq!(
            err(b"#!bad_engine name=t\n"),
            "Engine 'bad_engine' not found"
        );
    }

    #[test]
    fn flags_list_in_redis_order() {
        let mut flags = Flags::declared();
        assert!(flags.add("ALLOW-STALE") && flags.add("no-writes") && !flags.add("bad"));
        assert_eq!(
            flags.names().collect::<Vec<_>>(),
            ["no-writes", "allow-stale"]
        );
        assert!(flags.no_writes() && !flags.allow_oom());
    }
}
