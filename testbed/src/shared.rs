//! Shared data (one map per testbed, i.e. per `vm_id`) and shared queues, with the
//! semantics of proxy-wasm-cpp-host's `shared_data.cc` / `shared_queue.cc`.

use crate::abi::Status;
use std::collections::{HashMap, VecDeque};

/// A shared-data entry as the guest sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedValue {
    /// The bytes stored.
    pub value: Vec<u8>,
    /// The CAS assigned by the last successful set (never 0).
    pub cas: u32,
}

pub(crate) struct SharedData {
    map: HashMap<Vec<u8>, SharedValue>,
    next_cas: u32,
}

impl Default for SharedData {
    fn default() -> Self {
        SharedData {
            map: HashMap::new(),
            next_cas: 1,
        }
    }
}

impl SharedData {
    pub(crate) fn get(&self, key: &[u8]) -> Option<&SharedValue> {
        self.map.get(key)
    }

    /// CAS 0 sets unconditionally; a mismatching CAS on an existing key changes
    /// nothing. A missing key is always set (Envoy ignores the CAS then).
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Result<u32, Status> {
        if let Some(existing) = self.map.get(key)
            && cas != 0
            && cas != existing.cas
        {
            return Err(Status::CasMismatch);
        }
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.map.insert(
            key.to_vec(),
            SharedValue {
                value: value.to_vec(),
                cas,
            },
        );
        Ok(cas)
    }
}

struct Queue {
    vm: usize,
    context_id: u32,
    items: VecDeque<Vec<u8>>,
}

/// A notification owed to the VM that registered a queue.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueReady {
    pub(crate) vm: usize,
    pub(crate) context_id: u32,
    pub(crate) token: u32,
}

#[derive(Default)]
pub(crate) struct SharedQueues {
    tokens: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next_token: u32,
}

impl SharedQueues {
    /// Registering again (from any VM) keeps the items and moves notifications there.
    pub(crate) fn register(&mut self, vm_id: &str, name: &str, vm: usize, context_id: u32) -> u32 {
        let key = (vm_id.to_string(), name.to_string());
        let token = match self.tokens.get(&key) {
            Some(&token) => token,
            None => {
                self.next_token += 1;
                self.tokens.insert(key, self.next_token);
                self.next_token
            }
        };
        let queue = self.queues.entry(token).or_insert_with(|| Queue {
            vm,
            context_id,
            items: VecDeque::new(),
        });
        queue.vm = vm;
        queue.context_id = context_id;
        token
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        self.tokens
            .get(&(vm_id.to_string(), name.to_string()))
            .copied()
    }

    pub(crate) fn dequeue(&mut self, token: u32) -> Result<Vec<u8>, Status> {
        let queue = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }

    pub(crate) fn enqueue(&mut self, token: u32, value: Vec<u8>) -> Result<QueueReady, Status> {
        let queue = self.queues.get_mut(&token).ok_or(Status::NotFound)?;
        queue.items.push_back(value);
        Ok(QueueReady {
            vm: queue.vm,
            context_id: queue.context_id,
            token,
        })
    }

    pub(crate) fn len(&self, vm_id: &str, name: &str) -> Option<usize> {
        let token = self.resolve(vm_id, name)?;
        self.queues.get(&token).map(|q| q.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_semantics() {
        let mut data = SharedData::default();
        let first = data.set(b"k", b"a", 0).unwrap();
        assert_eq!(data.set(b"k", b"b", first + 100), Err(Status::CasMismatch));
        assert_eq!(data.get(b"k").unwrap().value, b"a");
        let second = data.set(b"k", b"b", first).unwrap();
        assert_ne!(first, second);
        assert_eq!(data.set(b"k", b"c", first), Err(Status::CasMismatch));
        assert!(data.set(b"new", b"x", 12345).is_ok());
    }
}
