//! The message format of pg_trickle's logical decoding output plugin (`output_plugin/`, whose
//! crate doc describes it), and a reader for it. The plugin takes [`VERSION`] from here and the
//! consumer and the tests decode with [`decode`], so writer and reader cannot drift apart.

/// The format version written in every message.
pub const VERSION: u8 = 1;

/// One column of a row image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Null,
    /// An unchanged TOASTed value the WAL does not carry.
    Unchanged,
    /// The value in its type's text output form.
    Text(String),
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Change {
        action: u8,
        relid: u32,
        xid: u32,
        lsn: u64,
        /// (attribute number, value) per live column.
        old: Option<Vec<(u16, Value)>>,
        new: Option<Vec<(u16, Value)>>,
    },
    Commit {
        xid: u32,
        lsn: u64,
        /// Microseconds since 2000-01-01 UTC.
        time: i64,
    },
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("message truncated at byte {} (wanted {n} more)", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn tuple(&mut self) -> Result<Option<Vec<(u16, Value)>>, String> {
        if self.u8()? == 0 {
            return Ok(None);
        }
        let n = self.u16()?;
        let mut cols = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let attnum = self.u16()?;
            let v = match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    let bytes = self.take(len)?;
                    Value::Text(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| "a value that is not UTF-8".to_string())?,
                    )
                }
                k => return Err(format!("unknown value kind {k}")),
            };
            cols.push((attnum, v));
        }
        Ok(Some(cols))
    }
}

/// Decodes one message.
pub fn decode(b: &[u8]) -> Result<Message, String> {
    let mut r = Reader { b, at: 0 };
    let tag = r.u8()?;
    let version = r.u8()?;
    if version != VERSION {
        return Err(format!("format version {version}, expected {VERSION}"));
    }
    let m = match tag {
        b'C' => {
            let action = r.u8()?;
            let relid = r.u32()?;
            let xid = r.u32()?;
            let lsn = r.u64()?;
            let old = r.tuple()?;
            let new = r.tuple()?;
            Message::Change {
                action,
                relid,
                xid,
                lsn,
                old,
                new,
            }
        }
        b'X' => Message::Commit {
            xid: r.u32()?,
            lsn: r.u64()?,
            time: r.u64()? as i64,
        },
        t => return Err(format!("unknown message tag {t}")),
    };
    if r.at != b.len() {
        return Err(format!("{} trailing bytes", b.len() - r.at));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_change_and_refuses_garbage() {
        let mut b = vec![b'C', VERSION, b'U'];
        b.extend_from_slice(&42u32.to_be_bytes());
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(&99u64.to_be_bytes());
        b.push(0);
        b.push(1);
        b.extend_from_slice(&2u16.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        b.push(b't');
        b.extend_from_slice(&3u32.to_be_bytes());
        b.extend_from_slice(b"a b");
        b.extend_from_slice(&2u16.to_be_bytes());
        b.push(b'n');
        assert_eq!(
            decode(&b).unwrap(),
            Message::Change {
                action: b'U',
                relid: 42,
                xid: 7,
                lsn: 99,
                old: None,
                new: Some(vec![(1, Value::Text("a b".into())), (2, Value::Null)]),
            }
        );
        assert!(decode(&b[..b.len() - 1]).unwrap_err().contains("truncated"));
        let mut v2 = b.clone();
        v2[1] = 2;
        assert!(decode(&v2).unwrap_err().contains("version"));
    }
}
