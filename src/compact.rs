//! The 16-byte object every key and value is stored as.
//!
//! ```text
//!   byte     0 ........ 7   8 ............ 13    14      15
//!           ┌─────────────┬──────────────────┬───────┬───────┐
//! Inline    │ bytes 0..8  │ bytes 8..14      │ n|A   │ 0|..  │  strings of 0..=14 bytes (n = len)
//! Packed    │ 7-bit chars packed LE (112 bits) │ n|A   │ 1|..  │  ASCII strings of 15..=16 bytes (n = len - 1)
//! Int       │ i64         │ (unused)         │ 0|A   │ 2|..  │  canonical integers (values only)
//! Container │ *mut Container (unused)        │ 1|A   │ 2|..  │  other types, boxed (values only)
//! Heap      │ *mut u8     │ len (48 bits LE) │ 0|A   │ 3|..  │  longer strings, one allocation
//!           └─────────────┴──────────────────┴───────┴───────┘
//!   byte 14 = n (bits 0..4, the length nibble) | access stamp bits 0..4 (bits 4..8)
//!   tag     = kind bits (bits 0..2) | access stamp bits 4..8 (bits 2..6)
//!             | FLAG_EXPIRE (bit 6) | FLAG_RAW (bit 7)
//! ```
//!
//! **Kinds.** The tag's two kind bits and, for kind bits 2, the length nibble (which
//! an integer or a pointer does not need: 0 = Int, 1 = Container) decode to [`Kind`].
//! Every method whose meaning depends on the kind matches on `Kind` without a
//! wildcard, so a new kind is a compile error at each site that must handle it (Drop,
//! Clone, length, bytes, encoding, memory). A `Container` object owns a
//! `Box<`[`Container`]`>` (`crate::container`: lists, hashes, sets... from issue 19),
//! which in turn must say its type, encoding, heap bytes and deep copy by an
//! exhaustive match there. String accessors (`len`, `bytes`, `eq_bytes`...) treat a
//! container as the empty string and [`CompactObj::string_bytes`] as no string at
//! all: callers check the type first ([`CompactObj::obj_type`], `Db::lookup_typed`).
//!
//! **Access stamp** (`A`, 8 bits): spare bits of every kind — the high nibble of byte 14
//! (an inline length is at most 14 and a packed one is stored minus one, so one nibble
//! holds both; HEAP and INT leave the byte unused) and the four tag bits the four kinds
//! do not need. The keyspace keeps a key's last access time there (`store::Db`: OBJECT
//! IDLETIME), so it costs no memory. It lives in the *key* object, which stays in place
//! while the item lives (a value is replaced by every SET). Every constructor writes 0;
//! [`CompactObj::clone`] keeps it.
//!
//! A Dash slot holds a key object and a value object: 32 bytes per item, no allocation
//! for keys up to 16 ASCII bytes (`key:000000123456` is 16) or values up to 14 bytes or
//! integers. Heap strings have no header: the buffer's capacity is a function of the
//! length ([`heap_cap`]), so the length is all the object stores. Strings changed in
//! place (APPEND, SETRANGE) carry `FLAG_RAW` and get growable capacity (powers of two up
//! to 1 MiB, then whole MiBs), so repeated appends are amortised like Redis's sds.
//!
//! `OBJECT ENCODING` comes from the kind and `FLAG_RAW`, as Redis would report the same
//! value: `int` for INT, `raw` for FLAG_RAW or more than 44 bytes, `embstr` otherwise.
//!
//! `FLAG_EXPIRE` is free for the keyspace: on a key it says the key has a deadline in
//! the expire table, so a lookup of a key without one never probes that table.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error, realloc};
use std::borrow::Cow;

use crate::container::{Container, ObjType};

#[derive(Clone, Copy)]
#[repr(C)]
union Word {
    ptr: *mut u8,
    bytes: [u8; 8],
    int: i64,
}

/// A key or string value in 16 bytes (see the module doc for the layout).
#[repr(C, align(8))]
pub struct CompactObj {
    w0: Word,
    w1: [u8; 8],
}

const _: () = assert!(std::mem::size_of::<CompactObj>() == 16);
const _: () = assert!(std::mem::align_of::<CompactObj>() == 8);

const KIND_MASK: u8 = 0x03;
/// The tag bits holding the access stamp's high nibble.
const TAG_ACCESS_MASK: u8 = 0x3c;
/// Byte 14's length nibble (INLINE: len; PACKED: len - 1).
const LEN_NIBBLE: u8 = 0x0f;
// The tag's kind bits.
const INLINE: u8 = 0;
const PACKED: u8 = 1;
/// Int or Container, told apart by the length nibble ([`BOXED`]).
const INT: u8 = 2;
const HEAP: u8 = 3;
/// The length nibble of a Container object (an Int's is 0).
const BOXED: u8 = 1;

/// What an object holds (see the module doc). Matched without wildcards: adding a
/// kind makes every site that must handle it a compile error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string of 0..=14 bytes in the object.
    Inline,
    /// An ASCII string of 15..=16 bytes, 7 bits a character, in the object.
    Packed,
    /// A canonical integer (encoding `int`).
    Int,
    /// A longer string in one heap buffer.
    Heap,
    /// A boxed [`Container`] (a value of another Redis type).
    Container,
}

/// The string was changed in place (APPEND, SETRANGE): encoding `raw`, growable buffer.
pub const FLAG_RAW: u8 = 0x80;
/// On a key: the key has a deadline in the expire table.
pub const FLAG_EXPIRE: u8 = 0x40;

/// Most bytes stored inline.
pub const INLINE_BYTES: usize = 14;
/// Most ASCII bytes stored packed (7 bits each).
pub const PACKED_BYTES: usize = 16;
/// Longest string Redis stores as `embstr`.
const EMBSTR_MAX: usize = 44;
const MAX_HEAP_LEN: usize = (1 << 48) - 1;

/// Capacity of the heap buffer of a `FLAG_RAW` string of `len` bytes: the next power of
/// two up to 1 MiB, then the next whole MiB. A step function, so appending within a
/// step needs no reallocation and the capacity never has to be stored.
#[inline]
pub fn heap_cap_raw(len: usize) -> usize {
    const MIB: usize = 1 << 20;
    if len <= MIB { len.next_power_of_two() } else { len.div_ceil(MIB) * MIB }
}

/// Packs 15..=16 ASCII bytes into 14 bytes, 7 bits each, or None if any byte is not ASCII.
#[inline]
fn pack(b: &[u8]) -> Option<[u8; 14]> {
    debug_assert!((INLINE_BYTES + 1..=PACKED_BYTES).contains(&b.len()));
    let mut v: u128 = 0;
    let mut hi = 0u8;
    for (i, &c) in b.iter().enumerate() {
        hi |= c;
        v |= (c as u128) << (7 * i);
    }
    if hi & 0x80 != 0 {
        return None;
    }
    let mut out = [0u8; 14];
    out.copy_from_slice(&v.to_le_bytes()[..14]);
    Some(out)
}

#[inline]
fn unpack(p: &[u8; 14], len: usize, out: &mut [u8]) {
    let mut w = [0u8; 16];
    w[..14].copy_from_slice(p);
    let v = u128::from_le_bytes(w);
    for (i, o) in out[..len].iter_mut().enumerate() {
        *o = ((v >> (7 * i)) & 0x7f) as u8;
    }
}

/// Writes `n` in decimal at the start of `buf`; returns the length. The digits come
/// from the one integer printer, [`crate::util::format_u64`].
#[inline]
fn fmt_i64(n: i64, buf: &mut ScratchBuf) -> usize {
    let mut digits = [0u8; crate::util::MAX_U64_DIGITS];
    let start = crate::util::format_u64(n.unsigned_abs(), &mut digits);
    let sign = usize::from(n < 0);
    buf[0] = b'-';
    let len = sign + digits.len() - start;
    buf[sign..len].copy_from_slice(&digits[start..]);
    len
}

/// A buffer big enough for any inline, packed or integer object's bytes
/// (`-9223372036854775808` is 20).
pub type ScratchBuf = [u8; 20];

impl CompactObj {
    /// The empty string.
    pub const EMPTY: CompactObj = CompactObj { w0: Word { bytes: [0; 8] }, w1: [0; 8] };

    #[inline(always)]
    fn tag(&self) -> u8 {
        self.w1[7]
    }

    /// The object's kind, decoded from the tag and the length nibble.
    #[inline(always)]
    pub fn kind(&self) -> Kind {
        match self.tag() & KIND_MASK {
            INLINE => Kind::Inline,
            PACKED => Kind::Packed,
            INT if self.w1[6] & LEN_NIBBLE == BOXED => Kind::Container,
            INT => Kind::Int,
            HEAP => Kind::Heap,
            // Two kind bits: no other value (the compiler drops this arm).
            4..=u8::MAX => unreachable!("kind bits are masked to 0..=3"),
        }
    }

    /// The flag bits (`FLAG_RAW`, `FLAG_EXPIRE`).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.tag() & (FLAG_RAW | FLAG_EXPIRE)
    }

    /// The 8-bit access stamp kept in spare bits (see the module doc; 0 when built).
    #[inline(always)]
    pub fn access(&self) -> u8 {
        (self.w1[6] >> 4) | ((self.tag() & TAG_ACCESS_MASK) << 2)
    }

    /// Sets the access stamp; the string, its kind and flags are unchanged.
    #[inline(always)]
    pub fn set_access(&mut self, a: u8) {
        self.w1[6] = (self.w1[6] & LEN_NIBBLE) | (a << 4);
        self.w1[7] = (self.w1[7] & !TAG_ACCESS_MASK) | ((a >> 4) << 2);
    }

    /// Length of an INLINE or PACKED object, from byte 14's nibble.
    #[inline(always)]
    fn short_len(&self) -> usize {
        let n = (self.w1[6] & LEN_NIBBLE) as usize;
        if self.kind() == Kind::Packed { n + 1 } else { n }
    }

    /// True if `FLAG_EXPIRE` is set.
    #[inline(always)]
    pub fn has_expire(&self) -> bool {
        self.tag() & FLAG_EXPIRE != 0
    }

    /// Sets or clears `FLAG_EXPIRE` (the only flag that does not change the encoding).
    #[inline(always)]
    pub fn set_expire_flag(&mut self, on: bool) {
        if on {
            self.w1[7] |= FLAG_EXPIRE;
        } else {
            self.w1[7] &= !FLAG_EXPIRE;
        }
    }

    fn inline(b: &[u8], flags: u8) -> CompactObj {
        debug_assert!(b.len() <= INLINE_BYTES);
        let mut all = [0u8; 16];
        all[..b.len()].copy_from_slice(b);
        all[14] = b.len() as u8;
        all[15] = INLINE | flags;
        Self::from_16(all)
    }

    fn from_16(all: [u8; 16]) -> CompactObj {
        let mut w0 = [0u8; 8];
        let mut w1 = [0u8; 8];
        w0.copy_from_slice(&all[..8]);
        w1.copy_from_slice(&all[8..]);
        CompactObj { w0: Word { bytes: w0 }, w1 }
    }

    /// The 14 data bytes of an INLINE or PACKED object.
    #[inline(always)]
    fn data14(&self) -> [u8; 14] {
        debug_assert!(matches!(self.kind(), Kind::Inline | Kind::Packed));
        let mut d = [0u8; 14];
        // SAFETY: INLINE and PACKED objects are only ever written through `bytes`
        // (`from_16`), so `w0` holds plain bytes.
        d[..8].copy_from_slice(unsafe { &self.w0.bytes });
        d[8..].copy_from_slice(&self.w1[..6]);
        d
    }

    fn heap(b: &[u8], cap: usize, flags: u8) -> CompactObj {
        assert!(b.len() <= MAX_HEAP_LEN && cap >= b.len() && cap > 0);
        let layout = Layout::from_size_align(cap, 1).expect("string size fits a Layout");
        // SAFETY: `layout` has non-zero size (cap > 0, asserted).
        let ptr = unsafe { alloc(layout) };
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: `ptr` is a fresh allocation of `cap >= b.len()` bytes that cannot
        // overlap `b`.
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), ptr, b.len()) };
        Self::heap_from_raw(ptr, b.len(), flags)
    }

    fn heap_from_raw(ptr: *mut u8, len: usize, flags: u8) -> CompactObj {
        let mut w1 = [0u8; 8];
        w1[..6].copy_from_slice(&(len as u64).to_le_bytes()[..6]);
        w1[7] = HEAP | flags;
        CompactObj { w0: Word { ptr }, w1 }
    }

    #[inline(always)]
    fn heap_len(&self) -> usize {
        let mut l = [0u8; 8];
        l[..6].copy_from_slice(&self.w1[..6]);
        u64::from_le_bytes(l) as usize
    }

    /// Capacity of a HEAP object's buffer.
    #[inline(always)]
    fn heap_cap(&self) -> usize {
        let len = self.heap_len();
        if self.tag() & FLAG_RAW != 0 { heap_cap_raw(len) } else { len }
    }

    /// A plain string (never an integer): inline, packed or on the heap.
    fn plain(b: &[u8], flags: u8) -> CompactObj {
        if b.len() <= INLINE_BYTES {
            return Self::inline(b, flags);
        }
        if b.len() <= PACKED_BYTES
            && let Some(p) = pack(b)
        {
            let mut all = [0u8; 16];
            all[..14].copy_from_slice(&p);
            all[14] = (b.len() - 1) as u8; // 14 or 15: fits the nibble
            all[15] = PACKED | flags;
            return Self::from_16(all);
        }
        Self::heap(b, b.len(), flags)
    }

    /// A key object: the bytes as they are (no integer encoding).
    #[inline]
    pub fn key(b: &[u8]) -> CompactObj {
        Self::plain(b, 0)
    }

    /// A string value as Redis's `tryObjectEncoding` would store it: canonical integers
    /// of up to 20 characters as integers, other strings as bytes (`embstr`/`raw` by length).
    #[inline]
    pub fn from_bytes(b: &[u8]) -> CompactObj {
        if b.len() <= 20
            && let Some(n) = crate::util::parse_i64(b)
        {
            return Self::from_int(n);
        }
        Self::plain(b, 0)
    }

    /// A string value kept as text even if it looks like an integer (INCRBYFLOAT results).
    #[inline]
    pub fn from_text(b: &[u8]) -> CompactObj {
        Self::plain(b, 0)
    }

    /// A string value with encoding `raw` (built in place: SETRANGE on a missing key).
    pub fn from_raw_vec(v: Vec<u8>) -> CompactObj {
        Self::raw_from_vec(v, 0)
    }

    /// An integer value (encoding `int`).
    #[inline]
    pub fn from_int(n: i64) -> CompactObj {
        let mut w1 = [0u8; 8];
        w1[7] = INT;
        CompactObj { w0: Word { int: n }, w1 }
    }

    /// A value of another type: the object owns `c` (freed by `Drop`, deep-copied by
    /// `Clone`).
    pub fn from_container(c: Box<Container>) -> CompactObj {
        let mut w1 = [0u8; 8];
        w1[6] = BOXED;
        w1[7] = INT;
        CompactObj { w0: Word { ptr: Box::into_raw(c).cast::<u8>() }, w1 }
    }

    /// The container of a Container object, None for strings.
    #[inline]
    pub fn container(&self) -> Option<&Container> {
        match self.kind() {
            // SAFETY: a Container object owns the `Box<Container>` whose pointer
            // `from_container` stored in `w0.ptr`; the borrow of `self` keeps it alive.
            Kind::Container => Some(unsafe { &*self.w0.ptr.cast::<Container>() }),
            Kind::Inline | Kind::Packed | Kind::Int | Kind::Heap => None,
        }
    }

    /// The container of a Container object, mutably; None for strings.
    #[inline]
    pub fn container_mut(&mut self) -> Option<&mut Container> {
        match self.kind() {
            // SAFETY: as in `container`; `&mut self` makes the borrow exclusive.
            Kind::Container => Some(unsafe { &mut *self.w0.ptr.cast::<Container>() }),
            Kind::Inline | Kind::Packed | Kind::Int | Kind::Heap => None,
        }
    }

    /// The Redis type of the value.
    #[inline]
    pub fn obj_type(&self) -> ObjType {
        match self.container() {
            Some(c) => c.obj_type(),
            None => ObjType::String,
        }
    }

    /// The integer of an Int object (the caller has checked the kind).
    #[inline(always)]
    fn int(&self) -> i64 {
        debug_assert_eq!(self.kind(), Kind::Int);
        // SAFETY: Int objects are written through `int` only (`from_int`), and every
        // bit pattern is a valid i64.
        unsafe { self.w0.int }
    }

    /// The integer of an `int`-encoded value.
    #[inline(always)]
    pub fn as_int(&self) -> Option<i64> {
        match self.kind() {
            Kind::Int => Some(self.int()),
            Kind::Inline | Kind::Packed | Kind::Heap | Kind::Container => None,
        }
    }

    /// The string's length in bytes (an integer's decimal length; 0 for a container).
    #[inline]
    pub fn len(&self) -> usize {
        match self.kind() {
            Kind::Inline | Kind::Packed => self.short_len(),
            Kind::Heap => self.heap_len(),
            Kind::Int => crate::util::i64_len(self.int()),
            Kind::Container => 0,
        }
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An Inline object's bytes.
    #[inline(always)]
    fn inline_slice(&self) -> &[u8] {
        debug_assert_eq!(self.kind(), Kind::Inline);
        let len = (self.w1[6] & LEN_NIBBLE) as usize;
        // SAFETY: `CompactObj` is repr(C) with `w0` (8 bytes, a union of 8-byte
        // fields) at offset 0 and `w1` at offset 8, no padding, so its 16 bytes are
        // contiguous; Inline data is the first `len <= 14` of them, written as plain bytes.
        unsafe { std::slice::from_raw_parts((self as *const CompactObj).cast::<u8>(), len) }
    }

    /// A Heap object's bytes.
    #[inline(always)]
    fn heap_slice(&self) -> &[u8] {
        debug_assert_eq!(self.kind(), Kind::Heap);
        // SAFETY: a Heap object owns a live allocation at `ptr` whose first
        // `heap_len()` bytes are initialised; the borrow of `self` keeps it alive.
        unsafe { std::slice::from_raw_parts(self.w0.ptr, self.heap_len()) }
    }

    /// The bytes without copying, when they are stored as they are (Inline, Heap).
    #[inline]
    pub fn as_slice(&self) -> Option<&[u8]> {
        match self.kind() {
            Kind::Inline => Some(self.inline_slice()),
            Kind::Heap => Some(self.heap_slice()),
            Kind::Packed | Kind::Int | Kind::Container => None,
        }
    }

    /// The string's bytes: borrowed when stored as they are, otherwise written into
    /// `buf` (unpacked, or an integer formatted). Empty for a container.
    #[inline]
    pub fn bytes<'a>(&'a self, buf: &'a mut ScratchBuf) -> &'a [u8] {
        match self.kind() {
            Kind::Inline => self.inline_slice(),
            Kind::Heap => self.heap_slice(),
            Kind::Packed => {
                let len = self.short_len();
                unpack(&self.data14(), len, buf);
                &buf[..len]
            }
            Kind::Int => {
                let n = fmt_i64(self.int(), buf);
                &buf[..n]
            }
            Kind::Container => &[],
        }
    }

    /// The string's bytes, borrowed when possible.
    pub fn to_cow(&self) -> Cow<'_, [u8]> {
        match self.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => {
                let mut buf = [0u8; 20];
                Cow::Owned(self.bytes(&mut buf).to_vec())
            }
        }
    }

    /// The Redis TYPE name of a value.
    pub fn type_name(&self) -> &'static str {
        self.obj_type().name()
    }

    /// The bytes of a string value (integers formatted), or None for other types.
    pub fn string_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self.kind() {
            Kind::Inline | Kind::Packed | Kind::Int | Kind::Heap => Some(self.to_cow()),
            Kind::Container => None,
        }
    }

    /// True if the object's string equals `b` (never for a container).
    #[inline]
    pub fn eq_bytes(&self, b: &[u8]) -> bool {
        match self.kind() {
            Kind::Inline => self.inline_slice() == b,
            Kind::Heap => self.heap_slice() == b,
            Kind::Packed => {
                let len = self.short_len();
                if b.len() != len {
                    return false;
                }
                let mut buf = [0u8; 20];
                self.bytes(&mut buf) == b
            }
            Kind::Int => {
                let mut buf = [0u8; 20];
                self.bytes(&mut buf) == b
            }
            Kind::Container => false,
        }
    }

    /// Redis's OBJECT ENCODING name.
    pub fn encoding(&self) -> &'static str {
        match self.kind() {
            Kind::Int => "int",
            Kind::Inline | Kind::Packed | Kind::Heap => {
                if self.tag() & FLAG_RAW != 0 || self.len() > EMBSTR_MAX {
                    "raw"
                } else {
                    "embstr"
                }
            }
            Kind::Container => self.container().expect("kind checked").encoding(),
        }
    }

    /// Bytes this object owns outside its 16 bytes (MEMORY USAGE, used_memory).
    #[inline]
    pub fn heap_bytes(&self) -> usize {
        match self.kind() {
            Kind::Heap => self.heap_cap(),
            Kind::Container => self.container().expect("kind checked").heap_bytes(),
            Kind::Inline | Kind::Packed | Kind::Int => 0,
        }
    }

    /// Replaces the string with `b` as [`from_bytes`](Self::from_bytes) would encode it,
    /// reusing the heap buffer when the new string is as long as the old (the SET
    /// overwrite hot path: no free and malloc). Keeps `FLAG_EXPIRE`.
    #[inline]
    pub fn assign_bytes(&mut self, b: &[u8]) {
        if self.kind() == Kind::Heap
            && self.tag() & FLAG_RAW == 0
            && self.heap_len() == b.len()
            && !(b.len() <= 20 && crate::util::parse_i64(b).is_some())
            && !(b.len() <= PACKED_BYTES && b.is_ascii())
        {
            // SAFETY: a non-raw HEAP object owns `heap_len() == b.len()` writable bytes
            // at `ptr`; `&mut self` excludes other borrows of them and `b` cannot alias
            // them (it is borrowed immutably while `self` is borrowed mutably).
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.w0.ptr, b.len()) };
            return;
        }
        let expire = self.tag() & FLAG_EXPIRE;
        *self = Self::from_bytes(b);
        self.w1[7] |= expire;
    }

    /// Moves the object's bytes out as a `Vec` (no copy for Heap), leaving the empty
    /// string with the same `FLAG_EXPIRE`. A container reads as the empty string (and
    /// is dropped).
    fn take_vec(&mut self) -> Vec<u8> {
        let expire = self.tag() & FLAG_EXPIRE;
        let mut empty = Self::EMPTY;
        empty.w1[7] |= expire;
        match self.kind() {
            Kind::Heap => {
                let (len, cap) = (self.heap_len(), self.heap_cap());
                // SAFETY: a Heap object's buffer was allocated by the global allocator
                // with `Layout::from_size_align(heap_cap(), 1)` (what a `Vec<u8>` of that
                // capacity uses) and holds `len` initialised bytes; ownership moves to
                // the Vec and `self` is overwritten below without running Drop.
                let v = unsafe { Vec::from_raw_parts(self.w0.ptr, len, cap) };
                // Plain overwrite: the buffer now belongs to `v`.
                std::mem::forget(std::mem::replace(self, empty));
                v
            }
            Kind::Inline | Kind::Packed | Kind::Int => {
                let mut buf = [0u8; 20];
                let v = self.bytes(&mut buf).to_vec();
                *self = empty;
                v
            }
            Kind::Container => {
                *self = empty;
                Vec::new()
            }
        }
    }

    /// A `FLAG_RAW` string from `v`: inline when short, else `v`'s buffer resized to
    /// [`heap_cap_raw`].
    fn raw_from_vec(v: Vec<u8>, flags: u8) -> CompactObj {
        let flags = flags | FLAG_RAW;
        if v.len() <= INLINE_BYTES {
            return Self::inline(&v, flags);
        }
        assert!(v.len() <= MAX_HEAP_LEN, "string too long");
        let want = heap_cap_raw(v.len());
        let mut v = std::mem::ManuallyDrop::new(v);
        let (ptr, len, cap) = (v.as_mut_ptr(), v.len(), v.capacity());
        let ptr = if cap == want {
            ptr
        } else {
            let old = Layout::from_size_align(cap, 1).expect("vec layout");
            // SAFETY: `ptr` was allocated by the global allocator with layout `old` (a
            // Vec<u8> of capacity `cap`, and cap >= len > 14 so it is a real
            // allocation); `want > 0`; the Vec is not used again (ManuallyDrop).
            let p = unsafe { realloc(ptr, old, want) };
            if p.is_null() {
                handle_alloc_error(Layout::from_size_align(want, 1).expect("layout"));
            }
            p
        };
        Self::heap_from_raw(ptr, len, flags)
    }

    /// Changes the string in place (APPEND, SETRANGE), as Redis's
    /// `dbUnshareStringValue` allows: an integer becomes its decimal text, and the
    /// string is `raw` from then on. `f` gets the bytes as a `Vec` (no copy when they
    /// are on the heap). Keeps `FLAG_EXPIRE`.
    pub fn modify_raw<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let expire = self.tag() & FLAG_EXPIRE;
        let mut v = self.take_vec();
        let r = f(&mut v);
        *self = Self::raw_from_vec(v, expire);
        r
    }
}

impl Drop for CompactObj {
    #[inline]
    fn drop(&mut self) {
        match self.kind() {
            Kind::Heap => {
                let layout = Layout::from_size_align(self.heap_cap(), 1).expect("heap layout");
                // SAFETY: a Heap object exclusively owns `ptr`, allocated with exactly
                // this layout (`heap`/`raw_from_vec` keep capacity == heap_cap()).
                unsafe { dealloc(self.w0.ptr, layout) };
            }
            Kind::Container => {
                // SAFETY: a Container object exclusively owns the box whose pointer
                // `from_container` stored; it is freed once, here (`take_vec` and
                // `assign_bytes` replace the object through this Drop).
                drop(unsafe { Box::from_raw(self.w0.ptr.cast::<Container>()) });
            }
            Kind::Inline | Kind::Packed | Kind::Int => {}
        }
    }
}

impl Clone for CompactObj {
    fn clone(&self) -> CompactObj {
        let mut c = match self.kind() {
            Kind::Heap => Self::heap(self.heap_slice(), self.heap_cap(), self.flags()),
            Kind::Container => {
                let mut c = Self::from_container(self.container().expect("kind checked").deep_clone());
                c.w1[7] |= self.flags();
                c
            }
            // Plain bytes: nothing owned (the access stamp is copied with them).
            Kind::Inline | Kind::Packed | Kind::Int => {
                let mut all = [0u8; 16];
                // SAFETY: these kinds never hold a pointer, so copying `w0`'s bytes
                // copies plain data.
                all[..8].copy_from_slice(unsafe { &self.w0.bytes });
                all[8..].copy_from_slice(&self.w1);
                return Self::from_16(all);
            }
        };
        c.set_access(self.access());
        c
    }
}

// SAFETY: a CompactObj owns its heap buffer or container exclusively (like a Box<[u8]>
// or a Box<Container>, and `Container` is Send + Sync, checked in `crate::container`)
// and shares nothing, so it may move to and be read from other threads.
unsafe impl Send for CompactObj {}
// SAFETY: `&CompactObj` only reads (no interior mutability).
unsafe impl Sync for CompactObj {}

impl Default for CompactObj {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Equal when both are the same integer, the same string with the same `raw` flag
/// (what OBJECT ENCODING can tell apart), or equal containers. `FLAG_EXPIRE` and the
/// access stamp are ignored.
impl PartialEq for CompactObj {
    fn eq(&self, other: &Self) -> bool {
        match (self.kind(), other.kind()) {
            (Kind::Int, Kind::Int) => self.int() == other.int(),
            (Kind::Container, Kind::Container) => self.container() == other.container(),
            (Kind::Inline | Kind::Packed | Kind::Heap, Kind::Inline | Kind::Packed | Kind::Heap) => {
                let mut buf = [0u8; 20];
                (self.tag() & FLAG_RAW) == (other.tag() & FLAG_RAW) && other.eq_bytes(self.bytes(&mut buf))
            }
            (Kind::Inline | Kind::Packed | Kind::Heap | Kind::Int | Kind::Container, _) => false,
        }
    }
}

impl Eq for CompactObj {}

impl std::fmt::Debug for CompactObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind() {
            Kind::Int => write!(f, "Int({})", self.int()),
            Kind::Container => write!(f, "{:?}", self.container().expect("kind checked")),
            Kind::Inline | Kind::Packed | Kind::Heap => {
                let mut buf = [0u8; 20];
                write!(f, "{:?}/{}", String::from_utf8_lossy(self.bytes(&mut buf)), self.encoding())
            }
        }
    }
}

impl crate::dash::DashHash for CompactObj {
    // Must hash exactly like `[u8]` so lookups by `&[u8]` find it.
    #[inline]
    fn dash_hash(&self, seed: u64) -> u64 {
        let mut buf = [0u8; 20];
        crate::dash::hash_bytes(self.bytes(&mut buf), seed)
    }
}

impl crate::dash::Equivalent<CompactObj> for [u8] {
    #[inline(always)]
    fn equivalent(&self, key: &CompactObj) -> bool {
        key.eq_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(o: &CompactObj) -> Vec<u8> {
        let mut buf = [0u8; 20];
        o.bytes(&mut buf).to_vec()
    }

    // Every length round-trips through every encoding the constructors pick.
    #[test]
    fn round_trip_lengths() {
        for len in 0usize..80 {
            let ascii: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let bin: Vec<u8> = (0..len).map(|i| 0x80u8 | i as u8).collect();
            for b in [&ascii, &bin] {
                for o in [CompactObj::key(b), CompactObj::from_bytes(b), CompactObj::from_text(b)] {
                    assert_eq!(s(&o), *b);
                    assert_eq!(o.len(), b.len());
                    assert!(o.eq_bytes(b));
                    assert!(!o.eq_bytes(&b[..len.saturating_sub(1)]) || len == 0);
                    assert_eq!(o.clone(), o);
                    assert_eq!(s(&o.clone()), *b);
                }
            }
        }
    }

    // The kinds: short inline, 15–16 ASCII packed, others on the heap, integers as such.
    #[test]
    fn kinds_and_encodings() {
        assert_eq!(CompactObj::key(b"abc").kind(), Kind::Inline);
        assert_eq!(CompactObj::key(b"key:000000123456").kind(), Kind::Packed);
        assert_eq!(CompactObj::key(b"key:0000001234567").kind(), Kind::Heap);
        assert_eq!(CompactObj::key("kéy:00000012345".as_bytes()).kind(), Kind::Heap);
        assert_eq!(CompactObj::key(b"123").kind(), Kind::Inline);
        assert_eq!(CompactObj::from_int(0).kind(), Kind::Int);
        assert_eq!(CompactObj::from_int(-1).kind(), Kind::Int);
        assert_eq!(CompactObj::from_bytes(b"123").as_int(), Some(123));
        assert_eq!(CompactObj::from_bytes(b"-9223372036854775808").as_int(), Some(i64::MIN));
        assert_eq!(CompactObj::from_bytes(b"0123").as_int(), None);
        assert_eq!(CompactObj::from_text(b"123").as_int(), None);
        assert_eq!(CompactObj::from_bytes(b"123").encoding(), "int");
        assert_eq!(CompactObj::from_bytes(b"0123").encoding(), "embstr");
        assert_eq!(CompactObj::from_bytes(&[b'x'; 44]).encoding(), "embstr");
        assert_eq!(CompactObj::from_bytes(&[b'x'; 45]).encoding(), "raw");
        assert_eq!(CompactObj::from_raw_vec(b"ab".to_vec()).encoding(), "raw");
        assert_eq!(CompactObj::from_bytes(&[b'x'; 32]).heap_bytes(), 32);
        assert_eq!(CompactObj::from_bytes(&[b'x'; 16]).heap_bytes(), 0);
        assert_eq!(s(&CompactObj::from_int(-42)), b"-42");
        assert_eq!(s(&CompactObj::from_int(i64::MIN)), b"-9223372036854775808");
    }

    // APPEND-like growth keeps the bytes, turns integers into text, marks raw, and
    // reallocates only at capacity steps.
    #[test]
    fn modify_raw_grows() {
        let mut o = CompactObj::from_bytes(b"-12");
        o.modify_raw(|v| v.push(b'3'));
        assert_eq!(s(&o), b"-123");
        assert_eq!(o.encoding(), "raw");
        let mut want = b"-123".to_vec();
        for i in 0..3000 {
            let piece = format!("{i},");
            o.modify_raw(|v| v.extend_from_slice(piece.as_bytes()));
            want.extend_from_slice(piece.as_bytes());
            assert_eq!(s(&o), want);
            assert_eq!(o.heap_bytes(), if want.len() > INLINE_BYTES { heap_cap_raw(want.len()) } else { 0 });
        }
        let c = o.clone();
        assert_eq!(c, o);
        // SETRANGE-like: zero-filled growth.
        let mut o = CompactObj::from_raw_vec(vec![0; 3]);
        o.modify_raw(|v| v.resize(100, 7));
        assert_eq!(o.len(), 100);
        assert_eq!(heap_cap_raw(100), 128);
        assert_eq!(heap_cap_raw((1 << 20) + 1), 2 << 20);
    }

    // SET overwrite reuses a same-length heap buffer and keeps the expire flag.
    #[test]
    fn assign_bytes() {
        let mut o = CompactObj::from_bytes(&[b'a'; 32]);
        o.set_expire_flag(true);
        o.assign_bytes(&[b'b'; 32]);
        assert_eq!(s(&o), vec![b'b'; 32]);
        assert!(o.has_expire());
        o.assign_bytes(b"17");
        assert_eq!(o.as_int(), Some(17));
        assert!(o.has_expire());
        o.assign_bytes(&[0xffu8; 40]);
        assert_eq!(s(&o), vec![0xff; 40]);
        o.set_expire_flag(false);
        assert!(!o.has_expire());
        assert_eq!(s(&o), vec![0xff; 40]);
    }

    // The access stamp lives in spare bits: any stamp on any kind leaves the bytes,
    // length, encoding and flags alone, and a clone keeps it.
    #[test]
    fn access_stamp_in_spare_bits() {
        let long = [b'z'; 50];
        let samples: Vec<CompactObj> = vec![
            CompactObj::key(b""),
            CompactObj::key(b"abcdefghijklmn"),
            CompactObj::key(b"key:000000123456"),
            CompactObj::key(b"key:00000012345"),
            CompactObj::key(&long),
            CompactObj::from_int(i64::MIN),
            CompactObj::from_raw_vec(long.to_vec()),
            CompactObj::from_raw_vec(b"ab".to_vec()),
        ];
        for o in samples {
            let (bytes, len, enc) = (s(&o), o.len(), o.encoding());
            assert_eq!(o.access(), 0, "{o:?}");
            for a in [1u8, 0x0f, 0x10, 0xa5, 0xff, 0] {
                for expire in [false, true] {
                    let mut x = o.clone();
                    x.set_expire_flag(expire);
                    x.set_access(a);
                    assert_eq!(x.access(), a);
                    assert_eq!((s(&x), x.len(), x.encoding(), x.has_expire()), (bytes.clone(), len, enc, expire));
                    assert!(x.eq_bytes(&bytes));
                    assert_eq!(x.heap_bytes(), o.heap_bytes());
                    assert_eq!(x.clone().access(), a);
                    x.set_expire_flag(!expire);
                    assert_eq!(x.access(), a);
                }
            }
        }
    }

    // The Container kind: the object owns its box (Miri checks it is freed exactly
    // once through Drop, assign_bytes, modify_raw and overwrite), Clone is deep, the
    // access stamp and length-nibble tag survive each other, memory is the container's
    // own count, and string accessors never read the pointer as bytes.
    #[test]
    fn container_kind() {
        let probe = |b: &[u8]| CompactObj::from_container(Box::new(Container::Probe(b.to_vec())));
        let o = probe(b"payload");
        assert_eq!(o.kind(), Kind::Container);
        assert_eq!(o.obj_type(), ObjType::Probe);
        assert_eq!((o.type_name(), o.encoding()), ("probe", "probe"));
        assert_eq!(o.heap_bytes(), std::mem::size_of::<Container>() + 7);
        assert_eq!((o.as_int(), o.as_slice(), o.len(), s(&o)), (None, None, 0, vec![]));
        assert!(o.string_bytes().is_none());
        assert!(!o.eq_bytes(b"") && !o.eq_bytes(b"payload"));
        assert_eq!(o.container(), Some(&Container::Probe(b"payload".to_vec())));
        assert_eq!(CompactObj::from_int(1).container(), None);
        // Deep clone: changing the copy leaves the original alone.
        let mut c = o.clone();
        assert_eq!(c, o);
        let Some(Container::Probe(v)) = c.container_mut() else { panic!("a probe") };
        v.push(b'!');
        assert_ne!(c, o);
        assert_eq!(o.container(), Some(&Container::Probe(b"payload".to_vec())));
        // Never equal to a string, not even the empty one.
        assert_ne!(o, CompactObj::EMPTY);
        assert_ne!(CompactObj::EMPTY, o);
        assert_ne!(o, CompactObj::from_int(0));
        // The access stamp shares byte 14 with the kind nibble and the tag with the kind
        // bits: every stamp keeps the kind, and clones keep the stamp.
        for a in [0u8, 1, 0x0f, 0x10, 0xa5, 0xff] {
            let mut x = o.clone();
            x.set_access(a);
            assert_eq!((x.kind(), x.access()), (Kind::Container, a));
            assert_eq!(x.clone().access(), a);
            assert_eq!(x, o);
        }
        // Overwrites free the container (a leak or double free fails under Miri).
        let mut x = probe(b"one");
        x.assign_bytes(b"17");
        assert_eq!(x.as_int(), Some(17));
        let mut x = probe(b"two");
        x.set_expire_flag(true);
        x.modify_raw(|v| v.extend_from_slice(b"abc"));
        assert_eq!((s(&x), x.encoding(), x.has_expire()), (b"abc".to_vec(), "raw", true));
        let mut x = probe(b"three");
        assert_eq!(x.len(), 0);
        x = CompactObj::from_bytes(&[b'y'; 40]);
        assert_eq!(x.len(), 40);
        drop(probe(b"four"));
    }

    // Keys hash and compare like their bytes, whatever the encoding.
    #[test]
    fn hash_and_equivalent() {
        use crate::dash::{DashHash, Equivalent};
        for k in [&b"a"[..], b"key:000000123456", b"a-much-longer-key-on-the-heap", b""] {
            let o = CompactObj::key(k);
            assert_eq!(o.dash_hash(9), crate::dash::hash_bytes(k, 9));
            assert!(k.equivalent(&o));
            assert!(o.equivalent(&CompactObj::key(k)));
            assert!(!b"zz"[..].equivalent(&o));
        }
    }

    // Model test: any sequence of constructions and in-place changes keeps the bytes of
    // a plain Vec<u8> model, with the encoding Redis would report.
    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Set(Vec<u8>),
            Append(Vec<u8>),
            Prepend(Vec<u8>),
            SetRange(usize, Vec<u8>),
            Assign(Vec<u8>),
            Int(i64),
            Clone,
        }

        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::collection::vec(b'0'..=b'9', 0..22),
                proptest::collection::vec(0x20u8..0x7f, 0..40),
                proptest::collection::vec(any::<u8>(), 0..70),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                bytes().prop_map(Op::Set),
                bytes().prop_map(Op::Append),
                bytes().prop_map(Op::Prepend),
                (0usize..80, bytes()).prop_map(|(o, b)| Op::SetRange(o, b)),
                bytes().prop_map(Op::Assign),
                any::<i64>().prop_map(Op::Int),
                Just(Op::Clone),
            ]
        }

        proptest! {
            // Under Miri: few cases, and no failure file (Miri isolates the file system).
            #![proptest_config(if cfg!(miri) {
                ProptestConfig { cases: 8, failure_persistence: None, ..ProptestConfig::default() }
            } else {
                ProptestConfig { cases: 512, ..ProptestConfig::default() }
            })]
            #[test]
            fn behaves_like_a_vec(ops in proptest::collection::vec(op(), 1..40)) {
                let mut o = CompactObj::EMPTY;
                let mut model: Vec<u8> = Vec::new();
                let mut raw = false;
                for op in ops {
                    match op {
                        Op::Set(b) => { o = CompactObj::from_bytes(&b); model = b; raw = false; }
                        Op::Assign(b) => { o.assign_bytes(&b); model = b; raw = false; }
                        Op::Int(n) => { o = CompactObj::from_int(n); model = n.to_string().into_bytes(); raw = false; }
                        Op::Append(b) => { o.modify_raw(|v| v.extend_from_slice(&b)); model.extend_from_slice(&b); raw = true; }
                        Op::Prepend(b) => { o.modify_raw(|v| { v.splice(0..0, b.iter().copied()); }); model.splice(0..0, b); raw = true; }
                        Op::SetRange(off, b) => {
                            let f = |v: &mut Vec<u8>| {
                                if v.len() < off + b.len() { v.resize(off + b.len(), 0); }
                                v[off..off + b.len()].copy_from_slice(&b);
                            };
                            o.modify_raw(f);
                            f(&mut model);
                            raw = true;
                        }
                        Op::Clone => { o = o.clone(); }
                    }
                    let mut buf = [0u8; 20];
                    prop_assert_eq!(o.bytes(&mut buf), &model[..]);
                    prop_assert_eq!(o.len(), model.len());
                    prop_assert!(o.eq_bytes(&model));
                    let int = !raw && model.len() <= 20 && crate::util::parse_i64(&model).is_some();
                    let want = if int { "int" } else if raw || model.len() > 44 { "raw" } else { "embstr" };
                    prop_assert_eq!(o.encoding(), want);
                }
            }
        }
    }
}
