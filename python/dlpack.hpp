#pragma once
// The DLPack ABI that NumPy (>= 1.22) and PyTorch (>= 1.10) export through `__dlpack__()`: the
// unversioned DLManagedTensor of DLPack 0.x, in a PyCapsule named "dltensor". Declared here because
// Debian 12 packages no dlpack.h; the layout below is the C ABI of dlpack.h v0.8 and must not change
// (a DLPack 1.x "dltensor_versioned" capsule is a different struct and is not accepted here).

#include <cstdint>

namespace shardinit::python::dlpack {

// DLDeviceType (a C enum: int-sized).
inline constexpr std::int32_t kDLCPU = 1;
inline constexpr std::int32_t kDLCUDAHost = 3;  // pinned host memory: ordinary CPU-addressable memory

// DLDataTypeCode.
inline constexpr std::uint8_t kDLInt = 0;
inline constexpr std::uint8_t kDLUInt = 1;
inline constexpr std::uint8_t kDLFloat = 2;
inline constexpr std::uint8_t kDLOpaqueHandle = 3;
inline constexpr std::uint8_t kDLBfloat = 4;
inline constexpr std::uint8_t kDLComplex = 5;
inline constexpr std::uint8_t kDLBool = 6;

struct DLDevice {
  std::int32_t device_type;
  std::int32_t device_id;
};

struct DLDataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  // in elements; null means compact row-major
  std::uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

static_assert(sizeof(DLDevice) == 8 && sizeof(DLDataType) == 4, "DLPack ABI");
static_assert(sizeof(DLTensor) == 48 && sizeof(DLManagedTensor) == 64, "DLPack ABI (64-bit)");

// The capsule protocol: a consumer renames the capsule it takes to "used_dltensor" (so that the
// capsule's destructor does not free the tensor) and calls the deleter itself when done.
inline constexpr const char* kCapsuleName = "dltensor";
inline constexpr const char* kUsedCapsuleName = "used_dltensor";

}  // namespace shardinit::python::dlpack
