#pragma once
// The bytes of a planned file (checkpoint/write_plan.hpp), produced from any offset: the header, then
// each stored tensor's elements from its TensorFiller. What a writer writes and what verify compares
// with, whoever produces which range.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shardinit/checkpoint/write_plan.hpp"
#include "shardinit/fill/fill.hpp"

namespace shardinit::detail {

// One TensorFiller per manifest tensor (single-threaded: the pipeline parallelizes by pieces).
class ManifestFillers {
 public:
  explicit ManifestFillers(const Manifest& manifest);
  [[nodiscard]] const TensorFiller& of(const ManifestTensor& tensor) const;

 private:
  const Manifest* manifest_;
  std::vector<TensorFiller> fillers_;  // in manifest order
};

class FileBytes {
 public:
  FileBytes(const PlannedFile& file, const ManifestFillers& fillers) : file_(&file), fillers_(&fillers) {}

  // Bytes [offset, offset + out.size()) of the file.
  // @pre the range lies inside the file and starts and ends on element boundaries of the tensors there
  // (every range of a plan does: ranges and pieces are cut at multiples of 8 bytes... from the file's start).
  void produce(std::uint64_t offset, std::span<std::byte> out) const;

  // The stored tensor (its position in the layout's data order) and element of a data byte, or
  // nothing for a header byte.
  struct Location {
    std::size_t stored = 0;
    Index element = 0;  // of the stored tensor
  };
  [[nodiscard]] std::optional<Location> locate(std::uint64_t offset) const;

  [[nodiscard]] const PlannedFile& file() const noexcept { return *file_; }

 private:
  const PlannedFile* file_;
  const ManifestFillers* fillers_;
};

// "tensor 'w' differs at flat index 7 (element [1, 2]): expected bits 0x..., found 0x..." for the
// first differing byte, at file offset `offset`, of `expected` and `found`: the bytes of the file from
// offset `begin`. Per-rank files name the element's index in the local shard and where it sits in
// the global tensor.
[[nodiscard]] std::string describe_data_difference(const FileBytes& bytes, std::uint64_t begin, std::uint64_t offset,
                                                   std::span<const std::byte> expected, std::span<const std::byte> found,
                                                   bool local_shard);

}  // namespace shardinit::detail
