//! Bounds-checked access to guest linear memory, and returning buffers to the
//! guest through its `proxy_on_memory_allocate`.
//!
//! Pointers and sizes are wasm32 `i32`s reinterpreted as `u32`. Any range outside
//! the memory yields [`Status::InvalidMemoryAccess`]; nothing here panics on guest input.

use super::{HostResult, Status};
use crate::vm::HostState;
use std::ops::Range;

pub(crate) type Caller<'a> = wasmtime::Caller<'a, HostState>;

fn range(memory_len: usize, ptr: i32, len: i32) -> Result<Range<usize>, Status> {
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    if end > memory_len {
        return Err(Status::InvalidMemoryAccess);
    }
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of the guest.
pub(crate) fn read(caller: &Caller<'_>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let data = memory.data(caller);
    let range = range(data.len(), ptr, len)?;
    Ok(data[range].to_vec())
}

/// Reads a string (invalid UTF-8 is replaced, as it only feeds logs and names).
pub(crate) fn read_string(caller: &Caller<'_>, ptr: i32, len: i32) -> Result<String, Status> {
    read(caller, ptr, len).map(|bytes| match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Writes `bytes` at `ptr`.
pub(crate) fn write(caller: &mut Caller<'_>, ptr: i32, bytes: &[u8]) -> Result<(), Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let data = memory.data_mut(caller);
    let len = i32::try_from(bytes.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let range = range(data.len(), ptr, len)?;
    data[range].copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian `u32` (pointers and sizes in wasm32).
pub(crate) fn write_u32(caller: &mut Caller<'_>, ptr: i32, value: u32) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian `u64`.
pub(crate) fn write_u64(caller: &mut Caller<'_>, ptr: i32, value: u64) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Allocates `bytes.len()` in the guest, copies `bytes` there and writes the
/// pointer and size into the two return slots. Empty results write 0 and 0
/// (the Rust SDK reads a null pointer as "nothing"). A trap in the guest
/// allocator is propagated.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> HostResult {
    let (ptr, size) = if bytes.is_empty() {
        (0, 0)
    } else {
        let Ok(size) = i32::try_from(bytes.len()) else {
            return Ok(Status::InvalidMemoryAccess.code());
        };
        let Some(malloc) = caller.data().malloc.clone() else {
            return Ok(Status::InvalidMemoryAccess.code());
        };
        let ptr = malloc.call(&mut *caller, size)?;
        if ptr == 0 {
            return Ok(Status::InvalidMemoryAccess.code());
        }
        if let Err(status) = write(caller, ptr, bytes) {
            return Ok(status.code());
        }
        (ptr as u32, size as u32)
    };
    let written = write_u32(caller, ptr_ptr, ptr).and_then(|()| write_u32(caller, size_ptr, size));
    Ok(written.err().unwrap_or(Status::Ok).code())
}

/// Writes a `u32` result and maps the outcome to a status code.
pub(crate) fn return_u32(caller: &mut Caller<'_>, ptr: i32, value: u32) -> HostResult {
    Ok(write_u32(caller, ptr, value)
        .err()
        .unwrap_or(Status::Ok)
        .code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert_eq!(range(100, 10, 5), Ok(10..15));
        assert_eq!(range(100, 0, 0), Ok(0..0));
        assert_eq!(range(100, 100, 0), Ok(100..100));
        assert_eq!(range(100, 96, 5), Err(Status::InvalidMemoryAccess));
        assert_eq!(range(100, -1, 2), Err(Status::InvalidMemoryAccess));
        assert_eq!(range(100, 50, -1), Err(Status::InvalidMemoryAccess));
    }
}
