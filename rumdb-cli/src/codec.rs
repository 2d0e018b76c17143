//! Keys and values on the command line and in the output: text (UTF-8, escaped where it is not), hex or
//! base64 (standard alphabet, `=` padding), with small codecs written here.

use std::ffi::OsStr;

/// How keys and values are read from arguments and written to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Arguments are taken byte for byte; output is UTF-8 with every byte that is not printable text
    /// escaped (see [`escape`]), so nothing is changed silently.
    Text,
    /// Lowercase hex on output; either case on input.
    Hex,
    /// Standard base64 with padding on output; padding optional on input.
    Base64,
}

impl Encoding {
    /// The bytes an argument stands for.
    ///
    /// # Errors
    /// A message naming what is wrong with the hex or base64, or a non-UTF-8 argument on a platform
    /// without raw byte arguments.
    pub fn decode(self, arg: &OsStr) -> Result<Vec<u8>, String> {
        match self {
            Encoding::Text => os_bytes(arg),
            Encoding::Hex => hex_decode(&utf8_arg(arg)?),
            Encoding::Base64 => base64_decode(&utf8_arg(arg)?),
        }
    }

    /// `bytes` as this encoding prints them.
    pub fn encode(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Text => escape(bytes),
            Encoding::Hex => hex_encode(bytes),
            Encoding::Base64 => base64_encode(bytes),
        }
    }
}

#[cfg(unix)]
fn os_bytes(arg: &OsStr) -> Result<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    Ok(arg.as_bytes().to_vec())
}

#[cfg(not(unix))]
fn os_bytes(arg: &OsStr) -> Result<Vec<u8>, String> {
    utf8_arg(arg).map(String::into_bytes)
}

fn utf8_arg(arg: &OsStr) -> Result<String, String> {
    arg.to_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("argument {arg:?} is not UTF-8"))
}

/// UTF-8 text with `\\`, `\t`, `\n`, `\r`, other control characters (`\u{..}`) and every byte that is not
/// part of valid UTF-8 (`\xNN`) escaped: printable text passes unchanged, and the escaped form is
/// unambiguous (a backslash always starts an escape).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// The bytes of a hex string (either case, even length).
///
/// # Errors
/// An odd length or a character that is not a hex digit.
pub fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("hex {s:?} has an odd number of digits"));
    }
    let nibble = |c: u8| -> Result<u8, String> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or_else(|| format!("{:?} is not a hex digit (in {s:?})", char::from(c)))
    };
    digits
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Ok((nibble(*hi)? << 4) | nibble(*lo)?),
            _ => Err(format!("hex {s:?} has an odd number of digits")),
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let sym = |v: u32| char::from(B64[(v & 63) as usize]);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sym(n >> 18));
        out.push(sym(n >> 12));
        out.push(if chunk.len() > 1 { sym(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(n) } else { '=' });
    }
    out
}

/// The bytes of standard base64, padded or not.
///
/// # Errors
/// A character outside the alphabet, padding in the middle, a length no encoding has, or non-zero
/// bits left over in the last symbol (so each byte string has exactly one accepted spelling, padding
/// aside).
pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    let body = s.trim_end_matches('=');
    let pad = s.len() - body.len();
    if pad > 2 || (pad > 0 && !s.len().is_multiple_of(4)) || body.len() % 4 == 1 {
        return Err(format!(
            "{:?} is not valid base64 (bad length or padding)",
            short(s)
        ));
    }
    let value = |c: u8| -> Result<u32, String> {
        B64.iter()
            .position(|&x| x == c)
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| {
                format!(
                    "{:?} is not a base64 character (in {:?})",
                    char::from(c),
                    short(s)
                )
            })
    };
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let [_, b0, b1, b2] = n.to_be_bytes();
        let keep = chunk.len() - 1;
        let bytes = [b0, b1, b2];
        if bytes.iter().skip(keep).any(|&b| b != 0) {
            return Err(format!(
                "{:?} is not canonical base64 (stray bits)",
                short(s)
            ));
        }
        out.extend(bytes.iter().take(keep));
    }
    Ok(out)
}

fn short(s: &str) -> String {
    if s.len() <= 40 {
        return s.to_string();
    }
    let mut end = 40;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", s.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects() {
        assert_eq!(hex_encode(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(hex_decode("00ABff").unwrap(), vec![0, 0xab, 0xff]);
        assert_eq!(hex_decode("").unwrap(), Vec::<u8>::new());
        assert!(hex_decode("abc").is_err());
        assert!(hex_decode("zz").is_err());
    }

    #[test]
    fn base64_round_trips_and_rejects() {
        for (plain, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\xfe\x00", "//4A"),
        ] {
            assert_eq!(base64_encode(plain), enc);
            assert_eq!(base64_decode(enc).unwrap(), plain);
            assert_eq!(base64_decode(enc.trim_end_matches('=')).unwrap(), plain);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)).unwrap(), all);
        for bad in ["Z", "Zg=", "Zh==", "Z===", "Zm9v!", "Zg==Zg=="] {
            assert!(base64_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escape_is_unambiguous() {
        assert_eq!(escape(b"plain text"), "plain text");
        assert_eq!(escape("héllo".as_bytes()), "héllo");
        assert_eq!(escape(b"a\\b\tc\n"), "a\\\\b\\tc\\n");
        assert_eq!(escape(b"\x00\xff"), "\\u{0}\\xff");
    }
}
