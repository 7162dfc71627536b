//! Which columns of a source a stream table's plan can see: an UPDATE that leaves all of them as
//! they were changes nothing the plan computes, so its two images are left out of the window.
//!
//! **Rule.** For an UPDATE whose old and new images are binary-identical (`record_image_eq`,
//! so `1.0` and `1.00`, or `'a'` and `'A'` under a case-insensitive type, still differ) in every
//! relevant column, −old and +new are equal rows to every operator above the scan, which reads
//! no other column: their weights cancel in any linear delta rule, so leaving both out is exact.
//!
//! The relevant columns are the ones PostgreSQL's parser records as read by the defining query
//! (for column privilege checks; every level: FROM, WITH, sublinks), the source's primary key
//! (row identities are built from it) and pg_trickle's hidden columns. A query that reads a
//! whole row (`t.*` in an expression, `row_to_json(t)`) or a system column sees every column.

use super::SourceTable;

/// The attnums of `src`'s relevant columns, given `read`: the columns the query reads of it
/// (`None`: a whole row). `None` when every column is relevant (nothing to leave out).
pub fn attnums(src: &SourceTable, read: Option<&[i16]>) -> Option<Vec<i16>> {
    let read = read?;
    let pk = src.primary_key.clone().unwrap_or_default();
    let keep: Vec<i16> = src
        .columns
        .iter()
        .filter(|(a, n)| read.contains(a) || pk.contains(n) || n.starts_with("__pgt_"))
        .map(|(a, _)| *a)
        .collect();
    (keep.len() < src.columns.len()).then_some(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(pk: bool) -> SourceTable {
        SourceTable {
            quoted: "\"public\".\"t\"".into(),
            buffer: "\"pgtrickle_changes\".\"changes_1\"".into(),
            // attnum 3 was dropped.
            columns: vec![
                (1, "id".into()),
                (2, "grp".into()),
                (4, "val".into()),
                (5, "note".into()),
                (6, "__pgt_row_id".into()),
            ],
            primary_key: pk.then(|| vec!["id".into()]),
            own_param: 3,
            relevant: None,
        }
    }

    #[test]
    fn read_columns_the_key_and_hidden_columns_are_relevant() {
        assert_eq!(attnums(&src(true), Some(&[2, 4])), Some(vec![1, 2, 4, 6]));
        assert_eq!(attnums(&src(false), Some(&[4])), Some(vec![4, 6]));
        // count(*) reads no column.
        assert_eq!(attnums(&src(false), Some(&[])), Some(vec![6]));
    }

    #[test]
    fn a_whole_row_or_every_column_leaves_nothing_out() {
        assert_eq!(attnums(&src(true), None), None);
        assert_eq!(attnums(&src(true), Some(&[2, 4, 5])), None);
    }
}
