#include "shardinit/checkpoint/checkpoint.hpp"

#include "checkpoint/checkpoint_internal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "checkpoint/pipeline.hpp"
#include "format/made_directories.hpp"
#include "format/regular_file.hpp"
#include "format/staged_directory.hpp"
#include "shardinit/checkpoint/rank_checkpoint.hpp"

#include "shardinit/error.hpp"
#include "util/printable.hpp"
#include "shardinit/version.hpp"

namespace shardinit {

namespace {

// Explains how two headers differ, in the terms a user cares about.
std::string header_difference(const SafetensorsLayout& expected, const SafetensorsReader& actual,
                              const SafetensorsMetadata& expected_metadata, std::optional<std::string>& tensor) {
  // By name, once: a file of 400,000 tensors is compared in linear time.
  std::unordered_map<std::string_view, const SafetensorsTensor*> in_file, in_manifest;
  for (const auto& a : actual.tensors()) in_file.emplace(a.name, &a);
  for (const auto& e : expected.tensors()) in_manifest.emplace(e.name, &e);
  const auto find = [&in_file](const std::string& name) -> const SafetensorsTensor* {
    const auto it = in_file.find(name);
    return it == in_file.end() ? nullptr : it->second;
  };
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = find(e.name);
    tensor = e.name;
    if (a == nullptr) return "tensor '" + detail::printable(e.name) + "' is missing from the file";
    if (a->dtype != e.dtype) {
      return "tensor '" + detail::printable(e.name) + "' has dtype " + std::string(dtype_safetensors_name(a->dtype)) + ", expected " +
             std::string(dtype_safetensors_name(e.dtype));
    }
    if (a->shape != e.shape) {
      return "tensor '" + detail::printable(e.name) + "' has shape " + shape_to_string(a->shape) + ", expected " + shape_to_string(e.shape);
    }
  }
  for (const auto& a : actual.tensors()) {
    tensor = a.name;
    if (!in_manifest.contains(a.name)) {
      return "the file has a tensor '" + detail::printable(a.name) + "' that the manifest does not place in it";
    }
  }
  tensor.reset();
  for (const auto& [key, value] : expected_metadata) {
    const auto it = actual.metadata().find(key);
    if (it == actual.metadata().end()) return "metadata key " + detail::quote(key) + " is missing";
    if (it->second != value) {
      const bool short_value = value.size() < 80 && it->second.size() < 80;
      return "metadata " + detail::quote(key) + " differs" +
             (short_value ? ": expected " + detail::quote(value) + ", found " + detail::quote(it->second) : std::string());
    }
  }
  for (const auto& [key, value] : actual.metadata()) {
    if (!expected_metadata.contains(key)) return "the file has unexpected metadata key " + detail::quote(key);
  }
  for (const auto& e : expected.tensors()) {
    const SafetensorsTensor* a = find(e.name);
    if (a->begin != e.begin) {
      tensor = e.name;
      return "tensor '" + detail::printable(e.name) + "' is stored at data offset " + std::to_string(a->begin) + ", expected " +
             std::to_string(e.begin) + " (tensors are not in shardinit's order)";
    }
  }
  const auto& x = expected.prefix();
  const auto& y = actual.prefix();
  std::size_t at = 0;
  while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
  return "header bytes differ from byte " + std::to_string(at) + " (formatting)";
}

// The bytes of a rank's ranges not yet written or read, per file: when a file's last piece is
// done, it can be closed.
class BytesLeft {
 public:
  BytesLeft(const std::vector<FileRange>& ranges, std::size_t files) : left_(files, 0) {
    for (const FileRange& r : ranges) left_[r.file] += r.end - r.begin;
  }
  // `bytes` more of `file` are done; whether that was the last of them.
  bool finish(std::size_t file, std::uint64_t bytes) {
    left_[file] -= std::min(left_[file], bytes);
    return left_[file] == 0;
  }

 private:
  std::vector<std::uint64_t> left_;
};

// Descriptors of this rank's own files, for its ranges only: each opened when its first piece is
// written and flushed and closed as soon as its last one is, so that a rank whose range spans
// thousands of shards holds only the few its pieces in flight touch (never the process's limit on
// open files); closed on every way out.
class Descriptors {
 public:
  Descriptors(const std::vector<std::filesystem::path>& paths, const std::vector<std::filesystem::path>& shown,
              const std::vector<FileRange>& ranges, int flags)
      : paths_(paths), shown_(shown), flags_(flags), fds_(paths.size(), -1), left_(ranges, paths.size()) {}
  ~Descriptors() {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  [[nodiscard]] int fd(std::size_t file) {
    if (fds_[file] < 0) {
      fds_[file] = ::open(paths_[file].c_str(), flags_ | O_CLOEXEC);
      if (fds_[file] < 0) {
        throw Error(ErrorKind::io, "cannot open " + detail::printable(shown_[file].string()) + ": " + std::strerror(errno));
      }
    }
    return fds_[file];
  }
  [[nodiscard]] const std::filesystem::path& path(std::size_t file) const { return shown_[file]; }
  // `bytes` more of `file` are written: once all of its ranges are, it is flushed and closed.
  void wrote(std::size_t file, std::uint64_t bytes) {
    if (left_.finish(file, bytes)) flush_and_close(file);
  }
  // fsync, then close, each: what this rank wrote is on stable storage (and on a network
  // filesystem's server, where the other nodes and the final rename see it).
  void flush_and_close() {
    for (std::size_t i = 0; i < fds_.size(); ++i) flush_and_close(i);
  }

 private:
  void flush_and_close(std::size_t file) {
    if (fds_[file] < 0) return;
    const int fd = std::exchange(fds_[file], -1);
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      const int error = errno;
      throw Error(ErrorKind::io, "cannot flush " + detail::printable(shown_[file].string()) + ": " + std::strerror(error));
    }
  }

  std::vector<std::filesystem::path> paths_, shown_;
  int flags_;
  std::vector<int> fds_;
  BytesLeft left_;
};

void write_all_at(int fd, std::span<const std::byte> bytes, std::uint64_t offset, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      throw Error(ErrorKind::io, "cannot write " + detail::printable(path.string()) + ": " + std::strerror(error));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

// Starts the disk write of bytes just written, without waiting: the final fsync then finds little
// left to do, so writing to the disk overlaps the generation of the next pieces instead of following
// it. A no-op where there is no writeback (tmpfs); an error here is the fsync's to report.
void start_writeback(int fd, std::size_t size, std::uint64_t offset) {
  (void)::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(size), SYNC_FILE_RANGE_WRITE);
}

void read_all_at(int fd, std::span<std::byte> bytes, std::uint64_t offset, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error(ErrorKind::io, "cannot read " + detail::printable(path.string()) + ": " +
                                     (n < 0 ? std::string(std::strerror(errno)) : std::string("the file ends early")));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
}

std::vector<detail::FileBytes> file_bytes(const WritePlan& plan, const detail::ManifestFillers& fillers) {
  std::vector<detail::FileBytes> bytes;
  for (const PlannedFile& f : plan.files) bytes.emplace_back(f, fillers);
  return bytes;
}

}  // namespace

detail::OutputPolicy output_policy(const Manifest& manifest, bool overwrite) {
  detail::OutputPolicy policy{overwrite, {}};
  if (manifest.source) {
    policy.inputs.push_back({detail::FileIdentity{manifest.source->device, manifest.source->inode},
                             "the " + manifest.source->role + " " + detail::printable(manifest.source->path.string())});
  }
  return policy;
}

SafetensorsLayout checkpoint_layout(const Manifest& manifest) {
  std::vector<SafetensorsLayout::Entry> entries;
  for (const auto& t : manifest.tensors) entries.push_back({t.name, t.dtype, t.shape});
  return SafetensorsLayout(std::move(entries), checkpoint_metadata(manifest));
}

std::optional<VerifyResult> check_header(const SafetensorsLayout& expected, const SafetensorsMetadata& expected_metadata,
                                        const std::filesystem::path& path) {
  VerifyResult result;
  std::optional<SafetensorsReader> file;
  try {
    file.emplace(path);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::bad_file) throw;
    result.message = e.what();
    return result;
  }
  if (file->prefix() == expected.prefix()) return std::nullopt;
  result.message = header_difference(expected, *file, expected_metadata, result.tensor);
  return result;
}

namespace detail {

std::vector<std::filesystem::path> planned_paths(const WritePlan& plan, const std::filesystem::path& target) {
  std::vector<std::filesystem::path> paths;
  for (const PlannedFile& f : plan.files) paths.push_back(plan.format == OutputFormat::safetensors ? target : target / f.name);
  return paths;
}

std::function<bool(const std::string&)> hf_replaceable(const WritePlan& plan) {
  std::vector<std::string> companions;
  for (const CompanionFile& c : plan.companions) companions.push_back(c.name);
  return [companions](const std::string& name) {
    return name == kHfIndexFile || (name.starts_with("model") && name.ends_with(".safetensors")) ||
           std::find(companions.begin(), companions.end(), name) != companions.end();
  };
}

std::vector<StagedFileSpec> staged_files(const WritePlan& plan) {
  std::vector<StagedFileSpec> files;
  for (const PlannedFile& f : plan.files) files.push_back({f.name, f.layout.file_size()});
  if (plan.index) files.push_back({kHfIndexFile, plan.index->size()});
  for (const CompanionFile& c : plan.companions) files.push_back({c.name, c.text.size()});
  return files;
}

void write_ranges(const WritePlan& plan, const std::vector<std::filesystem::path>& paths, const std::vector<std::filesystem::path>& shown,
                  const ManifestFillers& fillers, const RangeWork& work) {
  Descriptors files(paths, shown, plan.ranges, O_WRONLY);
  const std::vector<FileBytes> bytes = file_bytes(plan, fillers);
  const std::vector<Piece> pieces = pieces_of(plan.ranges);
  if (!pieces.empty() && work.fault) work.fault("fill");
  const std::int64_t total = static_cast<std::int64_t>(plan.bytes_of_this_rank());
  std::int64_t done = 0;
  generate_and_write(
      pieces, [&](const Piece& p, std::span<std::byte> out) { bytes[p.file].produce(p.begin, out); },
      [&](const Piece& p, std::span<std::byte> out) {
        if (work.fault) work.fault("write");
        write_all_at(files.fd(p.file), out, p.begin, files.path(p.file));
        start_writeback(files.fd(p.file), out.size(), p.begin);
        files.wrote(p.file, out.size());
        done += static_cast<std::int64_t>(out.size());
        if (work.progress) work.progress(done, total);
      },
      PipelineOptions{work.threads, work.after_piece});
  files.flush_and_close();
}

void write_texts(const WritePlan& plan, const std::filesystem::path& staging, const std::filesystem::path& target) {
  const auto write_text = [&](const std::string& name, const std::string& text) {
    Descriptors file({staging / name}, {target / name}, {FileRange{0, 0, text.size()}}, O_WRONLY);
    write_all_at(file.fd(0), std::as_bytes(std::span(text)), 0, target / name);
    file.flush_and_close();
  };
  if (plan.index) write_text(kHfIndexFile, *plan.index);
  for (const CompanionFile& c : plan.companions) write_text(c.name, c.text);
}

namespace {

VerifyResult mismatch(std::string message) {
  VerifyResult result;
  result.message = std::move(message);
  return result;
}

constexpr std::uint64_t kMaxIndexBytes = std::uint64_t{1} << 30;

// The index's text; one larger than any index could be is a file of the wrong form (bad_file: a
// mismatch), not a bad argument.
std::string read_index(const std::filesystem::path& index) {
  try {
    return RegularFile(index, "index file").read_all(kMaxIndexBytes);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::invalid_argument) throw;
    throw Error(ErrorKind::bad_file, e.what());
  }
}

// A Hugging Face directory to check must be there: a missing one is an input that cannot be read
// (exit 3), as a missing file is, not a directory whose shards are missing.
void require_directory(const std::filesystem::path& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw Error(ErrorKind::io, "cannot read " + detail::printable(directory.string()) + ": " +
                                   (std::filesystem::exists(directory, ec) ? "not a directory" : "no such directory"));
  }
}

// Files in a Hugging Face directory that a loader would read but the plan does not name: a
// model.safetensors beside an index (transformers loads it first), shards of another split, an index
// where one file is planned. The first such name, or nothing.
std::optional<std::string> unplanned_weights(const WritePlan& plan, const std::filesystem::path& directory) {
  std::set<std::string> planned;
  for (const PlannedFile& f : plan.files) planned.insert(f.name);
  if (plan.index) planned.insert(kHfIndexFile);
  std::error_code ec;
  std::set<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (is_hf_weights_file_name(name) && !planned.contains(name)) found.insert(name);
  }
  if (found.empty()) return std::nullopt;
  return *found.begin();
}

}  // namespace

std::optional<std::string> hf_index_text(const std::filesystem::path& directory) {
  require_directory(directory);
  const std::filesystem::path index = directory / kHfIndexFile;
  std::error_code ec;
  if (!std::filesystem::exists(index, ec)) return std::nullopt;
  return read_index(index);
}

std::optional<VerifyResult> take_split_found(OutputRequest& request, const Manifest& manifest,
                                             const std::optional<std::string>& index_text) {
  if (!index_text) {  // no index: everything in model.safetensors
    HfSplit one(manifest.tensors.empty() ? 0 : 1);
    for (std::size_t i = 0; i < manifest.tensors.size(); ++i) one[0].push_back(i);
    request.split = std::move(one);
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (const ManifestTensor& t : manifest.tensors) names.push_back(t.name);
  HfIndexSplit found;
  try {
    found = split_of_index(parse_hf_index(*index_text, kHfIndexFile), names);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::bad_file) throw;
    return mismatch(e.what());
  }
  if (!found.split) return mismatch(std::string(kHfIndexFile) + " does not split the manifest's tensors: " + found.problem);
  request.split = std::move(found.split);
  return std::nullopt;
}

std::optional<VerifyResult> check_headers(const WritePlan& plan, const std::vector<std::filesystem::path>& paths,
                                          const std::filesystem::path& target) {
  if (plan.format == OutputFormat::hf) {
    require_directory(target);
    const std::filesystem::path index = target / kHfIndexFile;
    std::error_code ec;
    const bool has_index = std::filesystem::exists(index, ec);
    // A split made at a max shard size can differ from the directory's by that size alone.
    const std::string hint = plan.split_given ? "" : " (written with another --max-shard-size?)";
    if (plan.index && !has_index) {
      return mismatch("the directory has no " + std::string(kHfIndexFile) + ", expected " + std::to_string(plan.files.size()) +
                      " shards" + hint);
    }
    if (!plan.index && has_index) {
      return mismatch("the directory has " + std::string(kHfIndexFile) + ", but everything fits in one " + kHfSingleFile + hint);
    }
    if (plan.index) {
      const std::string text = read_index(index);
      if (text != *plan.index) {
        std::size_t at = 0;
        while (at < text.size() && at < plan.index->size() && text[at] == (*plan.index)[at]) ++at;
        return mismatch(std::string(kHfIndexFile) + " differs from the expected index from byte " + std::to_string(at) + hint);
      }
    }
  }
  for (const CompanionFile& c : plan.companions) {  // verify --hf: the config and manifest beside the shards
    const std::filesystem::path path = target / c.name;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return mismatch(c.name + " is missing from the directory");
    const std::string text = RegularFile(path, c.name).read_all(c.text.size() + 1);
    if (text != c.text) {
      std::size_t at = 0;
      while (at < text.size() && at < c.text.size() && text[at] == c.text[at]) ++at;
      return mismatch(c.name + " differs from the expected file from byte " + std::to_string(at));
    }
  }
  for (std::size_t i = 0; i < plan.files.size(); ++i) {
    const PlannedFile& f = plan.files[i];
    if (plan.format == OutputFormat::hf) {
      std::error_code ec;
      if (!std::filesystem::exists(paths[i], ec)) return mismatch(f.name + " is missing from the directory");
    }
    if (auto different = check_header(f.layout, f.metadata, paths[i])) {
      if (plan.format == OutputFormat::hf) different->message = f.name + ": " + different->message;
      return different;
    }
  }
  // Last, once every planned file is there: weights a loader would read that the checkpoint does not name.
  if (plan.format == OutputFormat::hf) {
    if (const auto stray = unplanned_weights(plan, target)) {
      return mismatch("the directory also has " + *stray + ", which is not part of this checkpoint" +
                      (*stray == kHfSingleFile ? " (transformers would load it instead of the index)" : std::string()) +
                      (plan.split_given ? "" : " (written with another --max-shard-size?)"));
    }
  }
  return std::nullopt;
}

std::optional<RangeDifference> compare_ranges(const WritePlan& plan, const std::vector<std::filesystem::path>& paths,
                                              const ManifestFillers& fillers, const RangeWork& work, Index& elements_checked) {
  // Each file open from its first piece read to its last, as for writing (Descriptors).
  std::vector<std::optional<RegularFile>> files(paths.size());
  BytesLeft left(plan.ranges, paths.size());
  const std::vector<FileBytes> bytes = file_bytes(plan, fillers);
  const std::vector<Piece> pieces = pieces_of(plan.ranges);
  const auto difference = read_and_compare(
      pieces, [&](const Piece& p, std::span<std::byte> out) { bytes[p.file].produce(p.begin, out); },
      [&](const Piece& p, std::span<std::byte> out) {
        if (work.fault) work.fault("read");
        if (!files[p.file]) files[p.file].emplace(paths[p.file], "safetensors file");
        read_all_at(files[p.file]->fd(), out, p.begin, paths[p.file]);
        if (left.finish(p.file, out.size())) files[p.file].reset();
      },
      PipelineOptions{work.threads, work.after_piece});
  if (!difference) {
    elements_checked = plan.elements_of_this_rank();
    return std::nullopt;
  }
  const Piece& p = pieces[difference->piece];
  const FileBytes& file = bytes[p.file];
  RangeDifference found;
  found.file = p.file;
  found.offset = difference->offset;
  found.result.message = describe_data_difference(file, p.begin, difference->offset, difference->expected, difference->found,
                                                  plan.format == OutputFormat::per_rank);
  if (plan.format == OutputFormat::hf) found.result.message = plan.files[p.file].name + ": " + found.result.message;
  if (const auto where = file.locate(difference->offset)) {
    const StoredTensor& s = file.file().stored[where->stored];
    found.result.tensor = s.tensor->name;
    found.result.index = plan.format == OutputFormat::per_rank ? where->element
                                                               : box_element_flat(s.space, s.box, s.first + where->element);
  }
  return found;
}

std::string match_summary(const WritePlan& plan, Index elements, int ranks) {
  std::string text = std::to_string(plan.tensor_count()) + " tensors, " + std::to_string(elements) + " elements and the header" +
                     (plan.files.size() > 1 ? "s" : "") + " match";
  if (plan.format == OutputFormat::hf && plan.files.size() > 1) text += " (" + std::to_string(plan.files.size()) + " shards and the index)";
  if (ranks > 1) text += " (checked by " + std::to_string(ranks) + " ranks)";
  return text;
}

}  // namespace detail

WriteStats write_output(const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                        const WriteOptions& options, RankInJob job) {
  if (request.format != OutputFormat::per_rank && job.world != 1) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(job.rank) + " of " + std::to_string(job.world) +
                                                 " alone cannot write a shared output (that needs every rank under mpirun): use --per-rank DIR");
  }
  const WritePlan plan = plan_output(manifest, request, job.world, job.rank);
  const detail::ManifestFillers fillers(manifest);
  const detail::OutputPolicy policy = output_policy(manifest, options.overwrite);
  const detail::RangeWork work{options.threads, {}, {}, options.progress};
  const Index elements = plan.elements_of_this_rank();  // alone: all of the job's
  WriteStats stats{plan.tensor_count(), elements, plan.total_bytes(), elements};
  switch (request.format) {
    case OutputFormat::safetensors: {
      detail::AtomicFile file(target, policy, plan.files[0].layout.file_size());
      detail::write_ranges(plan, {file.temporary_path()}, {target}, fillers, work);
      file.commit();
      break;
    }
    case OutputFormat::per_rank: {
      auto made = std::make_unique<detail::MadeDirectories>(target);
      detail::AtomicFile file(target / plan.files[0].name, policy, plan.files[0].layout.file_size());
      detail::write_ranges(plan, {file.temporary_path()}, {target / plan.files[0].name}, fillers, work);
      file.commit();
      made->keep();
      break;
    }
    case OutputFormat::hf: {
      const auto files = detail::staged_files(plan);
      detail::StagedDirectory staged(target, policy, files, detail::hf_replaceable(plan));
      detail::write_ranges(plan, detail::planned_paths(plan, staged.staging()), detail::planned_paths(plan, target), fillers, work);
      detail::write_texts(plan, staged.staging(), target);
      staged.commit(files);
      break;
    }
  }
  return stats;
}

VerifyResult verify_output(const Manifest& manifest, const std::filesystem::path& target, const OutputRequest& request,
                           const VerifyOptions& options, RankInJob job) {
  if (request.format != OutputFormat::per_rank && job.world != 1) {
    throw Error(ErrorKind::invalid_argument, "rank " + std::to_string(job.rank) + " of " + std::to_string(job.world) +
                                                 " alone checks its own rank file: use --per-rank DIR");
  }
  OutputRequest effective = request;
  if (request.format == OutputFormat::hf && request.split_as_found) {
    if (auto mismatch = detail::take_split_found(effective, manifest, detail::hf_index_text(target))) return *mismatch;
  }
  const WritePlan plan = plan_output(manifest, effective, job.world, job.rank);
  const auto paths = detail::planned_paths(plan, target);
  if (auto mismatch = detail::check_headers(plan, paths, target)) return *mismatch;
  const detail::ManifestFillers fillers(manifest);
  Index elements = 0;
  if (auto difference = detail::compare_ranges(plan, paths, fillers, detail::RangeWork{options.threads, {}, {}, {}}, elements)) {
    return difference->result;
  }
  VerifyResult result;
  result.match = true;
  result.elements_checked = elements;
  result.message = detail::match_summary(plan, elements, 1);
  return result;
}

WriteStats write_checkpoint(const Manifest& manifest, const std::filesystem::path& path, const WriteOptions& options) {
  return write_output(manifest, path, OutputRequest{}, options);
}

VerifyResult verify_checkpoint(const Manifest& manifest, const std::filesystem::path& path, const VerifyOptions& options) {
  return verify_output(manifest, path, OutputRequest{}, options);
}

}  // namespace shardinit
