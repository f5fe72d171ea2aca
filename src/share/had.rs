//! What the share held before: for each name, the md5s of its last few
//! versions that were replaced or removed since the share was opened.
//! A peer that copied one of them from here is behind, not changed (see
//! the Sync planner). Bounded: [`PER_NAME`] md5s a name, [`NAMES`] names,
//! the oldest name forgotten first; forgetting costs at worst a conflict
//! copy, never a byte.

use std::collections::{HashMap, VecDeque};

use super::hash::Md5;
use super::Share;

/// md5s kept per name, the newest last.
pub const PER_NAME: usize = 8;

/// Names kept at most.
pub const NAMES: usize = 65_536;

/// Earlier versions by name, with the order the names came in.
#[derive(Debug, Default)]
pub struct Had {
    by_name: HashMap<String, VecDeque<Md5>>,
    order: VecDeque<String>,
}

impl Had {
    /// Notes that `name` held the version `md5`, which is gone now.
    pub fn note(&mut self, name: &str, md5: Md5) {
        if let Some(v) = self.by_name.get_mut(name) {
            v.retain(|m| *m != md5);
            v.push_back(md5);
            if v.len() > PER_NAME {
                v.pop_front();
            }
            return;
        }
        if self.by_name.len() >= NAMES {
            if let Some(oldest) = self.order.pop_front() {
                self.by_name.remove(&oldest);
            }
        }
        self.by_name.insert(name.to_string(), VecDeque::from([md5]));
        self.order.push_back(name.to_string());
    }

    /// Every name's earlier md5s, oldest first.
    pub fn all(&self) -> impl Iterator<Item = (&String, &VecDeque<Md5>)> {
        self.by_name.iter()
    }
}

impl Share {
    /// The md5s of earlier versions of each name, replaced or removed
    /// since the share was opened (`PER_NAME` a name at most, of
    /// `NAMES` names): what this side had, and a peer may have
    /// copied from here.
    pub fn had(&self) -> Vec<(String, Vec<Md5>)> {
        let had = self.had.lock().unwrap_or_else(|e| e.into_inner());
        had.all()
            .map(|(n, v)| (n.clone(), v.iter().copied().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_stays_bounded() {
        let mut h = Had::default();
        for i in 0..(PER_NAME as u8 + 3) {
            h.note("a", Md5([i; 16]));
        }
        h.note("a", Md5([3; 16]));
        let a: Vec<Md5> = h.all().next().unwrap().1.iter().copied().collect();
        assert_eq!(a.len(), PER_NAME);
        assert_eq!(a.last(), Some(&Md5([3; 16])));
        for i in 0..NAMES + 5 {
            h.note(&format!("n{i}"), Md5([1; 16]));
        }
        assert_eq!(h.all().count(), NAMES);
        assert!(h.all().all(|(n, _)| n != "a" && n != "n0"));
    }
}
