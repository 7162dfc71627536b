//! An in-memory multiset evaluator of the operators and of their delta rules, for property tests
//! (tier 1): for random tables and random change batches, the maintained result after applying a
//! batch's delta to the old result equals the result evaluated on the new table. The rules here
//! are the ones the module docs of [`super::scan`], [`super::join`], [`super::outer`], [`super::scalar`], [`super::setop`], [`super::recursive`], [`super::filter`], [`super::project`], [`super::bag`],
//! [`super::aggregate`] and [`super::distinct`] state and their SQL implements; the oracle
//! harness (tier 3) checks the SQL itself against PostgreSQL.

#![cfg(test)]

use proptest::prelude::*;
use std::collections::BTreeMap;

type Row = (Option<i8>, Option<i64>); // (grp, val)
/// A projected row: (grp, val * 2).
type Out = (Option<i8>, Option<i64>);

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Row),
    Update(u8, Row),
    Delete(u8),
}

/// A captured change: action with its old and new images (Scan's buffer rows).
type Change = (Option<Row>, Option<Row>);

fn apply(table: &mut BTreeMap<u8, Row>, ops: &[Op]) -> Vec<(u8, Change)> {
    let mut log = Vec::new();
    for op in ops {
        match op {
            Op::Insert(id, r) => {
                if !table.contains_key(id) {
                    table.insert(*id, *r);
                    log.push((*id, (None, Some(*r))));
                }
            }
            Op::Update(id, r) => {
                if let Some(old) = table.insert(*id, *r) {
                    log.push((*id, (Some(old), Some(*r))));
                } else {
                    table.remove(id);
                }
            }
            Op::Delete(id) => {
                if let Some(old) = table.remove(id) {
                    log.push((*id, (Some(old), None)));
                }
            }
        }
    }
    log
}

/// ΔScan: weighted images, −1 for old, +1 for new.
fn events(log: &[(u8, Change)]) -> Vec<(u8, Row, i64)> {
    let mut ev = Vec::new();
    for (id, (old, new)) in log {
        if let Some(o) = old {
            ev.push((*id, *o, -1));
        }
        if let Some(n) = new {
            ev.push((*id, *n, 1));
        }
    }
    ev
}

fn pred(r: &Row) -> bool {
    r.1.is_some_and(|v| v > 10)
}

fn project(r: &Row) -> Out {
    (r.0, r.1.map(|v| v * 2))
}

// ---- Filter + Project by primary key ------------------------------------------------------

fn rows_full(t: &BTreeMap<u8, Row>) -> BTreeMap<u8, Out> {
    t.iter()
        .filter(|(_, r)| pred(r))
        .map(|(id, r)| (*id, project(r)))
        .collect()
}

/// Δπσ: per identity, weights summed by content; +1 → upsert, lone −1 → delete.
fn rows_maintain(st: &mut BTreeMap<u8, Out>, ev: &[(u8, Row, i64)]) {
    let mut net: BTreeMap<(u8, Out), i64> = BTreeMap::new();
    for (id, r, w) in ev.iter().filter(|(_, r, _)| pred(r)) {
        *net.entry((*id, project(r))).or_default() += w;
    }
    let mut per_id: BTreeMap<u8, Vec<(Out, i64)>> = BTreeMap::new();
    for ((id, c), w) in net.into_iter().filter(|(_, w)| *w != 0) {
        per_id.entry(id).or_default().push((c, w));
    }
    for (id, mut v) in per_id {
        v.sort_by_key(|(_, w)| -w);
        let (c, w) = v[0];
        if w > 0 {
            st.insert(id, c);
        } else {
            st.remove(&id);
        }
    }
}

// ---- Filter + Project without a key: a multiset of numbered copies ------------------------

/// Copy identities per content: content -> numbers 1..c.
fn bag_full(t: &BTreeMap<u8, Row>) -> BTreeMap<Out, Vec<i64>> {
    let mut m: BTreeMap<Out, Vec<i64>> = BTreeMap::new();
    for r in t.values().filter(|r| pred(r)) {
        let copies = m.entry(project(r)).or_default();
        copies.push(copies.len() as i64 + 1);
    }
    m
}

/// ΔBag: net weight per content; +k adds copies c+1..c+k, −k removes copies c−k+1..c.
fn bag_maintain(st: &mut BTreeMap<Out, Vec<i64>>, ev: &[(u8, Row, i64)]) {
    let mut net: BTreeMap<Out, i64> = BTreeMap::new();
    for (_, r, w) in ev.iter().filter(|(_, r, _)| pred(r)) {
        *net.entry(project(r)).or_default() += w;
    }
    for (content, k) in net.into_iter().filter(|(_, k)| *k != 0) {
        let copies = st.entry(content).or_default();
        let c = copies.len() as i64;
        if k > 0 {
            copies.extend(c + 1..=c + k);
        } else {
            copies.retain(|&n| n <= c + k);
        }
        if copies.is_empty() {
            st.remove(&content);
        }
    }
}

// ---- Aggregate: GROUP BY grp, count(*), count(val), sum(val), min(val), max(val) ------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    count: i64,
    count_val: i64,
    sum: i64,
    n: i64,
    min: Option<i64>,
    max: Option<i64>,
}

fn group_state(rows: impl Iterator<Item = Row>) -> BTreeMap<Option<i8>, State> {
    let mut m: BTreeMap<Option<i8>, State> = BTreeMap::new();
    for (g, v) in rows {
        let s = m.entry(g).or_insert(State {
            count: 0,
            count_val: 0,
            sum: 0,
            n: 0,
            min: None,
            max: None,
        });
        s.count += 1;
        if let Some(v) = v {
            s.count_val += 1;
            s.sum += v;
            s.n += 1;
            s.min = Some(s.min.map_or(v, |m| m.min(v)));
            s.max = Some(s.max.map_or(v, |m| m.max(v)));
        }
    }
    m
}

fn having(s: &State) -> bool {
    s.count > 2
}

fn agg_full(t: &BTreeMap<u8, Row>, with_having: bool) -> BTreeMap<Option<i8>, State> {
    let mut m = group_state(t.values().copied().filter(pred));
    if with_having {
        m.retain(|_, s| having(s));
    }
    m
}

/// ΔAggregate: grouped deltas added to the stored state; a group whose extremum may have left,
/// or (with HAVING) that is not stored, is rescanned from the new table; count 0 deletes the
/// group; HAVING decides visibility on the new state.
fn agg_maintain(
    st: &mut BTreeMap<Option<i8>, State>,
    ev: &[(u8, Row, i64)],
    new_table: &BTreeMap<u8, Row>,
    with_having: bool,
) {
    #[derive(Default)]
    struct D {
        dc: i64,
        dcv: i64,
        dsum: i64,
        min_ins: Option<i64>,
        min_del: Option<i64>,
        max_ins: Option<i64>,
        max_del: Option<i64>,
    }
    let mut deltas: BTreeMap<Option<i8>, D> = BTreeMap::new();
    for (_, r, w) in ev.iter().filter(|(_, r, _)| pred(r)) {
        let d = deltas.entry(r.0).or_default();
        d.dc += w;
        if let Some(v) = r.1 {
            d.dcv += w;
            d.dsum += w * v;
            let (ins_min, ins_max, del_min, del_max) = (
                &mut d.min_ins,
                &mut d.max_ins,
                &mut d.min_del,
                &mut d.max_del,
            );
            if *w > 0 {
                *ins_min = Some(ins_min.map_or(v, |m| m.min(v)));
                *ins_max = Some(ins_max.map_or(v, |m| m.max(v)));
            } else {
                *del_min = Some(del_min.map_or(v, |m| m.min(v)));
                *del_max = Some(del_max.map_or(v, |m| m.max(v)));
            }
        }
    }
    for (g, d) in deltas {
        let old = st.get(&g).copied();
        let mut rescan = with_having && old.is_none();
        let o = old.unwrap_or(State {
            count: 0,
            count_val: 0,
            sum: 0,
            n: 0,
            min: None,
            max: None,
        });
        if let Some(del) = d.min_del {
            rescan |= o.min.is_none_or(|m| del <= m);
        }
        if let Some(del) = d.max_del {
            rescan |= o.max.is_none_or(|m| del >= m);
        }
        let new = if rescan {
            group_state(
                new_table
                    .values()
                    .copied()
                    .filter(pred)
                    .filter(|r| r.0 == g),
            )
            .get(&g)
            .copied()
        } else {
            let min = match (o.min, d.min_ins) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let max = match (o.max, d.max_ins) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Some(State {
                count: o.count + d.dc,
                count_val: o.count_val + d.dcv,
                sum: o.sum + d.dsum,
                n: o.n + d.dcv,
                min,
                max,
            })
        };
        match new {
            Some(s) if s.count > 0 && (!with_having || having(&s)) => {
                st.insert(g, s);
            }
            _ => {
                st.remove(&g);
            }
        }
    }
}

// ---- Inner join on grp ---------------------------------------------------------------------

/// The join result as a multiset of (left id, right id) pairs with multiplicity.
fn join_full(l: &BTreeMap<u8, Row>, r: &BTreeMap<u8, Row>) -> BTreeMap<(u8, u8), i64> {
    let mut m = BTreeMap::new();
    for (li, lr) in l {
        for (ri, rr) in r {
            if lr.0.is_some() && lr.0 == rr.0 {
                *m.entry((*li, *ri)).or_insert(0) += 1;
            }
        }
    }
    m
}

/// ΔL ⋈ R_old + L_new ⋈ ΔR, with R_old = R_new − ΔR as weighted rows.
fn join_delta(
    l_new: &BTreeMap<u8, Row>,
    r_new: &BTreeMap<u8, Row>,
    dl: &[(u8, Row, i64)],
    dr: &[(u8, Row, i64)],
) -> BTreeMap<(u8, u8), i64> {
    let mut r_old: Vec<(u8, Row, i64)> = r_new.iter().map(|(i, r)| (*i, *r, 1)).collect();
    r_old.extend(dr.iter().map(|(i, r, w)| (*i, *r, -w)));
    let l_now: Vec<(u8, Row, i64)> = l_new.iter().map(|(i, r)| (*i, *r, 1)).collect();
    let mut out: BTreeMap<(u8, u8), i64> = BTreeMap::new();
    let mut join = |left: &[(u8, Row, i64)], right: &[(u8, Row, i64)]| {
        for (li, lr, lw) in left {
            for (ri, rr, rw) in right {
                if lr.0.is_some() && lr.0 == rr.0 {
                    *out.entry((*li, *ri)).or_insert(0) += lw * rw;
                }
            }
        }
    };
    join(dl, &r_old);
    join(&l_now, dr);
    out
}

// ---- Outer join on grp --------------------------------------------------------------------

type Pair = (Option<u8>, Option<u8>);

/// L ⟕/⟖/⟗ R on grp as a multiset of (left id, right id), NULL-extended sides as None.
fn outer_full(
    l: &BTreeMap<u8, Row>,
    r: &BTreeMap<u8, Row>,
    keep: [bool; 2],
) -> BTreeMap<Pair, i64> {
    let mut m: BTreeMap<Pair, i64> = join_full(l, r)
        .into_iter()
        .map(|((a, b), w)| ((Some(a), Some(b)), w))
        .collect();
    let sides = [l, r];
    for p in 0..2 {
        if !keep[p] {
            continue;
        }
        for (id, row) in sides[p] {
            if !sides[1 - p]
                .values()
                .any(|o| row.0.is_some() && o.0 == row.0)
            {
                let k = if p == 0 {
                    (Some(*id), None)
                } else {
                    (None, Some(*id))
                };
                *m.entry(k).or_insert(0) += 1;
            }
        }
    }
    m
}

/// The outer join rule of [`super::outer`]: the inner delta, plus per preserved side P
/// ΔP·[¬ex_new] and, per key of the window's N images, the P rows as they were weighted by
/// before(K) − after(K), with before(K) = count_new(K) − Σ weights of N images with K > 0.
fn outer_delta(
    l_new: &BTreeMap<u8, Row>,
    r_new: &BTreeMap<u8, Row>,
    dl: &[(u8, Row, i64)],
    dr: &[(u8, Row, i64)],
    keep: [bool; 2],
) -> BTreeMap<Pair, i64> {
    let mut out: BTreeMap<Pair, i64> = join_delta(l_new, r_new, dl, dr)
        .into_iter()
        .map(|((a, b), w)| ((Some(a), Some(b)), w))
        .collect();
    let news = [l_new, r_new];
    let deltas = [dl, dr];
    for p in 0..2 {
        if !keep[p] {
            continue;
        }
        let n = 1 - p;
        let pair = |id: u8| {
            if p == 0 {
                (Some(id), None)
            } else {
                (None, Some(id))
            }
        };
        let has_partner = |g: Option<i8>| g.is_some() && news[n].values().any(|o| o.0 == g);
        for (id, row, w) in deltas[p] {
            if !has_partner(row.0) {
                *out.entry(pair(*id)).or_insert(0) += w;
            }
        }
        let mut sums: BTreeMap<Option<i8>, i64> = BTreeMap::new();
        for (_, row, w) in deltas[n] {
            *sums.entry(row.0).or_insert(0) += w;
        }
        for (g, sw) in sums {
            let count = news[n].values().filter(|o| g.is_some() && o.0 == g).count() as i64;
            let flip = i64::from(count - sw > 0) - i64::from(count > 0);
            // A NULL key equals nothing: no P row is joined to it.
            if flip == 0 || g.is_none() {
                continue;
            }
            for (id, _) in news[p].iter().filter(|(_, row)| row.0 == g) {
                *out.entry(pair(*id)).or_insert(0) += flip;
            }
            for (id, _, w) in deltas[p].iter().filter(|(_, row, _)| row.0 == g) {
                *out.entry(pair(*id)).or_insert(0) -= w * flip;
            }
        }
    }
    out
}

// ---- (L JOIN M) {LEFT | RIGHT | FULL} JOIN R on grp: one side is a join ------------------

type Triple = (Option<u8>, Option<u8>, Option<u8>);

/// The weighted rows of L ⋈ M on grp: ((l id, m id), grp, weight).
type PRows = Vec<((u8, u8), Option<i8>, i64)>;

fn p_rows(l: &[(u8, Row, i64)], m: &[(u8, Row, i64)]) -> PRows {
    let mut out = Vec::new();
    for (a, ra, wa) in l {
        for (b, rb, wb) in m {
            if ra.0.is_some() && ra.0 == rb.0 {
                out.push(((*a, *b), ra.0, wa * wb));
            }
        }
    }
    out
}

fn as_rows(t: &Table) -> Vec<(u8, Row, i64)> {
    t.iter().map(|(id, r)| (*id, *r, 1)).collect()
}

/// `keep` = [P's unmatched rows kept (LEFT), R's kept (RIGHT)].
fn chain_full(l: &Table, m: &Table, r: &Table, keep: [bool; 2]) -> BTreeMap<Triple, i64> {
    let mut out = BTreeMap::new();
    let p = p_rows(&as_rows(l), &as_rows(m));
    for ((a, b), g, w) in &p {
        let partners: Vec<u8> = r
            .iter()
            .filter(|(_, x)| g.is_some() && x.0 == *g)
            .map(|(id, _)| *id)
            .collect();
        if partners.is_empty() && keep[0] {
            *out.entry((Some(*a), Some(*b), None)).or_insert(0) += w;
        }
        for c in partners {
            *out.entry((Some(*a), Some(*b), Some(c))).or_insert(0) += w;
        }
    }
    if keep[1] {
        for (c, x) in r {
            if !p.iter().any(|(_, g, _)| g.is_some() && *g == x.0) {
                *out.entry((None, None, Some(*c))).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Left-deep: ΔP = ΔL ⋈ M_old + L_new ⋈ ΔM; the inner part ΔP ⋈ R_old + P_new ⋈ ΔR; P's
/// NULL-extended rows ΔP·[¬ex_new] + (P_new − ΔP)·flip(K) over the keys K of ΔR; R's the same
/// with the roles swapped (flips over the keys of ΔP, counted in the join P).
fn chain_delta(news: [&Table; 3], deltas: [&Events; 3], keep: [bool; 2]) -> BTreeMap<Triple, i64> {
    let old = |t: &Table, d: &Events| -> Vec<(u8, Row, i64)> {
        let mut v = as_rows(t);
        v.extend(d.iter().map(|(id, r, w)| (*id, *r, -w)));
        v
    };
    let (l_new, m_new, r_new) = (as_rows(news[0]), as_rows(news[1]), as_rows(news[2]));
    let mut dp = p_rows(deltas[0], &old(news[1], deltas[1]));
    dp.extend(p_rows(&l_new, deltas[1]));
    let p_new = p_rows(&l_new, &m_new);
    let r_old = old(news[2], deltas[2]);
    let mut out: BTreeMap<Triple, i64> = BTreeMap::new();
    let mut add = |k: Triple, w: i64| *out.entry(k).or_insert(0) += w;
    for ((a, b), g, w) in &dp {
        for (c, x, wr) in &r_old {
            if g.is_some() && x.0 == *g {
                add((Some(*a), Some(*b), Some(*c)), w * wr);
            }
        }
    }
    for ((a, b), g, w) in &p_new {
        for (c, x, wr) in deltas[2] {
            if g.is_some() && x.0 == *g {
                add((Some(*a), Some(*b), Some(*c)), w * wr);
            }
        }
    }
    let flip_of = |count: i64, sw: i64| i64::from(count - sw > 0) - i64::from(count > 0);
    if keep[0] {
        let has_partner = |g: Option<i8>| g.is_some() && r_new.iter().any(|(_, x, _)| x.0 == g);
        for ((a, b), g, w) in &dp {
            if !has_partner(*g) {
                add((Some(*a), Some(*b), None), *w);
            }
        }
        let mut sums: BTreeMap<Option<i8>, i64> = BTreeMap::new();
        for (_, x, w) in deltas[2] {
            *sums.entry(x.0).or_insert(0) += w;
        }
        for (g, sw) in sums {
            let count = r_new
                .iter()
                .filter(|(_, x, _)| g.is_some() && x.0 == g)
                .count() as i64;
            let flip = flip_of(count, sw);
            if flip == 0 || g.is_none() {
                continue;
            }
            for ((a, b), pg, w) in &p_new {
                if *pg == g {
                    add((Some(*a), Some(*b), None), w * flip);
                }
            }
            for ((a, b), pg, w) in &dp {
                if *pg == g {
                    add((Some(*a), Some(*b), None), -w * flip);
                }
            }
        }
    }
    if keep[1] {
        let has_partner = |g: Option<i8>| g.is_some() && p_new.iter().any(|(_, pg, _)| *pg == g);
        for (c, x, w) in deltas[2] {
            if !has_partner(x.0) {
                add((None, None, Some(*c)), *w);
            }
        }
        let mut sums: BTreeMap<Option<i8>, i64> = BTreeMap::new();
        for (_, g, w) in &dp {
            *sums.entry(*g).or_insert(0) += w;
        }
        for (g, sw) in sums {
            let count = p_new
                .iter()
                .filter(|(_, pg, _)| g.is_some() && *pg == g)
                .count() as i64;
            let flip = flip_of(count, sw);
            if flip == 0 || g.is_none() {
                continue;
            }
            for (c, x, _) in &r_new {
                if x.0 == g {
                    add((None, None, Some(*c)), flip);
                }
            }
            for (c, x, w) in deltas[2] {
                if x.0 == g {
                    add((None, None, Some(*c)), -w * flip);
                }
            }
        }
    }
    out
}

// ---- Semi-join (EXISTS) on grp ------------------------------------------------------------

/// L ⋉ R on grp: the ids of L rows with a partner.
fn semi_full(l: &BTreeMap<u8, Row>, r: &BTreeMap<u8, Row>) -> BTreeMap<u8, i64> {
    l.iter()
        .filter(|(_, row)| row.0.is_some() && r.values().any(|o| o.0 == row.0))
        .map(|(id, _)| (*id, 1))
        .collect()
}

/// ΔL·[ex_new] + L_old·(after(K) − before(K)) over the keys K of the window's R images.
fn semi_delta(
    l_new: &BTreeMap<u8, Row>,
    r_new: &BTreeMap<u8, Row>,
    dl: &[(u8, Row, i64)],
    dr: &[(u8, Row, i64)],
) -> BTreeMap<u8, i64> {
    let mut out: BTreeMap<u8, i64> = BTreeMap::new();
    let has_partner = |g: Option<i8>| g.is_some() && r_new.values().any(|o| o.0 == g);
    for (id, row, w) in dl {
        if has_partner(row.0) {
            *out.entry(*id).or_insert(0) += w;
        }
    }
    let mut sums: BTreeMap<Option<i8>, i64> = BTreeMap::new();
    for (_, row, w) in dr {
        *sums.entry(row.0).or_insert(0) += w;
    }
    for (g, sw) in sums {
        let count = r_new.values().filter(|o| g.is_some() && o.0 == g).count() as i64;
        let flip = i64::from(count > 0) - i64::from(count - sw > 0);
        if flip == 0 || g.is_none() {
            continue;
        }
        for (id, _) in l_new.iter().filter(|(_, row)| row.0 == g) {
            *out.entry(*id).or_insert(0) += flip;
        }
        for (id, _, w) in dl.iter().filter(|(_, row, _)| row.0 == g) {
            *out.entry(*id).or_insert(0) -= w * flip;
        }
    }
    out
}

type Table = BTreeMap<u8, Row>;
type Events = [(u8, Row, i64)];

// ---- Scalar subquery: F(k) = (count, sum) of R's rows with val > 10 and grp = k ------------

/// F's value: (count(*), sum(val)) over the rows of a key (over no rows: (0, NULL)).
type FVal = (i64, Option<i64>);

/// The key an R row or an L row is looked up by: its grp (correlated) or nothing.
fn fkey(row: &Row, correlated: bool) -> Option<Option<i8>> {
    if correlated {
        row.0.map(Some)
    } else {
        Some(None)
    }
}

fn fvalue<'a>(rows: impl Iterator<Item = (&'a Row, i64)>, k: Option<i8>, correlated: bool) -> FVal {
    let (mut n, mut s) = (0, None::<i64>);
    for (r, w) in rows {
        if pred(r) && fkey(r, correlated) == Some(k) {
            n += w;
            s = Some(s.unwrap_or(0) + w * r.1.unwrap_or(0));
        }
    }
    (n, if n == 0 { None } else { s })
}

/// A grouped subquery in FROM has no row for a key without rows (`GROUP BY`): the outer row
/// is dropped. A scalar subquery reads the value over no rows.
fn present(v: FVal, grouped: bool) -> Option<FVal> {
    (!grouped || v.0 != 0).then_some(v)
}

/// L ⋈ F: (L id, F(L's key)); a NULL key reads F over no rows (dropped when grouped).
fn scalar_full(l: &Table, r: &Table, correlated: bool, grouped: bool) -> BTreeMap<(u8, FVal), i64> {
    l.iter()
        .filter_map(|(id, row)| {
            let v = match fkey(row, correlated) {
                Some(k) => fvalue(r.values().map(|x| (x, 1)), k, correlated),
                None => (0, None),
            };
            Some(((*id, present(v, grouped)?), 1))
        })
        .collect()
}

/// ΔL ⋈ F_old + L_new ⋈ ΔF, F_old = F_new outside the affected keys A, and over R_new − ΔR
/// (netted) inside; ΔF = −old +new for the keys of A whose value changed.
fn scalar_delta(
    l_new: &Table,
    r_new: &Table,
    dl: &Events,
    dr: &Events,
    correlated: bool,
    grouped: bool,
) -> BTreeMap<(u8, FVal), i64> {
    let affected: std::collections::BTreeSet<Option<i8>> = dr
        .iter()
        .filter(|(_, r, _)| pred(r))
        .filter_map(|(_, r, _)| fkey(r, correlated))
        .collect();
    let new_rows = || r_new.values().map(|x| (x, 1));
    let old_rows = || new_rows().chain(dr.iter().map(|(_, x, w)| (x, -w)));
    let f_old = |k: Option<i8>| {
        if affected.contains(&k) {
            fvalue(old_rows(), k, correlated)
        } else {
            fvalue(new_rows(), k, correlated)
        }
    };
    let mut out: BTreeMap<(u8, FVal), i64> = BTreeMap::new();
    for (id, row, w) in dl {
        let v = match fkey(row, correlated) {
            Some(k) => f_old(k),
            None => (0, None),
        };
        if let Some(v) = present(v, grouped) {
            *out.entry((*id, v)).or_insert(0) += w;
        }
    }
    for k in &affected {
        let (o, n) = (
            present(fvalue(old_rows(), *k, correlated), grouped),
            present(fvalue(new_rows(), *k, correlated), grouped),
        );
        if o == n {
            continue;
        }
        for (id, _) in l_new
            .iter()
            .filter(|(_, row)| fkey(row, correlated) == Some(*k))
        {
            if let Some(o) = o {
                *out.entry((*id, o)).or_insert(0) -= 1;
            }
            if let Some(n) = n {
                *out.entry((*id, n)).or_insert(0) += 1;
            }
        }
    }
    out
}

/// A two-table operator's property: from `ops` = [left init, right init, left batch, right
/// batch], the result before the batches plus the delta equals the result after them.
fn two_sided<K: Ord + Clone + std::fmt::Debug>(
    ops: &[&Vec<Op>; 4],
    full: impl Fn(&Table, &Table) -> BTreeMap<K, i64>,
    delta: impl Fn(&Table, &Table, &Events, &Events) -> BTreeMap<K, i64>,
) -> Result<(), TestCaseError> {
    let (mut l, mut r) = (BTreeMap::new(), BTreeMap::new());
    apply(&mut l, ops[0]);
    apply(&mut r, ops[1]);
    let mut result = full(&l, &r);
    let (dl, dr) = (
        events(&apply(&mut l, ops[2])),
        events(&apply(&mut r, ops[3])),
    );
    for (k, w) in delta(&l, &r, &dl, &dr) {
        *result.entry(k).or_insert(0) += w;
    }
    result.retain(|_, w| *w != 0);
    prop_assert_eq!(result, full(&l, &r));
    Ok(())
}

// ---- INTERSECT ALL / EXCEPT ALL over grp ---------------------------------------------------

fn copies(intersect: bool, a: i64, b: i64) -> i64 {
    if intersect {
        a.min(b)
    } else {
        (a - b).max(0)
    }
}

fn grp_counts(t: &Table) -> BTreeMap<Option<i8>, i64> {
    let mut c = BTreeMap::new();
    for r in t.values() {
        *c.entry(r.0).or_insert(0) += 1;
    }
    c
}

/// `SELECT grp FROM l INTERSECT ALL | EXCEPT ALL SELECT grp FROM r`: copies by content (NULL is
/// one content).
fn setop_full(l: &Table, r: &Table, intersect: bool) -> BTreeMap<Option<i8>, i64> {
    let (cl, cr) = (grp_counts(l), grp_counts(r));
    cl.keys()
        .chain(cr.keys())
        .map(|g| {
            let n = copies(
                intersect,
                cl.get(g).copied().unwrap_or(0),
                cr.get(g).copied().unwrap_or(0),
            );
            (*g, n)
        })
        .filter(|(_, n)| *n != 0)
        .collect()
}

/// Per changed content: f(c1, c2) − f(c1 − Δc1, c2 − Δc2), the counts c looked up now.
fn setop_delta(
    l: &Table,
    r: &Table,
    dl: &Events,
    dr: &Events,
    intersect: bool,
) -> BTreeMap<Option<i8>, i64> {
    let mut d: BTreeMap<Option<i8>, (i64, i64)> = BTreeMap::new();
    for (_, row, w) in dl {
        d.entry(row.0).or_insert((0, 0)).0 += w;
    }
    for (_, row, w) in dr {
        d.entry(row.0).or_insert((0, 0)).1 += w;
    }
    let (cl, cr) = (grp_counts(l), grp_counts(r));
    d.into_iter()
        .map(|(g, (d1, d2))| {
            let (c1, c2) = (
                cl.get(&g).copied().unwrap_or(0),
                cr.get(&g).copied().unwrap_or(0),
            );
            (
                g,
                copies(intersect, c1, c2) - copies(intersect, c1 - d1, c2 - d2),
            )
        })
        .collect()
}

// ---- WITH RECURSIVE, semi-naive for inserts ------------------------------------------------

/// A path: its start (a base row) and the edges (step rows, by index) it followed.
type Path = (u8, Vec<(u8, u8)>);

/// All paths: from every base row, extended along step edges (a, b) with a < b (no cycles).
fn paths(base: &[u8], edges: &[(u8, u8)]) -> BTreeMap<Path, i64> {
    let mut out: BTreeMap<Path, i64> = BTreeMap::new();
    let mut frontier: Vec<Path> = base.iter().map(|b| (*b, Vec::new())).collect();
    while let Some(p) = frontier.pop() {
        let last = p.1.last().map(|e| e.1).unwrap_or(p.0);
        for e in edges.iter().filter(|e| e.0 == last) {
            let mut q = p.clone();
            q.1.push(*e);
            frontier.push(q);
        }
        *out.entry(p).or_insert(0) += 1;
    }
    out
}

/// The rule of [`super::recursive`]: closure under the new edges of (the base's weighted changes)
/// ⊎ (the edges' weighted changes appended to old paths), weights multiplied along a path.
fn paths_delta(
    old: &BTreeMap<Path, i64>,
    d_base: &[(u8, i64)],
    d_edges: &[((u8, u8), i64)],
    edges_now: &[(u8, u8)],
) -> BTreeMap<Path, i64> {
    let mut seeds: Vec<(Path, i64)> = d_base.iter().map(|(b, w)| ((*b, Vec::new()), *w)).collect();
    for (p, n) in old {
        let last = p.1.last().map(|e| e.1).unwrap_or(p.0);
        for (e, w) in d_edges.iter().filter(|(e, _)| e.0 == last) {
            let mut q = p.clone();
            q.1.push(*e);
            seeds.push((q, n * w));
        }
    }
    let mut out: BTreeMap<Path, i64> = BTreeMap::new();
    while let Some((p, w)) = seeds.pop() {
        let last = p.1.last().map(|e| e.1).unwrap_or(p.0);
        for e in edges_now.iter().filter(|e| e.0 == last) {
            let mut q = p.clone();
            q.1.push(*e);
            seeds.push((q, w));
        }
        *out.entry(p).or_insert(0) += w;
    }
    out.retain(|_, w| *w != 0);
    out
}

fn arb_row() -> impl Strategy<Value = Row> {
    (
        prop::option::weighted(0.85, 0i8..4),
        prop::option::weighted(0.85, 0i64..30),
    )
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..24, arb_row()).prop_map(|(i, r)| Op::Insert(i, r)),
        (0u8..24, arb_row()).prop_map(|(i, r)| Op::Update(i, r)),
        (0u8..24).prop_map(Op::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn filter_project_delta_is_exact(init in prop::collection::vec(arb_op(), 0..30),
                                     batches in prop::collection::vec(prop::collection::vec(arb_op(), 0..12), 1..6)) {
        let mut t = BTreeMap::new();
        apply(&mut t, &init);
        let mut st = rows_full(&t);
        for b in &batches {
            let log = apply(&mut t, b);
            rows_maintain(&mut st, &events(&log));
            prop_assert_eq!(&st, &rows_full(&t));
        }
    }

    #[test]
    fn keyless_project_delta_is_exact(init in prop::collection::vec(arb_op(), 0..30),
                                      batches in prop::collection::vec(prop::collection::vec(arb_op(), 0..12), 1..6)) {
        let mut t = BTreeMap::new();
        apply(&mut t, &init);
        let mut st = bag_full(&t);
        for b in &batches {
            let log = apply(&mut t, b);
            bag_maintain(&mut st, &events(&log));
            prop_assert_eq!(&st, &bag_full(&t));
        }
    }

    #[test]
    fn aggregate_delta_is_exact(init in prop::collection::vec(arb_op(), 0..30),
                                batches in prop::collection::vec(prop::collection::vec(arb_op(), 0..12), 1..6),
                                with_having in any::<bool>()) {
        let mut t = BTreeMap::new();
        apply(&mut t, &init);
        let mut st = agg_full(&t, with_having);
        for b in &batches {
            let log = apply(&mut t, b);
            agg_maintain(&mut st, &events(&log), &t, with_having);
            prop_assert_eq!(&st, &agg_full(&t, with_having));
        }
    }

    /// DISTINCT grp over a keyless multiset is the aggregate with only the count.
    #[test]
    fn distinct_delta_is_exact(init in prop::collection::vec(arb_op(), 0..30),
                               batches in prop::collection::vec(prop::collection::vec(arb_op(), 0..12), 1..6)) {
        let mut t = BTreeMap::new();
        apply(&mut t, &init);
        let distinct = |st: &BTreeMap<Option<i8>, State>| st.keys().copied().collect::<Vec<_>>();
        let mut st = agg_full(&t, false);
        for b in &batches {
            let log = apply(&mut t, b);
            agg_maintain(&mut st, &events(&log), &t, false);
            prop_assert_eq!(distinct(&st), distinct(&agg_full(&t, false)));
        }
    }

    /// Both sides of an inner join change in one window; the delta never counts ΔL ⋈ ΔR twice.
    #[test]
    fn join_delta_is_exact(l_init in prop::collection::vec(arb_op(), 0..20),
                           r_init in prop::collection::vec(arb_op(), 0..20),
                           l_batch in prop::collection::vec(arb_op(), 0..10),
                           r_batch in prop::collection::vec(arb_op(), 0..10)) {
        two_sided(&[&l_init, &r_init, &l_batch, &r_batch], join_full, join_delta)?;
    }

    /// LEFT, RIGHT and FULL joins with both sides changing in one window: NULL-extended rows
    /// appear and disappear as partners come and go.
    #[test]
    fn outer_join_delta_is_exact(l_init in prop::collection::vec(arb_op(), 0..20),
                                 r_init in prop::collection::vec(arb_op(), 0..20),
                                 l_batch in prop::collection::vec(arb_op(), 0..10),
                                 r_batch in prop::collection::vec(arb_op(), 0..10),
                                 kind in 0usize..3) {
        let keep = [[true, false], [false, true], [true, true]][kind];
        two_sided(
            &[&l_init, &r_init, &l_batch, &r_batch],
            |l, r| outer_full(l, r, keep),
            |l, r, dl, dr| outer_delta(l, r, dl, dr, keep),
        )?;
    }

    /// EXISTS with both sides changing in one window: rows enter and leave as partners come
    /// and go.
    #[test]
    fn semi_join_delta_is_exact(l_init in prop::collection::vec(arb_op(), 0..20),
                                r_init in prop::collection::vec(arb_op(), 0..20),
                                l_batch in prop::collection::vec(arb_op(), 0..10),
                                r_batch in prop::collection::vec(arb_op(), 0..10)) {
        two_sided(&[&l_init, &r_init, &l_batch, &r_batch], semi_full, semi_delta)?;
    }

    /// A scalar subquery (correlated by grp, and uncorrelated) or a grouped subquery in FROM
    /// joined by grp, with both tables changing in one window: values change for the affected
    /// keys only; NULL keys read the empty value (scalar) or nothing (grouped); groups that
    /// empty or appear drop or bring their outer rows.
    #[test]
    fn scalar_subquery_delta_is_exact(l_init in prop::collection::vec(arb_op(), 0..20),
                                      r_init in prop::collection::vec(arb_op(), 0..20),
                                      l_batch in prop::collection::vec(arb_op(), 0..10),
                                      r_batch in prop::collection::vec(arb_op(), 0..10),
                                      correlated in any::<bool>(),
                                      grouped in any::<bool>()) {
        two_sided(
            &[&l_init, &r_init, &l_batch, &r_batch],
            |l, r| scalar_full(l, r, correlated, grouped),
            |l, r, dl, dr| scalar_delta(l, r, dl, dr, correlated, grouped),
        )?;
    }

    /// INTERSECT ALL and EXCEPT ALL with both branches changing in one window, NULL contents
    /// included: the copies move by the change of min(c1, c2) or max(c1 − c2, 0) per content.
    #[test]
    fn multiset_setop_delta_is_exact(l_init in prop::collection::vec(arb_op(), 0..20),
                                     r_init in prop::collection::vec(arb_op(), 0..20),
                                     l_batch in prop::collection::vec(arb_op(), 0..10),
                                     r_batch in prop::collection::vec(arb_op(), 0..10),
                                     intersect in any::<bool>()) {
        two_sided(
            &[&l_init, &r_init, &l_batch, &r_batch],
            |l, r| setop_full(l, r, intersect),
            |l, r, dl, dr| setop_delta(l, r, dl, dr, intersect),
        )?;
    }

    /// `(L JOIN M) LEFT | RIGHT | FULL JOIN R`, all three tables changing in one window: the join
    /// so far is one side of the outer join.
    #[test]
    fn outer_join_after_a_join_delta_is_exact(inits in prop::collection::vec(prop::collection::vec(arb_op(), 0..12), 3),
                                              batches in prop::collection::vec(prop::collection::vec(arb_op(), 0..8), 3),
                                              kind in 0usize..3) {
        let keep = [[true, false], [false, true], [true, true]][kind];
        let mut t: Vec<Table> = vec![BTreeMap::new(), BTreeMap::new(), BTreeMap::new()];
        for (tab, ops) in t.iter_mut().zip(&inits) {
            apply(tab, ops);
        }
        let mut result = chain_full(&t[0], &t[1], &t[2], keep);
        let ev: Vec<Vec<(u8, Row, i64)>> = t
            .iter_mut()
            .zip(&batches)
            .map(|(tab, ops)| events(&apply(tab, ops)))
            .collect();
        for (k, w) in chain_delta([&t[0], &t[1], &t[2]], [&ev[0], &ev[1], &ev[2]], keep) {
            *result.entry(k).or_insert(0) += w;
        }
        result.retain(|_, w| *w != 0);
        prop_assert_eq!(result, chain_full(&t[0], &t[1], &t[2], keep));
    }

    /// A recursion's window of inserts and deletes of base rows and edges (an update is both):
    /// old paths plus the signed delta are exactly the new paths, duplicates counted.
    #[test]
    fn recursive_delta_is_exact(base in prop::collection::vec(0u8..6, 0..4),
                                edges in prop::collection::vec((0u8..8, 0u8..8), 0..12),
                                new_base in prop::collection::vec(0u8..6, 0..3),
                                new_edges in prop::collection::vec((0u8..8, 0u8..8), 0..6),
                                drop_base in prop::collection::vec(any::<bool>(), 4),
                                drop_edges in prop::collection::vec(any::<bool>(), 12)) {
        let acyclic = |v: Vec<(u8, u8)>| -> Vec<(u8, u8)> { v.into_iter().filter(|(a, b)| a < b).collect() };
        let (edges, new_edges) = (acyclic(edges), acyclic(new_edges));
        let old = paths(&base, &edges);
        let kept_base: Vec<u8> = base.iter().zip(&drop_base).filter(|(_, d)| !**d).map(|(b, _)| *b).collect();
        let kept_edges: Vec<(u8, u8)> = edges.iter().zip(&drop_edges).filter(|(_, d)| !**d).map(|(e, _)| *e).collect();
        let mut d_base: Vec<(u8, i64)> = base.iter().zip(&drop_base).filter(|(_, d)| **d).map(|(b, _)| (*b, -1)).collect();
        d_base.extend(new_base.iter().map(|b| (*b, 1)));
        let mut d_edges: Vec<((u8, u8), i64)> = edges.iter().zip(&drop_edges).filter(|(_, d)| **d).map(|(e, _)| (*e, -1)).collect();
        d_edges.extend(new_edges.iter().map(|e| (*e, 1)));
        let all_base: Vec<u8> = kept_base.iter().chain(&new_base).copied().collect();
        let all_edges: Vec<(u8, u8)> = kept_edges.iter().chain(&new_edges).copied().collect();
        let mut result = old.clone();
        for (p, n) in paths_delta(&old, &d_base, &d_edges, &all_edges) {
            *result.entry(p).or_insert(0) += n;
        }
        result.retain(|_, w| *w != 0);
        prop_assert_eq!(result, paths(&all_base, &all_edges));
    }

    /// Weights make the order of changes within a window irrelevant: any permutation of the
    /// window's images nets to the same delta.
    #[test]
    fn scan_delta_is_order_independent(init in prop::collection::vec(arb_op(), 0..20),
                                       batch in prop::collection::vec(arb_op(), 0..16),
                                       seed in any::<u64>()) {
        let mut t = BTreeMap::new();
        apply(&mut t, &init);
        let before = agg_full(&t, false);
        let log = apply(&mut t, &batch);
        let mut ev = events(&log);
        let mut s = seed | 1;
        for i in (1..ev.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            ev.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut st = before.clone();
        agg_maintain(&mut st, &ev, &t, false);
        prop_assert_eq!(st, agg_full(&t, false));
    }
}
