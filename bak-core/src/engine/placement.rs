//! Which taker takes item n of an [`Ordered`](super::Ordered) hand-out: which family a block
//! goes to.

/// A placement policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Whoever is free takes the next item: a slow device takes fewer blocks instead of
    /// stalling the others. The placement of bak media without parity.
    FirstFree,
    /// Item n goes to taker n mod `takers`: each stripe of consecutive items lies on distinct
    /// takers, as parity needs (a fast device taking two blocks of one stripe would defeat it).
    Rotation {
        /// How many takers share the items.
        takers: usize,
    },
}

impl Placement {
    /// May `taker` take item `seq`?
    pub fn may_take(&self, taker: usize, seq: u64) -> bool {
        match *self {
            Placement::FirstFree => true,
            Placement::Rotation { takers } => seq % takers.max(1) as u64 == taker as u64,
        }
    }

    /// True when any taker may take any item (so waking one waiter is enough).
    pub fn any_taker(&self) -> bool {
        matches!(self, Placement::FirstFree)
    }
}
