//! The container value types: what a [`CompactObj`](crate::compact::CompactObj) of
//! kind `Container` points to.
//!
//! ```text
//!   CompactObj (16 B, in the Dash slot)          heap
//!  ┌──────────────┬───────────────┬─────┬─────┐   ┌──────────────────────────┐
//!  │ *mut Container│ (unused)      │ 1|A │ tag │──▶│ Container::<Type>(...)   │
//!  └──────────────┴───────────────┴─────┴─────┘   └──────────────────────────┘
//! ```
//!
//! Strings live in the 16-byte object itself (inline, packed, integer or one heap
//! buffer); every other Redis type (lists, hashes, sets, sorted sets, streams — issue
//! 19 on) is a variant of [`Container`], boxed, its pointer in the object's first word.
//!
//! **Adding a type** is adding a variant here. Every method below matches on
//! `Container` without a wildcard, so the compiler then names each thing the new type
//! must provide: its TYPE name ([`Container::obj_type`]), its OBJECT ENCODING, its
//! memory accounting ([`Container::heap_bytes`], which MEMORY USAGE and used_memory
//! read), and its deep copy (COPY, RESTORE-like paths: [`Container::deep_clone`]).
//! `Drop` is the payload's own (the box is freed by `CompactObj`'s `Drop`), and the
//! payload must be `Send` (a value moves between shard threads; checked below).
//!
//! Today there is no container type for clients: `Container` is empty in the server,
//! and tests add one placeholder variant (`Probe`) so that the pointer kind's `Drop`,
//! `Clone`, equality and accounting are exercised (under Miri too).

/// The Redis type of a stored value (what TYPE answers, what a command expects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjType {
    String,
    /// The test placeholder's type ([`Container::Probe`]).
    #[cfg(test)]
    Probe,
}

impl ObjType {
    /// The name TYPE and SCAN ... TYPE use.
    pub fn name(self) -> &'static str {
        match self {
            ObjType::String => "string",
            #[cfg(test)]
            ObjType::Probe => "probe",
        }
    }
}

/// A value that is not a string, boxed behind a `Container`-kind `CompactObj`.
#[derive(Debug, PartialEq, Eq)]
pub enum Container {
    /// Test-only placeholder: a payload with its own heap buffer, so tests see that the
    /// pointer kind drops, clones and counts it. Never reachable by clients.
    #[cfg(test)]
    Probe(Vec<u8>),
}

// A value moves between shard threads (COPY/MOVE/RENAME carry owned entries).
const _: fn() = || {
    fn is_send<T: Send + Sync>() {}
    is_send::<Container>();
};

impl Container {
    /// The Redis type of this value.
    pub fn obj_type(&self) -> ObjType {
        match *self {
            #[cfg(test)]
            Container::Probe(_) => ObjType::Probe,
        }
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match *self {
            #[cfg(test)]
            Container::Probe(_) => "probe",
        }
    }

    /// Bytes this value owns on the heap, the `Container` box included (what MEMORY
    /// USAGE and used_memory count for it, as `CompactObj::heap_bytes` does for strings).
    pub fn heap_bytes(&self) -> usize {
        match *self {
            #[cfg(test)]
            Container::Probe(ref v) => std::mem::size_of::<Container>() + v.capacity(),
        }
    }

    /// A deep copy (COPY, and `Clone` of the object holding it).
    pub fn deep_clone(&self) -> Box<Container> {
        match *self {
            #[cfg(test)]
            Container::Probe(ref v) => Box::new(Container::Probe(v.clone())),
        }
    }
}
