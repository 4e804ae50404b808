// One global checkpoint written and verified by all ranks together through MPI-IO.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>
#include <optional>
#include <vector>

#include "io/atomic_file.hpp"
#include "io/checkpoint_internal.hpp"
#include "io/staged_file.hpp"
#include "mpi/agreement.hpp"
#include "mpi/fault_injection.hpp"
#include "mpi/file_view.hpp"
#include "mpi/job_agreement.hpp"
#include "mpi/visibility.hpp"
#include "mpi/wait.hpp"
#include "shardinit/error.hpp"
#include "shardinit/io/rank_checkpoint.hpp"
#include "shardinit/layout/shard.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::mpi {

namespace {

using detail::check;
using detail::run_agreed;

// Each rank moves at most this much per collective call, which bounds its memory whatever the shard.
constexpr std::size_t kPieceBytes = std::size_t{64} << 20;

struct Communicator {
  MPI_Comm comm;
  int rank = 0;
  int size = 1;
  explicit Communicator(MPI_Comm c) : comm(c) {
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }
};

// What this rank writes (or reads back) of one tensor: the pieces of what it holds (its box, or the
// boxes of its zero3 range), if it is the writer among the replicas of that.
struct TensorPlan {
  const SafetensorsTensor* file_entry;
  const ManifestTensor* tensor;
  std::vector<Box> pieces;
};

std::vector<TensorPlan> plan_pieces(const Manifest& manifest, const SafetensorsLayout& layout, const ProcessMesh& mesh,
                                    int rank) {
  std::map<std::string_view, const ManifestTensor*> by_name;
  for (const ManifestTensor& t : manifest.tensors) by_name.emplace(t.name, &t);
  std::vector<TensorPlan> plans;
  for (const SafetensorsTensor& entry : layout.tensors()) {
    const ManifestTensor* it = by_name.at(entry.name);
    TensorPlan plan{&entry, it, {}};
    check_layout(it->layout, it->shape.size(), mesh);
    if (is_writer(it->layout, mesh, rank, it->stream)) {
      const Index max_elements = static_cast<Index>(kPieceBytes / dtype_size(it->dtype));
      for (const Box& box : local_holding(it->shape, it->layout, mesh, rank).boxes()) {
        for (Box& piece : split_box(box, max_elements)) plan.pieces.push_back(std::move(piece));
      }
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

// Calls visit(plan, piece or nullptr, step) for every round of every tensor, on every rank: the
// number of rounds per tensor is the largest number of pieces any rank has, so that every rank makes
// the same sequence of collective calls. `step` names the round for the watchdog. Each visit makes the
// collective MPI_File_set_view, a blocking call that must not be entered while another rank is still
// working (it would spin there, and no watchdog could see a rank stopped meanwhile): it does its
// rank's work first, then meets the others with detail::rendezvous(step), then sets the view.
template <class Visit>
void for_each_round(const Communicator& c, const std::vector<TensorPlan>& plans, std::string_view doing, Visit visit) {
  for (const TensorPlan& plan : plans) {
    const std::string tensor = "tensor '" + shardinit::detail::printable(plan.tensor->name, 80) + "'";
    const long long mine = static_cast<long long>(plan.pieces.size());
    const long long rounds = detail::maximum(c.comm, mine, std::string(doing) + " " + tensor);
    for (long long r = 0; r < rounds; ++r) {
      const std::string step = std::string(doing) + " " + tensor + " (piece " + std::to_string(r + 1) + " of " +
                               std::to_string(rounds) + ")";
      visit(plan, r < mine ? &plan.pieces[static_cast<std::size_t>(r)] : nullptr, step);
      detail::keep_alive(c.comm);
    }
  }
}

// A file opened collectively. Opening and closing are blocking collective calls: each is entered
// after a rendezvous, so that no rank spins in it while another is late or stopped.
class OpenFile {
 public:
  OpenFile(MPI_Comm comm, const std::filesystem::path& path, int mode) : comm_(comm) {
    detail::rendezvous(comm, "opening " + shardinit::detail::printable(path.string()) + " with MPI-IO");
    const int result = MPI_File_open(comm, path.c_str(), mode, MPI_INFO_NULL, &file_);
    if (result != MPI_SUCCESS) file_ = MPI_FILE_NULL;
    check(result, "cannot open " + shardinit::detail::printable(path.string()) + " with MPI-IO");
  }
  ~OpenFile() { close(); }
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  [[nodiscard]] MPI_File get() const noexcept { return file_; }
  void close() {
    if (file_ == MPI_FILE_NULL) return;
    detail::rendezvous(comm_, "closing the file");
    MPI_File_close(&file_);
  }

 private:
  MPI_Comm comm_;
  MPI_File file_ = MPI_FILE_NULL;
};

// Everyone gets `root`'s result (match flag, message, tensor, index).
void broadcast_result(MPI_Comm comm, VerifyResult& result, int root) {
  long long fields[5] = {result.match ? 1 : 0, result.tensor ? 1 : 0, result.index ? 1 : 0, result.index.value_or(0),
                         result.elements_checked};
  MPI_Request request;
  MPI_Ibcast(fields, 5, MPI_LONG_LONG, root, comm, &request);
  detail::wait(comm, request, "sharing the result of verify");
  detail::broadcast(comm, result.message, root, "sharing the result of verify");
  std::string tensor = result.tensor.value_or("");
  detail::broadcast(comm, tensor, root, "sharing the result of verify");
  result.match = fields[0] != 0;
  result.tensor = fields[1] != 0 ? std::optional<std::string>(tensor) : std::nullopt;
  result.index = fields[2] != 0 ? std::optional<Index>(fields[3]) : std::nullopt;
  result.elements_checked = fields[4];
}

// The rank whose local result comes first: the lowest (position, index) among the mismatches, where
// `position` orders what each rank checked (its place in the file, or the rank itself); -1 if none.
int first_mismatch(MPI_Comm comm, bool mismatch, long long position, long long index) {
  const Communicator c(comm);
  std::vector<long long> mine{mismatch ? position : std::numeric_limits<long long>::max(), index}, all(2 * c.size);
  MPI_Request request;
  MPI_Iallgather(mine.data(), 2, MPI_LONG_LONG, all.data(), 2, MPI_LONG_LONG, comm, &request);
  detail::wait(comm, request, "finding the first mismatch");
  int winner = -1;
  for (int r = 0; r < c.size; ++r) {
    if (all[2 * r] == std::numeric_limits<long long>::max()) continue;
    if (winner < 0 || std::pair(all[2 * r], all[2 * r + 1]) < std::pair(all[2 * winner], all[2 * winner + 1])) winner = r;
  }
  return winner;
}

// MPI-IO may report success for a short transfer (Open MPI does, at a file-size limit).
void expect_count(const MPI_Status& status, MPI_Datatype element, Index expected, const std::string& what) {
  int transferred = 0;
  MPI_Get_count(&status, element, &transferred);
  if (transferred != expected) {
    throw Error(ErrorKind::io, what + ": " + std::to_string(transferred) + " of " + std::to_string(expected) +
                                   " elements transferred (disk full or file-size limit?)");
  }
}

// The error of a fault injected at `site` (SHARDINIT_FAULT, for the tests).
Error injected(std::string_view site, int rank) {
  return Error(ErrorKind::io, "fault injected at " + std::string(site) + " on rank " + std::to_string(rank) +
                                  " (SHARDINIT_FAULT)");
}

// The first step of every collective function: the ranks agree that they were given the same manifest
// (its run digest: values, mesh, layouts) and the same file and options, and learn each other's
// hosts. A caller that passed different manifests on different ranks would otherwise make them run
// different sequences of collective calls, or mix two manifests in one file.
void agree_on_inputs(MPI_Comm comm, const Manifest& manifest, const std::string& file, const std::string& options) {
  const std::string digest = manifest_run_digest(manifest);
  const std::string shown = (manifest.source ? shardinit::detail::printable(manifest.source->path.string()) + ": " : std::string()) +
                            "seed " + std::to_string(manifest.seed) + ", " + std::to_string(manifest.tensors.size()) +
                            " tensors, " + digest.substr(0, 7 + 16);
  detail::agree_on_job(comm, std::nullopt,
                       {{"the manifest", shown, digest}, {"the file and options", file + options, file + options}});
}

// Everything every rank needs before touching the file, agreed on by all ranks (a manifest that
// does not fit the rank count fails everywhere at once).
struct CollectivePlan {
  std::optional<SafetensorsLayout> layout;
  std::vector<TensorPlan> pieces;  // point into *layout: the plan is neither copied nor moved
  std::map<std::string, TensorFiller> fillers;

  CollectivePlan(const Communicator& c, const Manifest& manifest, FillOptions options) {
    run_agreed(c.comm, "planning who writes what", [&] {
      if (detail::fault_injected("plan", c.rank)) throw injected("plan", c.rank);
      const ProcessMesh mesh = manifest_mesh(manifest, c.size);
      layout.emplace(checkpoint_layout(manifest));
      pieces = plan_pieces(manifest, *layout, mesh, c.rank);
      fillers = fillers_by_name(manifest, options);
    });
  }
  CollectivePlan(const CollectivePlan&) = delete;
  CollectivePlan& operator=(const CollectivePlan&) = delete;
};

}  // namespace

Holding fill_local(MPI_Comm comm, std::uint64_t seed, const TensorSpec& spec, const TensorLayout& layout,
               const ProcessMesh& mesh, std::span<std::byte> out) {
  const Communicator c(comm);
  if (mesh.size() != c.size) {
    throw Error(ErrorKind::invalid_argument, "tensor '" + shardinit::detail::printable(spec.name) + "': mesh " + mesh.to_string() + " has " +
                                                 std::to_string(mesh.size()) + " ranks, the communicator " +
                                                 std::to_string(c.size));
  }
  return fill_shard(seed, spec, layout, mesh, c.rank, out);
}

Holding fill_local(MPI_Comm comm, const Manifest& manifest, std::string_view name, std::span<std::byte> out) {
  const Communicator c(comm);
  return fill_shard(manifest, name, c.size, c.rank, out);
}

WriteStats write_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                            bool overwrite, const Progress& progress, FillOptions options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, path.string(), overwrite ? " (replacing an existing file)" : "");
  const CollectivePlan agreed(c, manifest, options);
  const auto& layout = agreed.layout;
  const auto& plans = agreed.pieces;
  const auto& fillers = agreed.fillers;
  const std::string shown = shardinit::detail::printable(path.string());

  // Rank 0 creates the temporary file (and, at the end, renames it into place), once every rank has
  // checked the path on its own node and found the very file rank 0 created.
  detail::SharedOutput output =
      detail::create_shared_output(comm, path, output_policy(manifest, overwrite), layout->file_size());
  std::optional<OpenFile> file;
  run_agreed(comm, "opening the output file", [&] { file.emplace(comm, output.temporary, MPI_MODE_WRONLY); });

  // From here every rank makes the same collective calls whatever happens locally; a local failure
  // is remembered and shared at the end.
  std::optional<Error> failure;
  const auto attempt = [&failure](const auto& step) {
    if (failure) return;
    try {
      step();
    } catch (const Error& e) {
      failure = e;
    } catch (const std::exception& e) {
      failure = Error(ErrorKind::io, e.what());
    }
  };
  attempt([&] {
    if (c.rank == 0) {
      MPI_Status status;
      check(MPI_File_write_at(file->get(), 0, layout->prefix().data(), static_cast<int>(layout->prefix().size()),
                              MPI_BYTE, &status),
            "cannot write the header of " + shown);
    }
  });
  WriteStats stats;
  stats.tensors = static_cast<std::int64_t>(manifest.tensors.size());
  stats.bytes = layout->file_size();
  std::int64_t total = 0, done = 0;
  for (const auto& t : manifest.tensors) total += element_count(t.shape);
  std::vector<std::byte> buffer;
  const TensorPlan* previous = nullptr;
  for_each_round(c, plans, "writing", [&](const TensorPlan& plan, const Box* piece, const std::string& step) {
    if (progress && c.rank == 0 && previous != nullptr && previous != &plan) {
      done += element_count(previous->tensor->shape);
      progress(done, total);
    }
    previous = &plan;
    const detail::ElementType element(dtype_size(plan.tensor->dtype));
    Index count = 0;
    attempt([&] {
      if (piece == nullptr) return;
      count = piece->element_count();
      if (detail::fault_injected("fill", c.rank)) throw injected("fill", c.rank);
      detail::before_filling(c.rank);
      buffer.resize(static_cast<std::size_t>(count) * dtype_size(plan.tensor->dtype));
      fillers.at(plan.tensor->name).fill_box(*piece, buffer);
      stats.elements += count;
    });
    // The file view selects this rank's piece (or nothing); the type lives until the write is done.
    std::optional<detail::BoxFileType> type;
    attempt([&] {
      if (count > 0) type.emplace(plan.tensor->shape, *piece, element.get(), dtype_size(plan.tensor->dtype));
    });
    if (failure) {
      count = 0;
      type.reset();
    }
    detail::rendezvous(c.comm, step);  // every rank has filled its piece: set_view will not spin
    int view = MPI_File_set_view(file->get(), static_cast<MPI_Offset>(layout->data_start() + plan.file_entry->begin),
                                 element.get(), type ? type->get() : element.get(), "native", MPI_INFO_NULL);
    if (count > 0 && detail::fault_injected("file_view", c.rank)) view = MPI_ERR_ARG;
    attempt([&] { check(view, "MPI_File_set_view"); });
    if (failure) count = 0;
    // An independent write, not MPI_File_write_all: Open MPI's collective buffering does not survive
    // an error on one aggregator (disk full, file-size limit) and leaves the other ranks waiting.
    MPI_Status status;
    const bool write_fails = count > 0 && detail::fault_injected("write", c.rank);
    const int written = write_fails ? MPI_ERR_IO
                        : count > 0 ? MPI_File_write(file->get(), buffer.data(), static_cast<int>(count), element.get(), &status)
                                    : MPI_SUCCESS;
    attempt([&] {
      check(written, "cannot write " + shown);
      if (count > 0) expect_count(status, element.get(), count, "cannot write " + shown);
    });
    if (count > 0 && !failure) detail::after_first_piece(c.rank);  // the kill, stop and stall faults
  });
  if (progress && c.rank == 0) progress(total, total);
  // Each rank flushes what it wrote through a descriptor of its own first, in a step the watchdog
  // watches: inside the collective MPI_File_sync a rank stuck in fsync (a hung filesystem) would leave
  // the others spinning in it. What MPI_File_sync then finds to flush is little.
  attempt([&] {
    const int fd = ::open(output.temporary.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::fsync(fd) != 0) {
      const int error = errno;
      if (fd >= 0) ::close(fd);
      throw Error(ErrorKind::io, "cannot flush " + shown + ": " + std::strerror(error));
    }
    ::close(fd);
  });
  detail::rendezvous(comm, "flushing " + shown);
  const int synced = MPI_File_sync(file->get());
  attempt([&] { check(synced, "cannot flush " + shown); });
  file->close();
  detail::agree(comm, failure, "agreeing that every rank wrote its part");
  run_agreed(comm, "renaming the file into place", [&] {
    if (c.rank != 0) return;
    // Whatever the MPI-IO layer reported, the file must now have exactly its full size.
    std::error_code ec;
    const auto size = std::filesystem::file_size(output.temporary, ec);
    if (ec || size != layout->file_size()) {
      throw Error(ErrorKind::io, "cannot write " + shown + ": the file holds " + (ec ? ec.message() : std::to_string(size)) +
                                     " bytes of " + std::to_string(layout->file_size()) +
                                     " (disk full or file-size limit?)");
    }
    output.file->commit();
  });
  return stats;
}

VerifyResult verify_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path,
                               FillOptions options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, path.string(), " (verify)");
  const CollectivePlan agreed(c, manifest, options);
  const auto& layout = agreed.layout;
  const auto& plans = agreed.pieces;
  const auto& fillers = agreed.fillers;
  const std::string shown = shardinit::detail::printable(path.string());

  // Every rank must read the same file as rank 0 (not a node-local copy, not nothing).
  detail::check_shared_input(comm, path);
  // The header (and that the file is valid safetensors at all) is rank 0's to check.
  VerifyResult result;
  long long header_matches = 1;
  run_agreed(comm, "checking the header", [&] {
    if (c.rank != 0) return;
    if (auto mismatch = check_header(*layout, checkpoint_metadata(manifest), path)) {
      result = *mismatch;
      header_matches = 0;
    }
  });
  header_matches = detail::maximum(comm, c.rank == 0 ? header_matches : 0, "sharing the header check");
  if (header_matches == 0) {
    broadcast_result(comm, result, 0);
    return result;
  }

  std::optional<OpenFile> file;
  run_agreed(comm, "opening the file", [&] { file.emplace(comm, path, MPI_MODE_RDONLY); });
  std::optional<Error> failure;
  std::optional<std::pair<long long, Index>> mismatch;  // (tensor's place in the file, flat index)
  std::vector<std::byte> want, have;
  long long checked = 0;
  for_each_round(c, plans, "verifying", [&](const TensorPlan& plan, const Box* piece, const std::string& step) {
    const std::size_t element_size = dtype_size(plan.tensor->dtype);
    const detail::ElementType element(element_size);
    bool read = piece != nullptr && !mismatch && !failure;
    std::optional<detail::BoxFileType> type;
    if (read) {
      try {
        type.emplace(plan.tensor->shape, *piece, element.get(), element_size);
      } catch (const Error& e) {
        failure = e;
        read = false;
      }
    }
    const Index count = read ? piece->element_count() : 0;
    detail::rendezvous(c.comm, step);  // the previous piece is compared everywhere: set_view will not spin
    int view = MPI_File_set_view(file->get(), static_cast<MPI_Offset>(layout->data_start() + plan.file_entry->begin),
                                 element.get(), type ? type->get() : element.get(), "native", MPI_INFO_NULL);
    if (count > 0 && detail::fault_injected("file_view", c.rank)) view = MPI_ERR_ARG;
    have.resize(static_cast<std::size_t>(count) * element_size);
    MPI_Status status;  // independent, for the same reason as the writes
    const bool read_fails = count > 0 && (view != MPI_SUCCESS || detail::fault_injected("read", c.rank));
    const int got = read_fails ? MPI_ERR_IO
                    : count > 0 ? MPI_File_read(file->get(), have.data(), static_cast<int>(count), element.get(), &status)
                                : MPI_SUCCESS;
    if (!read || failure) return;
    try {
      check(view, "MPI_File_set_view");
      check(got, "cannot read " + shown);
      expect_count(status, element.get(), count, "cannot read " + shown);
      want.resize(have.size());
      fillers.at(plan.tensor->name).fill_box(*piece, want);
      if (std::memcmp(want.data(), have.data(), want.size()) != 0) {
        Index i = 0;
        while (std::memcmp(want.data() + i * element_size, have.data() + i * element_size, element_size) == 0) ++i;
        // Element i of the piece, as a flat index of the tensor.
        std::vector<Index> at = unflatten(piece->extent, i);
        Index flat = 0;
        const auto strides = row_major_strides(plan.tensor->shape);
        for (std::size_t d = 0; d < at.size(); ++d) flat += (at[d] + piece->start[d]) * strides[d];
        mismatch.emplace(static_cast<long long>(plan.file_entry - layout->tensors().data()), flat);
        result.tensor = plan.tensor->name;
        result.index = flat;
        result.message = describe_difference(plan.tensor->name, plan.tensor->shape, flat,
                                             std::span(want.data() + i * element_size, element_size),
                                             std::span(have.data() + i * element_size, element_size));
      } else {
        checked += count;
      }
      detail::after_first_piece(c.rank);
    } catch (const Error& e) {
      failure = e;
    }
  });
  file->close();
  detail::agree(comm, failure, "agreeing that every rank read its part");

  const int winner = first_mismatch(comm, mismatch.has_value(), mismatch ? mismatch->first : 0,
                                    mismatch ? mismatch->second : 0);
  const long long elements = detail::sum(comm, checked, "counting the elements checked");
  if (winner >= 0) {
    broadcast_result(comm, result, winner);
    result.elements_checked = elements;
    return result;
  }
  result.match = true;
  result.elements_checked = elements;
  result.message = std::to_string(layout->tensors().size()) + " tensors, " + std::to_string(elements) +
                   " elements and the header match (checked by " + std::to_string(c.size) + " ranks)";
  return result;
}

WriteStats write_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                  bool overwrite, FillOptions options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, directory.string(), overwrite ? " (rank files, replacing existing ones)" : " (rank files)");
  const Heartbeat heartbeat = [comm] { detail::keep_alive(comm); };
  const std::filesystem::path target = directory / rank_file_name(c.rank, c.size);
  const shardinit::detail::OutputPolicy policy = output_policy(manifest, overwrite);
  std::uint64_t size = 0;
  run_agreed(comm, "planning the rank files", [&] {
    if (detail::fault_injected("plan", c.rank)) throw injected("plan", c.rank);
    size = rank_checkpoint_layout(manifest, manifest_mesh(manifest, c.size), c.rank).file_size();
  });
  // Each rank's directory may be node-local: every rank checks its own, and the room on its host.
  const auto made = detail::check_rank_output(comm, directory, target, policy, size);
  WriteStats stats;
  // Every rank stages its file; only when all have succeeded does any file appear. A failure on one
  // rank drops every staged file (their destructors remove the temporaries).
  shardinit::detail::StagedFile staged;
  run_agreed(comm, "writing the rank files", [&] {
    staged = shardinit::detail::stage_rank_checkpoint(manifest, manifest_mesh(manifest, c.size), c.rank, directory,
                                                      overwrite, options, stats, [&] {
                                                        detail::keep_alive(comm);
                                                        detail::after_first_piece(c.rank);
                                                      });
    if (detail::fault_injected("write", c.rank)) throw injected("write", c.rank);
    if (detail::fault_injected("squat", c.rank)) std::ofstream(target) << "not ours";
    // Flushed and checked while every other rank can still drop its own: what follows is a rename.
    staged.prepare();
  });
  run_agreed(comm, "renaming the rank files into place", [&] { staged.commit(); });
  made->keep();
  return stats;
}

VerifyResult verify_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                     FillOptions options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, directory.string(), " (verify rank files)");
  VerifyResult result;
  run_agreed(comm, "verifying the rank files", [&] {
    result = shardinit::detail::verify_rank_checkpoint(manifest, manifest_mesh(manifest, c.size), c.rank, directory,
                                                       options, [comm] { detail::keep_alive(comm); });
  });
  const int winner = first_mismatch(comm, !result.match, c.rank, 0);
  const long long elements = detail::sum(comm, result.elements_checked, "counting the elements checked");
  if (winner >= 0) {
    broadcast_result(comm, result, winner);
    if (c.size > 1) result.message = rank_file_name(winner, c.size) + ": " + result.message;
  } else {
    result.message = std::to_string(c.size) + " rank files match (" + std::to_string(elements) + " elements)";
  }
  result.elements_checked = elements;
  return result;
}

}  // namespace shardinit::mpi
