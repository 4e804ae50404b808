#pragma once
// Whether memory that a Python object exports may really be written. Exporters do not always say:
// torch.frombuffer(b"...") and torch.from_numpy(np.frombuffer(b"...")) give tensors over the bytes of
// an immutable bytes object (torch only warns), and a tensor over a read-only mapping (np.memmap with
// mode 'r', a read-only mmap) would crash the interpreter with SIGSEGV at the first write.

#include <cstddef>
#include <string>

namespace shardinit::python {

// Throws py::value_error unless every byte of [data, data + size) may be written: it is not the
// contents of a Python bytes object, and every page is mapped writable (probed by writing one byte of
// each page back unchanged with process_vm_writev, which fails instead of faulting). The bytes check
// looks for a live object header (read with process_vm_readv, so that no stray address can fault)
// within 1 MiB below `data`: a tensor that starts more than 1 MiB into a bytes object goes unseen.
// `what` names the object for the message ("torch.Tensor").
void check_writable_memory(const std::byte* data, std::size_t size, const std::string& what);

}  // namespace shardinit::python
