//! The order server-side apply gives a merged associative list (list-map or
//! set): items of the applied list in the applied order, items only the live
//! object has kept at their place among them, as structured-merge-diff does.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};

/// Merges `applied` into `live`, identifying items by `key` and combining a
/// live item (if any) with its applied item by `merge`.
pub fn merge_list(
    live: Vec<Value>,
    applied: &[Value],
    key: impl Fn(&Value) -> Option<String>,
    mut merge: impl FnMut(Option<Value>, &Value) -> Value,
) -> Vec<Value> {
    let lkeys: Vec<Option<String>> = live.iter().map(&key).collect();
    let rkeys: Vec<Option<String>> = applied.iter().map(&key).collect();
    let lindex: HashMap<&str, usize> = lkeys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.as_deref().map(|k| (k, i)))
        .collect();
    let rset: HashSet<&str> = rkeys.iter().filter_map(|k| k.as_deref()).collect();
    let mut shared: VecDeque<&str> = rkeys
        .iter()
        .filter_map(|k| k.as_deref())
        .filter(|k| lindex.contains_key(k))
        .collect();
    let mut next_shared = shared.pop_front();
    let mut live: Vec<Option<Value>> = live.into_iter().map(Some).collect();
    let mut merged: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(live.len() + applied.len());
    let (ll, rl) = (live.len(), applied.len());
    let (mut li, mut ri) = (0, 0);
    while li < ll || ri < rl {
        let lk = lkeys.get(li).and_then(|k| k.as_deref());
        if li < ll && ri < rl {
            let rk = rkeys[ri].as_deref();
            if lk.is_some() && lk == rk {
                if let Some(k) = lk {
                    merged.insert(k);
                }
                out.push(merge(live[li].take(), &applied[ri]));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if lk.is_some_and(|k| rset.contains(k)) && next_shared.is_some() && next_shared != lk {
                li += 1;
                continue;
            }
        }
        if li < ll {
            match lk {
                Some(k) if rset.contains(k) => {
                    if merged.contains(k) {
                        li += 1;
                        continue;
                    }
                }
                _ => {
                    if let Some(v) = live[li].take() {
                        out.push(v);
                    }
                    li += 1;
                    continue;
                }
            }
        }
        if ri < rl {
            let rk = rkeys[ri].as_deref();
            let from_live = rk.and_then(|k| lindex.get(k)).and_then(|i| live[*i].take());
            if let Some(k) = rk {
                merged.insert(k);
            }
            out.push(merge(from_live, &applied[ri]));
            if rk.is_some() && next_shared == rk {
                next_shared = shared.pop_front();
            }
            ri += 1;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[Value]) -> Vec<&str> {
        list.iter().map(|v| v["name"].as_str().unwrap()).collect()
    }

    fn run(live: Value, applied: Value) -> Vec<Value> {
        let live = live.as_array().unwrap().clone();
        merge_list(
            live,
            applied.as_array().unwrap(),
            |v| v["name"].as_str().map(str::to_string),
            |l, a| {
                let mut out = l.unwrap_or_else(|| json!({}));
                out["name"] = a["name"].clone();
                out["applied"] = json!(true);
                out
            },
        )
    }

    #[test]
    fn applied_order_wins_and_live_only_items_keep_their_place() {
        let out = run(
            json!([{"name": "a"}, {"name": "b"}]),
            json!([{"name": "c"}, {"name": "a"}]),
        );
        assert_eq!(names(&out), ["c", "a", "b"]);
        let out = run(
            json!([{"name": "a"}, {"name": "x"}, {"name": "b"}]),
            json!([{"name": "b"}, {"name": "a"}]),
        );
        assert_eq!(names(&out), ["x", "b", "a"]);
        assert!(out.iter().all(|v| v["name"] == "x" || v["applied"] == true));
        let out = run(json!([{"name": "a"}]), json!([{"name": "a"}, {"name": "n"}]));
        assert_eq!(names(&out), ["a", "n"]);
    }
}
