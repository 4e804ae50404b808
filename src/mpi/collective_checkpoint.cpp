// The MPI driver of the write plan (checkpoint/write_plan.hpp): init and verify of every output format
// with every rank of a communicator. Shared outputs: each rank writes / checks exactly its range of
// the plan with its own descriptor, with no communication but the agreement steps around the work.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "checkpoint/checkpoint_internal.hpp"
#include "checkpoint/file_bytes.hpp"
#include "mpi/agreement.hpp"
#include "mpi/fault_injection.hpp"
#include "mpi/job_agreement.hpp"
#include "mpi/visibility.hpp"
#include "mpi/wait.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"
#include "shardinit/error.hpp"
#include "shardinit/layout/shard.hpp"
#include "shardinit/mpi/mpi.hpp"
#include "util/printable.hpp"

namespace shardinit::mpi {

namespace {

using detail::run_agreed;

struct Communicator {
  MPI_Comm comm;
  int rank = 0;
  int size = 1;
  explicit Communicator(MPI_Comm c) : comm(c) {
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
  }
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

// The error of a fault injected at `site` (SHARDINIT_FAULT, for the tests).
Error injected(std::string_view site, int rank) {
  return Error(ErrorKind::io, "fault injected at " + std::string(site) + " on rank " + std::to_string(rank) +
                                  " (SHARDINIT_FAULT)");
}

// The rank's work on its ranges: the watchdog hears from it after every piece, and the tests' faults
// strike where they would (fill: as it starts generating; write / read: an I/O call fails; and the
// kill, stop and stall faults after its first piece).
shardinit::detail::RangeWork range_work(const Communicator& c, int threads, const Progress& progress) {
  shardinit::detail::RangeWork work;
  work.threads = threads;
  work.after_piece = [comm = c.comm, rank = c.rank] {
    detail::keep_alive(comm);
    detail::after_first_piece(rank);
  };
  work.fault = [rank = c.rank](std::string_view site) {
    if (site == "fill") detail::before_filling(rank);
    if (detail::fault_injected(site, rank)) throw injected(site, rank);
  };
  if (c.rank == 0) work.progress = progress;
  return work;
}

// The first step of every collective function: the ranks agree that they were given the same manifest
// (its run digest: values, mesh, layouts) and the same output and options, and learn each other's
// hosts. A caller that passed different manifests on different ranks would otherwise make them run
// different sequences of collective calls, or mix two manifests in one file.
void agree_on_inputs(MPI_Comm comm, const Manifest& manifest, const std::string& target, const std::string& options) {
  const std::string digest = manifest_run_digest(manifest);
  const std::string shown = (manifest.source ? shardinit::detail::printable(manifest.source->path.string()) + ": " : std::string()) +
                            "seed " + std::to_string(manifest.seed) + ", " + std::to_string(manifest.tensors.size()) +
                            " tensors, " + digest.substr(0, 7 + 16);
  detail::agree_on_job(comm, std::nullopt,
                       {{"the manifest", shown, digest}, {"the output and options", target + options, target + options}});
}

std::string request_text(const OutputRequest& request) {
  std::string text = std::string(" (") + output_format_name(request.format);
  if (request.format == OutputFormat::hf) {
    text += request.split_as_found ? ", shards as the directory's index records them"
                                   : ", max shard size " + std::to_string(request.max_shard_size);
  }
  return text + ")";
}

// The plan, the fillers and the paths, agreed on by all ranks (a manifest that does not fit the rank
// count fails everywhere at once).
struct AgreedPlan {
  std::optional<WritePlan> plan;
  std::optional<shardinit::detail::ManifestFillers> fillers;
  AgreedPlan(const Communicator& c, const Manifest& manifest, const OutputRequest& request) {
    run_agreed(c.comm, "planning who writes what", [&] {
      if (detail::fault_injected("plan", c.rank)) throw injected("plan", c.rank);
      plan.emplace(plan_output(manifest, request, c.size, c.rank));
      fillers.emplace(manifest);
    });
  }
};

// A second meeting after the agreement that every rank wrote its part, before anything is renamed
// into place: a rank that gave up while waiting for that agreement (its watchdog ended the job) had
// already contributed its success to it, so the agreement alone could let rank 0 rename an output of
// a job that is failing. After this rendezvous every rank has seen the agreement complete.
void confirm_before_commit(const Communicator& c) { detail::rendezvous(c.comm, "confirming that every rank is done"); }

WriteStats write_shared(const Communicator& c, const Manifest& manifest, const std::filesystem::path& target,
                        const OutputRequest& request, const WriteOptions& options) {
  const AgreedPlan agreed(c, manifest, request);
  const WritePlan& plan = *agreed.plan;
  const shardinit::detail::OutputPolicy policy = output_policy(manifest, options.overwrite);
  WriteStats stats{plan.tensor_count(), plan.elements_of_this_rank(), plan.total_bytes()};
  const auto work = range_work(c, options.threads, options.progress);
  if (request.format == OutputFormat::safetensors) {
    // Rank 0 creates the temporary file (and, at the end, renames it into place), once every rank has
    // checked the path on its own node and found the very file rank 0 created.
    detail::SharedOutput output = detail::create_shared_output(c.comm, target, policy, plan.files[0].layout.file_size());
    run_agreed(c.comm, "writing its part of the file", [&] {
      shardinit::detail::write_ranges(plan, {output.temporary}, {target}, *agreed.fillers, work);
    });
    confirm_before_commit(c);
    run_agreed(c.comm, "renaming the file into place", [&] {
      if (c.rank != 0) return;
      // Whatever the filesystem reported, the file must now have exactly its full size.
      std::error_code ec;
      const auto size = std::filesystem::file_size(output.temporary, ec);
      if (ec || size != plan.files[0].layout.file_size()) {
        throw Error(ErrorKind::io, "cannot write " + shardinit::detail::printable(target.string()) + ": the file holds " +
                                       (ec ? ec.message() : std::to_string(size)) + " bytes of " +
                                       std::to_string(plan.files[0].layout.file_size()) + " (disk full or file-size limit?)");
      }
      output.file->commit();
    });
    return stats;
  }
  const auto files = shardinit::detail::staged_files(plan);
  detail::SharedDirectory output = detail::create_shared_directory(c.comm, target, policy, files, shardinit::detail::hf_replaceable(plan));
  run_agreed(c.comm, "writing its part of the directory", [&] {
    shardinit::detail::write_ranges(plan, shardinit::detail::planned_paths(plan, output.staging),
                                    shardinit::detail::planned_paths(plan, target), *agreed.fillers, work);
    if (c.rank == 0) shardinit::detail::write_texts(plan, std::filesystem::path(output.staging), target);
  });
  confirm_before_commit(c);
  run_agreed(c.comm, "renaming the directory into place", [&] {
    if (c.rank == 0) output.directory->commit(files);
  });
  return stats;
}

WriteStats write_per_rank(const Communicator& c, const Manifest& manifest, const std::filesystem::path& directory,
                          const WriteOptions& options) {
  const AgreedPlan agreed(c, manifest, output_request(OutputFormat::per_rank));
  const WritePlan& plan = *agreed.plan;
  const std::filesystem::path target = directory / plan.files[0].name;
  const shardinit::detail::OutputPolicy policy = output_policy(manifest, options.overwrite);
  // Each rank's directory may be node-local: every rank checks its own, and the room on its host.
  const auto made = detail::check_rank_output(c.comm, directory, target, policy, plan.files[0].layout.file_size());
  // Every rank writes its file under a temporary name; only when all have succeeded does any file
  // appear. A failure on one rank drops every temporary (their destructors remove them).
  std::optional<shardinit::detail::AtomicFile> file;
  const auto work = range_work(c, options.threads, {});
  run_agreed(c.comm, "writing the rank files", [&] {
    file.emplace(target, policy, plan.files[0].layout.file_size());
    shardinit::detail::write_ranges(plan, {file->temporary_path()}, {target}, *agreed.fillers, work);
    if (detail::fault_injected("squat", c.rank)) std::ofstream(target) << "not ours";
    // Flushed and checked while every other rank can still drop its own: what follows is a rename.
    file->prepare_commit();
  });
  confirm_before_commit(c);
  run_agreed(c.comm, "renaming the rank files into place", [&] { file->finish_commit(); });
  made->keep();
  return WriteStats{plan.tensor_count(), plan.elements_of_this_rank(), plan.files[0].layout.file_size()};
}

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

WriteStats write_output(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                        const WriteOptions& options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, target.string(),
                  request_text(request) + (options.overwrite ? " (replacing an existing output)" : ""));
  WriteStats stats = request.format == OutputFormat::per_rank ? write_per_rank(c, manifest, target, options)
                                                              : write_shared(c, manifest, target, request, options);
  stats.job_elements = detail::sum(comm, stats.elements, "counting the elements written");
  return stats;
}

VerifyResult verify_output(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                           const VerifyOptions& options) {
  const Communicator c(comm);
  agree_on_inputs(comm, manifest, target.string(), request_text(request) + " (verify)");
  OutputRequest effective = request;
  if (request.format == OutputFormat::hf && request.split_as_found) {
    // Rank 0 reads the index, every rank takes the split from its text: one split for all, even where
    // ranks would see different files (check_shared_input below finds those).
    std::string index_text;
    long long has_index = 0;
    run_agreed(comm, "reading the index", [&] {
      if (c.rank != 0) return;
      if (auto text = shardinit::detail::hf_index_text(target)) {
        index_text = std::move(*text);
        has_index = 1;
      }
    });
    has_index = detail::maximum(comm, has_index, "sharing the index");
    detail::broadcast(comm, index_text, 0, "sharing the index");
    if (auto mismatch = shardinit::detail::take_split_found(effective, manifest, has_index != 0 ? std::optional(index_text) : std::nullopt)) {
      return *mismatch;
    }
  }
  const AgreedPlan agreed(c, manifest, effective);
  const WritePlan& plan = *agreed.plan;
  const auto paths = shardinit::detail::planned_paths(plan, target);
  const bool shared = effective.format != OutputFormat::per_rank;
  VerifyResult result;
  if (shared) {
    // Every rank must read the same files as rank 0 (not node-local copies, not nothing).
    for (const auto& path : paths) detail::check_shared_input(comm, path);
    // The headers (and that the files are valid safetensors at all) are rank 0's to check.
    long long header_matches = 1;
    run_agreed(comm, "checking the headers", [&] {
      if (c.rank != 0) return;
      if (auto mismatch = shardinit::detail::check_headers(plan, paths, target)) {
        result = *mismatch;
        header_matches = 0;
      }
    });
    header_matches = detail::maximum(comm, c.rank == 0 ? header_matches : 0, "sharing the header check");
    if (header_matches == 0) {
      broadcast_result(comm, result, 0);
      return result;
    }
  }
  std::optional<shardinit::detail::RangeDifference> difference;
  Index checked = 0;
  run_agreed(comm, shared ? "verifying its part" : "verifying the rank files", [&] {
    if (!shared) {
      if (auto mismatch = shardinit::detail::check_headers(plan, paths, target)) {
        difference.emplace();
        difference->result = *mismatch;
        return;
      }
    }
    difference = shardinit::detail::compare_ranges(plan, paths, *agreed.fillers, range_work(c, options.threads, {}), checked);
  });
  // The first difference in output order: (file, byte) of shared files; by rank for rank files.
  const int winner = first_mismatch(comm, difference.has_value(), shared ? (difference ? static_cast<long long>(difference->file) : 0) : c.rank,
                                    shared && difference ? static_cast<long long>(difference->offset) : 0);
  const long long elements = detail::sum(comm, checked, "counting the elements checked");
  if (winner >= 0) {
    if (difference) result = difference->result;
    broadcast_result(comm, result, winner);
    if (!shared && c.size > 1) result.message = rank_file_name(winner, c.size) + ": " + result.message;
    result.elements_checked = elements;
    return result;
  }
  result.match = true;
  result.elements_checked = elements;
  result.message = shared ? shardinit::detail::match_summary(plan, elements, c.size)
                          : std::to_string(c.size) + " rank files match (" + std::to_string(elements) + " elements)";
  return result;
}

WriteStats write_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path, const WriteOptions& options) {
  return write_output(comm, manifest, path, OutputRequest{}, options);
}

VerifyResult verify_checkpoint(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& path, const VerifyOptions& options) {
  return verify_output(comm, manifest, path, OutputRequest{}, options);
}

WriteStats write_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                  const WriteOptions& options) {
  return write_output(comm, manifest, directory, output_request(OutputFormat::per_rank), options);
}

VerifyResult verify_rank_checkpoints(MPI_Comm comm, const Manifest& manifest, const std::filesystem::path& directory,
                                     const VerifyOptions& options) {
  return verify_output(comm, manifest, directory, output_request(OutputFormat::per_rank), options);
}

}  // namespace shardinit::mpi
