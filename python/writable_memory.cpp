#include "writable_memory.hpp"

#include <Python.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string_view>
#include <cstring>
#include <string>
#include <vector>

#include <pybind11/pybind11.h>

namespace shardinit::python {
namespace {

namespace py = pybind11;

// Reads `size` bytes of this process's memory at `address` without faulting on an unmapped page.
bool read_own_memory(std::uintptr_t address, void* out, std::size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  return process_vm_readv(::getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

// glibc malloc: whether the chunk header (its size, flags in the low 3 bits, in the word before the
// block) spans a block of `size` bytes.
bool malloc_chunk_spans(std::uintptr_t block, std::uintptr_t size) {
  std::uintptr_t chunk_size = 0;
  if (!read_own_memory(block - sizeof chunk_size, &chunk_size, sizeof chunk_size)) return false;
  chunk_size &= ~std::uintptr_t{7};
  return chunk_size >= size + sizeof chunk_size && chunk_size < (std::uintptr_t{1} << 48);
}

// Whether small objects come from pymalloc's pools: not under PYTHONMALLOC=malloc or malloc_debug,
// where every object comes from malloc.
bool pymalloc_serves_objects() {
  static const bool pools = [] {
    const char* allocator = std::getenv("PYTHONMALLOC");
    return allocator == nullptr || (std::string_view(allocator) != "malloc" && std::string_view(allocator) != "malloc_debug");
  }();
  return pools;
}

// Whether `object` is a block handed out by a pymalloc pool of the size class of `total` bytes. A
// small bytes object lives in one; a stale copy of a header elsewhere (in memory malloc reused, e.g.
// a tensor's) does not sit where a pool's header says its blocks are. Pools are 16 KiB (CPython 3.10
// and later) or 4 KiB, aligned to their size, and start with their header: struct pool_header {
// uint count; (padding); block* freeblock; pool* nextpool, prevpool; uint arenaindex, szidx,
// nextoffset, maxnextoffset; } (Objects/obmalloc.c), 48 bytes with 16-byte alignment.
bool in_pymalloc_block(std::uintptr_t object, std::uintptr_t total) {
  struct PoolHeader {
    std::uint32_t count;
    std::uint32_t padding;
    std::uintptr_t freeblock, nextpool, prevpool;
    std::uint32_t arenaindex, szidx, nextoffset, maxnextoffset;
  };
  constexpr std::uintptr_t kOverhead = 48;
  const std::uintptr_t size_class = (total - 1) >> 4;  // ALIGNMENT_SHIFT 4
  for (const std::uintptr_t pool_size : {std::uintptr_t{16384}, std::uintptr_t{4096}}) {
    const std::uintptr_t pool = object & ~(pool_size - 1);
    PoolHeader header;
    if (!read_own_memory(pool, &header, sizeof header)) continue;
    const std::uintptr_t block = (size_class + 1) << 4;
    const std::uintptr_t offset = object - pool;
    if (header.szidx == size_class && header.count >= 1 && header.maxnextoffset < pool_size &&
        header.nextoffset <= header.maxnextoffset + block && offset >= kOverhead && (offset - kOverhead) % block == 0 &&
        offset < header.nextoffset) {
      return true;
    }
  }
  return false;
}

// Whether a live bytes object at `object` has contents that `data` falls in. Freed memory keeps
// old headers (an allocator's free list overwrites the first word or two), so a header alone does not
// make an object: it must also be consistent with the allocator's view of that memory. Objects of
// more than 512 bytes come from glibc malloc, whose chunk header (the size, in the word before the
// object) must still span the whole object; smaller ones come from pymalloc, whose free list writes
// a pointer to a nearby block where the reference count was. Live bytes end with a NUL byte.
bool bytes_object_covers(std::uintptr_t object, std::uintptr_t data) {
  PyBytesObject header;
  if (!read_own_memory(object, &header, sizeof header)) return false;
  const PyObject* base = reinterpret_cast<const PyObject*>(&header);
  if (Py_TYPE(base) != &PyBytes_Type) return false;
  const auto references = static_cast<std::uintptr_t>(Py_REFCNT(base));
  const auto length = static_cast<std::uintptr_t>(Py_SIZE(reinterpret_cast<const PyVarObject*>(&header)));
  const std::uintptr_t contents = object + offsetof(PyBytesObject, ob_sval);
  if (references == 0 || references > (std::uintptr_t{1} << 40) || length > (std::uintptr_t{1} << 48)) return false;
  if (data < contents || data >= contents + length) return false;
  char terminator = 1;
  if (!read_own_memory(contents + length, &terminator, 1) || terminator != '\0') return false;
  const std::uintptr_t total = offsetof(PyBytesObject, ob_sval) + length + 1;
  // Python's debug hooks (python -X dev, PYTHONMALLOC=debug, pymalloc_debug, malloc_debug) put the
  // object 2 words into its block, after the requested size, an API id and FORBIDDENBYTE (0xFD) pads,
  // with another word of pads after it (Objects/obmalloc.c, _PyMem_DebugRawAlloc).
  // Above 512 bytes the object allocator's hooks wrap the raw allocator's own: two such headers.
  // A header is the requested size (big-endian: write_size_t), then the pads; the size tells it from
  // another block's trailing pads.
  const auto hooked = [](std::uintptr_t at, std::uintptr_t size) {
    unsigned char pad[7] = {};
    std::uintptr_t requested = 0;
    return read_own_memory(at - sizeof pad, pad, sizeof pad) &&
           std::all_of(std::begin(pad), std::end(pad), [](unsigned char b) { return b == 0xFD; }) &&
           read_own_memory(at - 2 * sizeof requested, &requested, sizeof requested) &&
           __builtin_bswap64(static_cast<std::uint64_t>(requested)) == size;
  };
  std::uintptr_t block = object, block_size = total;
  for (int layer = 0; layer < 2 && hooked(block, block_size); ++layer) {
    block -= 2 * sizeof(std::uintptr_t);
    block_size += 3 * sizeof(std::uintptr_t);
  }
  if (block_size > 512) return malloc_chunk_spans(block, block_size);
  // Without pools (PYTHONMALLOC=malloc, malloc_debug) a small object's memory is told from stale data
  // only by malloc's chunk header, which reused memory keeps too (tried: ordinary NumPy arrays were
  // refused): small bytes objects are not detected there, rather than good tensors refused.
  if (!pymalloc_serves_objects()) return false;
  const std::uintptr_t distance = references > object ? references - object : object - references;
  if (distance < (std::uintptr_t{1} << 16)) return false;  // a free-list pointer into the same pool
  return in_pymalloc_block(block, block_size);
}

// Whether `data` lies in the contents of a bytes object whose header is at most 1 MiB below it
// (the header and the contents are one block of memory: the search stops at the first address that
// cannot be read).
bool inside_bytes_object(std::uintptr_t data) {
  constexpr std::uintptr_t kAlignment = 16;  // of every object: pymalloc's and glibc malloc's
  constexpr std::uintptr_t kWindow = std::uintptr_t{1} << 20;
  const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const std::uintptr_t header = offsetof(PyBytesObject, ob_sval);
  if (data < header + kWindow) return false;
  const std::uintptr_t nearest = (data - header) & ~(kAlignment - 1);
  const std::uintptr_t lowest = nearest - kWindow;
  // Candidates from `nearest` down, read 64 KiB at a time; where such a read fails (it reaches a page
  // that is not mapped), a page at a time, down to the first unmapped page: the header of an object
  // that holds `data` cannot lie beyond one.
  constexpr std::uintptr_t kBlock = 64 * 1024;
  std::vector<unsigned char> block(kBlock + sizeof(PyObject));
  bool by_page = false;
  for (std::uintptr_t top = nearest; top > lowest;) {
    std::uintptr_t bottom = std::max(lowest, top - std::min(top, kBlock - kAlignment));  // candidates in [bottom, top]
    if (by_page || !read_own_memory(bottom, block.data(), static_cast<std::size_t>(top - bottom) + sizeof(PyObject))) {
      by_page = true;
      bottom = std::max(lowest, (top / page) * page);
      if (!read_own_memory(bottom, block.data(), static_cast<std::size_t>(top - bottom) + sizeof(PyObject))) return false;
    }
    for (std::uintptr_t at = top;; at -= kAlignment) {
      PyObject object;
      std::memcpy(&object, block.data() + (at - bottom), sizeof object);
      if (Py_TYPE(&object) == &PyBytes_Type && bytes_object_covers(at, data)) return true;
      if (at == bottom) break;
    }
    if (bottom == 0) break;
    top = bottom - kAlignment;
  }
  return false;
}

// Whether every page of [data, data + size) may be written: each page's first byte (the range's own
// first byte on the first page) is read and written back unchanged through process_vm_writev, which
// fails with EFAULT on a page without write permission where a plain store would end the process.
bool pages_writable(std::uintptr_t data, std::size_t size) {
  const std::uintptr_t page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  std::vector<std::uintptr_t> probes{data};
  for (std::uintptr_t p = (data / page + 1) * page; p < data + size; p += page) probes.push_back(p);
  constexpr std::size_t kBatch = 1024;  // IOV_MAX
  std::vector<unsigned char> bytes(kBatch);
  std::vector<iovec> local(kBatch), remote(kBatch);
  for (std::size_t first = 0; first < probes.size(); first += kBatch) {
    const std::size_t n = std::min(kBatch, probes.size() - first);
    for (std::size_t i = 0; i < n; ++i) {
      local[i] = iovec{&bytes[i], 1};
      remote[i] = iovec{reinterpret_cast<void*>(probes[first + i]), 1};
    }
    if (process_vm_readv(::getpid(), local.data(), n, remote.data(), n, 0) != static_cast<ssize_t>(n)) return false;
    if (process_vm_writev(::getpid(), local.data(), n, remote.data(), n, 0) != static_cast<ssize_t>(n)) return false;
  }
  return true;
}

}  // namespace

void check_writable_memory(const std::byte* data, std::size_t size, const std::string& what) {
  if (size == 0) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  // Nothing is written unless both hold: the bytes object first (the probe writes, if unchanged).
  if (inside_bytes_object(begin)) {
    throw py::value_error("the memory of this " + what +
                          " is the contents of an immutable bytes object (torch.frombuffer or np.frombuffer over "
                          "bytes): writing it would change a bytes value that other code holds; use a bytearray, or "
                          "fill a copy (tensor.clone())");
  }
  if (!pages_writable(begin, size)) {
    throw py::value_error("the memory of this " + what +
                          " is read-only (mapped without write permission: a read-only mmap, np.memmap or "
                          "np.load(..., mmap_mode='r')): shardinit fills in place; pass a writable tensor "
                          "(e.g. a copy)");
  }
}

}  // namespace shardinit::python
