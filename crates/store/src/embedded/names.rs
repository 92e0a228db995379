//! Tenant tables' names. SQLite compares identifiers without regard to ASCII case and reserves
//! names starting with `sqlite_`, and the store keeps its own tables (`ts_schema`) beside the
//! tenants'; a table named exactly as its tenant would let `globex` and `GLOBEX` share a table
//! and a tenant named `ts_schema` write into the catalog. So each tenant's table is
//! `tenant/<encoded id>`:
//!
//! - the prefix keeps every tenant table apart from SQLite's and the store's own names;
//! - the encoding holds no upper-case letter, so SQLite's case-insensitive comparison is exact
//!   on it: `a`–`z`, `0`–`9`, `_`, `.`, `-` stay, an upper-case letter becomes `^` and its
//!   lower-case form (`GLOBEX` → `^g^l^o^b^e^x`), any other byte `%` and two hex digits.
//!   Distinct ids always have distinct names, and the id reads back from the name.

/// What every tenant table's name starts with.
pub const PREFIX: &str = "tenant/";

/// The table holding `tenant`'s records.
pub fn table_name(tenant: &str) -> String {
    let mut name = String::with_capacity(PREFIX.len() + tenant.len() * 2);
    name.push_str(PREFIX);
    for b in tenant.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => name.push(char::from(b)),
            b'A'..=b'Z' => {
                name.push('^');
                name.push(char::from(b.to_ascii_lowercase()));
            }
            other => name.push_str(&format!("%{other:02x}")),
        }
    }
    name
}

/// The tenant whose table this is, if it is a tenant table.
pub fn tenant_of(table: &str) -> Option<String> {
    let encoded = table.strip_prefix(PREFIX)?.as_bytes();
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        match encoded[i] {
            b'^' => {
                let c = *encoded.get(i + 1).filter(|c| c.is_ascii_lowercase())?;
                bytes.push(c.to_ascii_uppercase());
                i += 2;
            }
            b'%' => {
                let hex = std::str::from_utf8(encoded.get(i + 1..i + 3)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            c => {
                bytes.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_without_regard_to_case_and_read_back() {
        let ids = [
            "globex",
            "GLOBEX",
            "Globex",
            "CaseTenant",
            "casetenant",
            "sqlite_master",
            "ts_schema",
            "a.b-c_9",
            "odd\"name%^",
        ];
        let names: Vec<String> = ids.iter().map(|id| table_name(id)).collect();
        for (i, a) in names.iter().enumerate() {
            assert!(a.starts_with(PREFIX));
            assert!(!a.bytes().any(|b| b.is_ascii_uppercase()), "{a}");
            assert_eq!(tenant_of(a).as_deref(), Some(ids[i]));
            for b in &names[i + 1..] {
                assert!(!a.eq_ignore_ascii_case(b), "{a} and {b}");
            }
        }
        assert_eq!(table_name("GLOBEX"), "tenant/^g^l^o^b^e^x");
        assert_eq!(tenant_of("ts_schema"), None);
        assert_eq!(tenant_of("tenant/^"), None);
        assert_eq!(tenant_of("tenant/%4"), None);
    }
}
