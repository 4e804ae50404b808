#include "shardinit/fill/fill.hpp"

#include "shardinit/tensor/box_runs.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <cwchar>
#include <cstdint>
#include <exception>
#include <thread>
#include <variant>

#include "distributions/half_precision.hpp"
#include "distributions/transforms.hpp"
#include "simd/kernels.hpp"
#include "util/checked.hpp"
#include "util/printable.hpp"

namespace shardinit {

namespace {

using detail::Lanes;
using Words = Philox4x32::ctr_type;

// Maps the words of one block to the values of its elements: one element per lane for the
// distributions that draw from each element's own bits (uniform, trunc_normal)...
template <class Real, class ElementTransform>
void block_values(const ElementTransform& t, const Words& w, std::array<Real, Lanes<Real>::kElementsPerBlock>& v) {
  for (int lane = 0; lane < Lanes<Real>::kElementsPerBlock; ++lane) v[lane] = t(Lanes<Real>::element_bits(w, lane));
}
// ...while normal elements pair up inside a block: (radius bits, angle bits) -> (r cos, r sin).
template <class Real>
void block_values(const detail::NormalTransform<Real>& t, const Words& w,
                  std::array<Real, Lanes<Real>::kElementsPerBlock>& v) {
  for (int pair = 0; pair < Lanes<Real>::kElementsPerBlock / 2; ++pair) {
    const auto [even, odd] = t(Lanes<Real>::element_bits(w, 2 * pair), Lanes<Real>::element_bits(w, 2 * pair + 1));
    v[2 * pair] = even;
    v[2 * pair + 1] = odd;
  }
}

// Values of elements [first, first + count) in the compute type. A partial first or last block goes
// through the scalar reference; the whole blocks between go through the vectorized kernels
// (simd/kernels.hpp), which give the same bits, unless they are switched off for testing.
template <class Real, class Transform>
void generate(const Transform& transform, Philox4x32::key_type key, std::uint64_t stream, Index first, Index count,
              Real* out) {
  if constexpr (std::is_same_v<Transform, detail::ConstantTransform<Real>>) {
    std::fill_n(out, count, transform.value);  // no random bits at all
  } else {
    constexpr Index L = Lanes<Real>::kElementsPerBlock;
    std::array<Real, L> values;
    auto block = static_cast<std::uint64_t>(first / L);
    Index done = 0;
    const auto partial_block = [&](Index lane) {
      block_values(transform, block_words(key, stream, block), values);
      const Index take = std::min<Index>(L - lane, count - done);
      std::copy_n(values.begin() + lane, take, out + done);
      done += take;
      ++block;
    };
    if (first % L != 0) partial_block(first % L);
    const auto whole = static_cast<std::size_t>((count - done) / L);
    if (!simd::enabled()) {
      for (std::size_t b = 0; b < whole; ++b) partial_block(0);
    } else if constexpr (std::is_same_v<Transform, detail::UniformTransform<Real>>) {
      if (transform.degenerate) {
        std::fill_n(out + done, whole * L, transform.lo);
      } else {
        simd::uniform_blocks(transform, key, stream, block, whole, out + done);
      }
      done += static_cast<Index>(whole * L);
      block += whole;
    } else {
      // Vectorized Philox, then the transform: vectorized where a kernel exists, block by block otherwise.
      constexpr std::size_t kBlocksPerBatch = 256;
      std::array<std::uint32_t, 4 * kBlocksPerBatch> words;
      for (std::size_t b = 0; b < whole; b += kBlocksPerBatch) {
        const std::size_t n = std::min(kBlocksPerBatch, whole - b);
        simd::philox_words(key, stream, block, n, words.data());
        if constexpr (std::is_same_v<Transform, detail::NormalTransform<float>>) {
          simd::normal_f32_from_words(transform, words.data(), n, reinterpret_cast<float*>(out + done));
          done += static_cast<Index>(n * L);
          block += n;
          continue;
        }
        if constexpr (std::is_same_v<Transform, detail::TruncNormalTransform<float>>) {
          if (!transform.degenerate && transform.method == detail::TruncNormalTransform<float>::Method::central) {
            simd::trunc_normal_f32_from_words(transform, words.data(), n, reinterpret_cast<float*>(out + done));
            done += static_cast<Index>(n * L);
            block += n;
            continue;
          }
        }
        for (std::size_t k = 0; k < n; ++k) {
          block_values(transform, Words{words[4 * k], words[4 * k + 1], words[4 * k + 2], words[4 * k + 3]}, values);
          std::copy_n(values.begin(), L, out + done);
          done += L;
        }
        block += n;
      }
    }
    if (done < count) partial_block(0);
  }
}

template <class Real>
using TransformOf = std::variant<detail::ConstantTransform<Real>, detail::UniformTransform<Real>,
                                 detail::NormalTransform<Real>, detail::TruncNormalTransform<Real>>;

template <class Real>
TransformOf<Real> prepare(const Distribution& distribution) {
  return std::visit(
      [](const auto& d) -> TransformOf<Real> {
        using D = std::decay_t<decltype(d)>;
        if constexpr (std::is_same_v<D, Constant>) return detail::ConstantTransform<Real>(d);
        if constexpr (std::is_same_v<D, Uniform>) return detail::UniformTransform<Real>(d);
        if constexpr (std::is_same_v<D, Normal>) {
          // std = 0: every element is R(mean) (docs/stream-format.md 5.3); mean + 0 * z would turn a
          // mean of -0 into +0 wherever the product is +0.
          if (d.std == 0) return detail::ConstantTransform<Real>(Constant{d.mean});
          return detail::NormalTransform<Real>(d);
        }
        if constexpr (std::is_same_v<D, TruncNormal>) return detail::TruncNormalTransform<Real>(d);
      },
      distribution);
}

void store_values(const float* values, Index n, DType dtype, std::byte* out) {
  switch (dtype) {
    case DType::bf16:
    case DType::f16: {
      const auto convert = [dtype](const float* in, std::size_t m, std::uint16_t* to) {
        if (!simd::enabled()) {
          for (std::size_t i = 0; i < m; ++i) to[i] = dtype == DType::bf16 ? detail::bf16_from_f32(in[i]) : detail::f16_from_f32(in[i]);
        } else if (dtype == DType::bf16) {
          simd::bf16_from_f32(in, m, to);
        } else {
          simd::f16_from_f32(in, m, to);
        }
      };
      if (reinterpret_cast<std::uintptr_t>(out) % alignof(std::uint16_t) == 0) {
        convert(values, static_cast<std::size_t>(n), reinterpret_cast<std::uint16_t*>(out));
        return;
      }
      // Converted into an aligned local array, then copied: `out` is not 2-byte aligned.
      std::array<std::uint16_t, 4096> halves;
      for (Index done = 0; done < n; done += static_cast<Index>(halves.size())) {
        const auto m = static_cast<std::size_t>(std::min<Index>(static_cast<Index>(halves.size()), n - done));
        convert(values + done, m, halves.data());
        std::memcpy(out + 2 * done, halves.data(), 2 * m);
      }
      return;
    }
    default:
      std::memcpy(out, values, static_cast<std::size_t>(n) * sizeof(float));
  }
}
void store_values(const double* values, Index n, DType, std::byte* out) {
  std::memcpy(out, values, static_cast<std::size_t>(n) * sizeof(double));
}

// Every element the same value: its encoding in the output type, repeated.
template <class Real>
void fill_constant(Real value, DType dtype, Index count, std::byte* out) {
  std::array<std::byte, sizeof(Real)> encoded;
  store_values(&value, 1, dtype, encoded.data());
  const std::size_t element_size = dtype_size(dtype);
  if (std::all_of(encoded.begin(), encoded.begin() + element_size, [&encoded](std::byte b) { return b == encoded[0]; })) {
    std::memset(out, static_cast<int>(encoded[0]), static_cast<std::size_t>(count) * element_size);  // zeros
    return;
  }
  // glibc's wmemset is its memset for 32-bit patterns, with the same large-buffer strategy (streaming
  // stores): a 2-byte pattern goes in pairs, after one element if needed for 4-byte alignment.
  static_assert(sizeof(wchar_t) == 4);
  if ((element_size == 2 || element_size == 4) && reinterpret_cast<std::uintptr_t>(out) % element_size == 0) {
    Index left = count;
    if (element_size == 2 && reinterpret_cast<std::uintptr_t>(out) % 4 != 0 && left > 0) {
      std::memcpy(out, encoded.data(), 2);
      out += 2;
      --left;
    }
    std::uint32_t pattern;
    std::memcpy(&pattern, encoded.data(), element_size);
    if (element_size == 2) pattern = (pattern & 0xFFFFu) * 0x00010001u;
    const auto words = static_cast<std::size_t>(left * static_cast<Index>(element_size) / 4);
    std::wmemset(reinterpret_cast<wchar_t*>(out), static_cast<wchar_t>(pattern), words);
    if (4 * words < static_cast<std::size_t>(left) * element_size) std::memcpy(out + 4 * words, encoded.data(), 2);
    return;
  }
  // Copies of a 4 KiB tile of the pattern: read from L1, so about memset speed, at any alignment.
  std::array<std::byte, 4096> tile;  // a whole number of elements of every size
  for (std::size_t i = 0; i < tile.size(); i += element_size) std::memcpy(tile.data() + i, encoded.data(), element_size);
  const std::size_t total = static_cast<std::size_t>(count) * element_size;
  for (std::size_t filled = 0; filled < total; filled += tile.size()) {
    std::memcpy(out + filled, tile.data(), std::min(tile.size(), total - filled));
  }
}

// The transforms with a kernel that writes bf16 straight from registers (simd::uniform_bf16,
// simd::normal_bf16), and when it applies: a degenerate uniform is a constant fill instead.
template <class Transform>
constexpr bool kHasBf16Kernel = std::is_same_v<Transform, detail::UniformTransform<float>> ||
                                std::is_same_v<Transform, detail::NormalTransform<float>>;
bool bf16_kernel_applies(const detail::UniformTransform<float>& t) { return !t.degenerate; }
bool bf16_kernel_applies(const detail::NormalTransform<float>&) { return true; }
void bf16_blocks(const detail::UniformTransform<float>& t, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, std::uint16_t* out) {
  simd::uniform_bf16(t, key, stream, first_block, blocks, out);
}
void bf16_blocks(const detail::NormalTransform<float>& t, Philox4x32::key_type key, std::uint64_t stream,
                 std::uint64_t first_block, std::size_t blocks, std::uint16_t* out) {
  simd::normal_bf16(t, key, stream, first_block, blocks, out);
}

// Generates in chunks small enough for the stack and stores them (`out` need not be aligned).
template <class Real>
void fill_values(const TransformOf<Real>& transforms, Philox4x32::key_type key, std::uint64_t stream, DType dtype,
                 Index first, Index count, std::byte* out) {
  constexpr Index kChunk = 4096;
  std::array<Real, kChunk> values;
  const std::size_t element_size = dtype_size(dtype);
  // Values already in the output type, into a suitably aligned buffer: generate them in place.
  const bool direct = element_size == sizeof(Real) && reinterpret_cast<std::uintptr_t>(out) % alignof(Real) == 0;
  std::visit(
      [&](const auto& transform) {
        using Transform = std::decay_t<decltype(transform)>;
        const auto chunked = [&](Index begin, Index n, std::byte* to) {
          for (Index done = 0; done < n; done += kChunk) {
            const Index m = std::min(kChunk, n - done);
            generate<Real>(transform, key, stream, begin + done, m, values.data());
            store_values(values.data(), m, dtype, to + static_cast<std::size_t>(done) * element_size);
          }
        };
        if constexpr (std::is_same_v<Transform, detail::ConstantTransform<Real>>) {
          fill_constant(transform.value, dtype, count, out);
        } else if (direct) {
          generate<Real>(transform, key, stream, first, count, reinterpret_cast<Real*>(out));
        } else if constexpr (kHasBf16Kernel<Transform>) {
          // bf16 straight from the kernel's registers, with no f32 copy: partial blocks at the ends
          // go through the chunks.
          constexpr Index L = Lanes<float>::kElementsPerBlock;
          if (dtype == DType::bf16 && simd::enabled() && bf16_kernel_applies(transform) &&
              reinterpret_cast<std::uintptr_t>(out) % alignof(std::uint16_t) == 0) {
            const Index head = std::min(count, (L - first % L) % L);
            const Index whole = (count - head) / L;
            chunked(first, head, out);
            bf16_blocks(transform, key, stream, static_cast<std::uint64_t>((first + head) / L),
                        static_cast<std::size_t>(whole), reinterpret_cast<std::uint16_t*>(out + 2 * head));
            const Index done = head + whole * L;
            chunked(first + done, count - done, out + 2 * done);
          } else {
            chunked(first, count, out);
          }
        } else {
          chunked(first, count, out);
        }
      },
      transforms);
}

// Runs work(begin, end) over [0, count) split into up to `threads` contiguous parts, one per thread
// (this thread takes the first). Small ranges stay on one thread: starting a thread costs tens of
// microseconds, about what a few hundred thousand elements take to fill.
template <class Work>
void in_parallel(Index count, int threads, const Work& work) {
  constexpr Index kMinimumPerThread = Index{1} << 16;
  const Index parts = std::max<Index>(1, std::min<Index>(threads, count / kMinimumPerThread));
  if (parts == 1) {
    work(0, count);
    return;
  }
  std::vector<std::thread> helpers;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(parts));
  const auto part = [&](Index k) {
    try {
      work(count * k / parts, count * (k + 1) / parts);
    } catch (...) {
      errors[static_cast<std::size_t>(k)] = std::current_exception();
    }
  };
  for (Index k = 1; k < parts; ++k) helpers.emplace_back(part, k);
  part(0);
  for (auto& t : helpers) t.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace

struct TensorFiller::Prepared {
  std::variant<TransformOf<float>, TransformOf<double>> transform;
};

TensorFiller::TensorFiller(std::uint64_t seed, TensorSpec spec, FillOptions options)
    : seed_(seed), spec_(std::move(spec)), options_(options) {
  if (options_.threads < 1) {
    throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec_.name) + "': threads=" + std::to_string(options_.threads) +
                                                 " must be at least 1");
  }
  try {
    (void)element_count(spec_.shape);
    validate(spec_.distribution, spec_.dtype);
    if (spec_.padding_idx) {
      const Index row = *spec_.padding_idx;
      if (spec_.shape.empty() || row < 0 || row >= spec_.shape[0]) {
        throw Error(ErrorKind::invalid_argument, "padding_idx " + std::to_string(row) + " is not a row of shape " +
                                                     shape_to_string(spec_.shape));
      }
      const Index row_elements = element_count(spec_.shape) / spec_.shape[0];
      zero_begin_ = row * row_elements;
      zero_end_ = zero_begin_ + row_elements;
    }
  } catch (const Error& e) {
    throw Error(e.kind(), "tensor '" + detail::printable(spec_.name) + "': " + e.what());
  }
  if (spec_.dtype == DType::f64) {
    prepared_.reset(new Prepared{prepare<double>(spec_.distribution)});
  } else {
    prepared_.reset(new Prepared{prepare<float>(spec_.distribution)});
  }
}

TensorFiller::~TensorFiller() = default;
TensorFiller::TensorFiller(TensorFiller&&) noexcept = default;
TensorFiller& TensorFiller::operator=(TensorFiller&&) noexcept = default;

void TensorFiller::fill_flat(Index first, Index count, std::span<std::byte> out) const {
  const Index total = element_count(spec_.shape);
  if (first < 0 || count < 0 || first > total || count > total - first) {
    throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec_.name) + "': elements [" + std::to_string(first) +
                                                 ", " + std::to_string(first) + " + " + std::to_string(count) +
                                                 ") are not inside its " + std::to_string(total) + " elements");
  }
  const std::size_t element_size = dtype_size(spec_.dtype);
  check_output_size(out, count, "elements [" + std::to_string(first) + ", " + std::to_string(first + count) + ")");
  in_parallel(count, options_.threads, [&](Index begin, Index end) {
    fill_flat_serial(first + begin, end - begin, out.data() + static_cast<std::size_t>(begin) * element_size);
  });
}

void TensorFiller::check_output_size(std::span<const std::byte> out, Index count, const std::string& what) const {
  // count * element size can wrap in 64 bits ([2^62] f32 is 2^64 bytes): a wrapped product would let a
  // tiny buffer pass for a huge range.
  const auto need = detail::checked_mul(count, static_cast<std::int64_t>(dtype_size(spec_.dtype)));
  if (!need || out.size() != static_cast<std::uint64_t>(*need)) {
    throw Error(ErrorKind::invalid_argument,
                "tensor '" + detail::printable(spec_.name) + "': output buffer holds " + std::to_string(out.size()) + " bytes, " +
                    what + " of " + std::string(dtype_name(spec_.dtype)) + " need " +
                    (need ? std::to_string(*need) : std::string("more than 2^63 - 1")));
  }
}

namespace {
std::atomic<std::int64_t> g_generated{0};
}  // namespace

std::int64_t detail::generated_elements() noexcept { return g_generated.load(std::memory_order_relaxed); }
void detail::reset_generated_elements() noexcept { g_generated.store(0, std::memory_order_relaxed); }

void TensorFiller::fill_flat_serial(Index first, Index count, std::byte* out) const {
  if (count == 0) return;
  g_generated.fetch_add(count, std::memory_order_relaxed);
  std::visit([&](const auto& transforms) {
               fill_values(transforms, key_from_seed(seed_), spec_.stream, spec_.dtype, first, count, out);
             },
             prepared_->transform);
  // The padding row, where the range meets it: +0 in every dtype is all zero bits.
  const Index zero_first = std::max(first, zero_begin_), zero_last = std::min(first + count, zero_end_);
  if (zero_first < zero_last) {
    const std::size_t element_size = dtype_size(spec_.dtype);
    std::memset(out + static_cast<std::size_t>(zero_first - first) * element_size, 0,
                static_cast<std::size_t>(zero_last - zero_first) * element_size);
  }
}

void TensorFiller::fill_box(const Box& box, std::span<std::byte> out) const {
  Index count = 0;
  try {
    check_box_inside(spec_.shape, box);
    count = box.element_count();
  } catch (const Error& e) {
    throw Error(e.kind(), "tensor '" + detail::printable(spec_.name) + "': " + e.what());
  }
  fill_box_range(box, 0, count, out);
}

void TensorFiller::fill_box_range(const Box& box, Index first, Index count, std::span<std::byte> out) const {
  fill_box_range(spec_.shape, box, first, count, out);
}

void TensorFiller::fill_box_range(const Shape& space, const Box& box, Index first, Index count, std::span<std::byte> out) const {
  Index total = 0;
  try {
    if (space != spec_.shape && element_count(space) != element_count(spec_.shape)) {
      throw Error(ErrorKind::invalid_argument, "the view " + shape_to_string(space) + " does not have the elements of shape " +
                                                   shape_to_string(spec_.shape));
    }
    check_box_inside(space, box);
    total = box.element_count();
  } catch (const Error& e) {
    throw Error(e.kind(), "tensor '" + detail::printable(spec_.name) + "': " + e.what());
  }
  const std::size_t element_size = dtype_size(spec_.dtype);
  if (first < 0 || count < 0 || first > total || count > total - first) {
    throw Error(ErrorKind::invalid_argument, "tensor '" + detail::printable(spec_.name) + "': elements [" + std::to_string(first) + ", " +
                                                 std::to_string(first) + " + " + std::to_string(count) +
                                                 ") are not inside box " + box.to_string());
  }
  check_output_size(out, count, std::to_string(count) + " elements of box " + box.to_string());
  in_parallel(count, options_.threads, [&](Index begin, Index end) {
    fill_box_range_serial(space, box, first + begin, end - begin, out.data() + static_cast<std::size_t>(begin) * element_size);
  });
}

void TensorFiller::fill_box_range_serial(const Shape& space, const Box& box, Index first, Index count, std::byte* out) const {
  const std::size_t element_size = dtype_size(spec_.dtype);
  BoxRuns runs(space, box, first, count);
  for (FlatRun run; runs.next(run);) {
    fill_flat_serial(run.flat, run.length, out);
    out += static_cast<std::size_t>(run.length) * element_size;
  }
}

void fill_flat(std::uint64_t seed, const TensorSpec& spec, Index first, Index count, std::span<std::byte> out) {
  TensorFiller(seed, spec).fill_flat(first, count, out);
}

void fill_box(std::uint64_t seed, const TensorSpec& spec, const Box& box, std::span<std::byte> out) {
  TensorFiller(seed, spec).fill_box(box, out);
}

}  // namespace shardinit
