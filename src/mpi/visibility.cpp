#include "mpi/visibility.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "format/regular_file.hpp"
#include "format/made_directories.hpp"
#include "mpi/agreement.hpp"
#include "mpi/wait.hpp"
#include "shardinit/util/sha256.hpp"
#include "util/printable.hpp"

namespace shardinit::mpi::detail {

namespace {

using shardinit::detail::printable;

constexpr std::size_t kTokenBytes = 32;

int rank_in(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

std::string random_token() {
  std::random_device device;  // getrandom(2): a token no other file holds
  std::string token(kTokenBytes, '\0');
  for (char& c : token) c = static_cast<char>(device() & 0xFF);
  return token;
}

// What identifies a file's content well enough to tell a node-local copy from the shared file: its
// size, modification time, first bytes, and the time its inode last changed, which copying tools
// that keep the modification time (cp -p, rsync -a) cannot set.
std::string fingerprint(const std::filesystem::path& path) {
  const shardinit::detail::RegularFile file(path, "file");
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) throw Error(ErrorKind::io, "cannot stat " + printable(path.string()) + ": " + std::strerror(errno));
  std::vector<std::byte> head(static_cast<std::size_t>(std::min<std::uint64_t>(file.size(), 64 * 1024)));
  head.resize(file.read_at(0, head));
  return std::to_string(file.size()) + " bytes, modified " + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ", changed " + std::to_string(st.st_ctim.tv_sec) + "." +
         std::to_string(st.st_ctim.tv_nsec) + ", first bytes sha256:" +
         Sha256::hex(std::string_view(reinterpret_cast<const char*>(head.data()), head.size())).substr(0, 16);
}

// `policy` with the inputs of the other ranks on this host added: under MPI every rank reads its own
// manifest, and one rank's output must not replace another's (device and inode tell the same file
// only within one host). Collective.
shardinit::detail::OutputPolicy with_the_inputs_of_this_host(MPI_Comm comm, shardinit::detail::OutputPolicy policy) {
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  unsigned long long mine[3] = {policy.inputs.empty() ? 0ULL : 1ULL, 0, 0};
  if (!policy.inputs.empty()) {
    mine[1] = policy.inputs.front().identity.device;
    mine[2] = policy.inputs.front().identity.inode;
  }
  const std::vector<unsigned long long> all = gather_all(comm, mine, "sharing what each rank reads");
  const int rank = rank_in(comm);
  const std::string host = host_of(comm, rank);
  for (int r = 0; r < ranks; ++r) {
    const unsigned long long* theirs = &all[3 * static_cast<std::size_t>(r)];
    if (r == rank || theirs[0] == 0 || host_of(comm, r) != host) continue;
    policy.inputs.push_back({shardinit::detail::FileIdentity{theirs[1], theirs[2]}, "the manifest of rank " + std::to_string(r)});
  }
  return policy;
}

}  // namespace

namespace {

// Steps 2 and 3 of a shared output: rank 0 runs `create` (which makes the output and returns the path of
// a file of it, where the token goes: overwritten later by the data), the others find that file, with
// that token, by the path rank 0 gives, and writable.
std::string share_created_file(MPI_Comm comm, const std::function<std::string()>& create) {
  const int rank = rank_in(comm);
  std::string path, token;
  run_agreed(comm, "creating the output", [&] {
    if (rank != 0) return;
    path = create();
    token = random_token();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    const bool written = fd >= 0 && ::pwrite(fd, token.data(), token.size(), 0) == static_cast<ssize_t>(token.size()) && ::fsync(fd) == 0;
    const int error = errno;
    if (fd >= 0) ::close(fd);
    if (!written) throw Error(ErrorKind::io, "cannot write " + printable(path) + ": " + std::strerror(error));
  });
  broadcast(comm, path, 0, "sharing the output file's name");
  broadcast(comm, token, 0, "sharing the output file's token");
  run_agreed(comm, "checking that every rank sees the output file", [&] {
    if (rank == 0) return;
    const std::string shown = printable(path);
    const std::string hint = ": -o must name a path on a filesystem every rank shares (for node-local storage, use --per-rank DIR)";
    std::string seen(kTokenBytes, '\0');
    std::size_t got = 0;
    try {
      const shardinit::detail::RegularFile file(path, "output file");
      got = file.read_at(0, std::as_writable_bytes(std::span(seen)));
    } catch (const Error& e) {
      throw Error(ErrorKind::io, "cannot see the output file that " + rank_and_host(comm, 0) + " created at " + shown + " (" +
                                     e.what() + ")" + hint);
    }
    if (got != kTokenBytes || seen != token) {
      throw Error(ErrorKind::io, "sees another file at " + shown + " than the one " + rank_and_host(comm, 0) +
                                     " created (the path leads to storage of this node's own)" + hint);
    }
    if (::access(path.c_str(), W_OK) != 0) {
      throw Error(ErrorKind::io, "cannot write the output file " + shown + ": " + std::strerror(errno));
    }
  });
  return path;
}

}  // namespace

SharedOutput create_shared_output(MPI_Comm comm, const std::filesystem::path& target,
                                  const shardinit::detail::OutputPolicy& own_policy, std::uint64_t size) {
  const shardinit::detail::OutputPolicy policy = with_the_inputs_of_this_host(comm, own_policy);
  // 1. Every rank: the directory exists here and the target may be replaced (or is absent).
  run_agreed(comm, "checking the output path on every rank", [&] { shardinit::detail::check_replaceable(target, policy); });
  // 2, 3. Rank 0 creates the temporary; every rank finds it.
  SharedOutput output;
  output.temporary = share_created_file(comm, [&] {
    output.file = std::make_unique<shardinit::detail::AtomicFile>(target, policy, size);
    return output.file->temporary_path().string();
  });
  return output;
}

SharedDirectory create_shared_directory(MPI_Comm comm, const std::filesystem::path& target,
                                        const shardinit::detail::OutputPolicy& own_policy,
                                        const std::vector<shardinit::detail::StagedFileSpec>& files,
                                        const shardinit::detail::StagedDirectory::Replaceable& replaceable) {
  const shardinit::detail::OutputPolicy policy = with_the_inputs_of_this_host(comm, own_policy);
  run_agreed(comm, "checking the output directory on every rank",
             [&] { shardinit::detail::check_replaceable_directory(target, policy, replaceable); });
  SharedDirectory output;
  const std::string first = share_created_file(comm, [&] {
    output.directory = std::make_unique<shardinit::detail::StagedDirectory>(target, policy, files, replaceable);
    return output.directory->file(files.at(0).name).string();
  });
  output.staging = std::filesystem::path(first).parent_path().string();
  return output;
}

void check_shared_input(MPI_Comm comm, const std::filesystem::path& path) {
  const int rank = rank_in(comm);
  std::string reference;  // rank 0's fingerprint, or "" if rank 0 cannot open the file
  if (rank == 0) {
    try {
      reference = fingerprint(path);
    } catch (const Error&) {
      reference.clear();  // rank 0 reports it itself, in the header check that follows
    }
  }
  broadcast(comm, reference, 0, "sharing what rank 0 sees of the input file");
  run_agreed(comm, "checking that every rank sees the input file", [&] {
    if (rank == 0 || reference.empty()) return;
    std::string mine;
    try {
      mine = fingerprint(path);
    } catch (const Error& e) {
      throw Error(e.kind(), std::string(e.what()) + ", although " + rank_and_host(comm, 0) + " can read it");
    }
    if (mine != reference) {
      throw Error(ErrorKind::io, "sees another file at " + printable(path.string()) + " than " + rank_and_host(comm, 0) +
                                     " does (" + mine + "; rank 0: " + reference +
                                     "): every rank must read the same file, on a filesystem they share");
    }
  });
}

std::unique_ptr<shardinit::detail::MadeDirectories> check_rank_output(MPI_Comm comm, const std::filesystem::path& directory,
                                                                      const std::filesystem::path& target,
                                                                      const shardinit::detail::OutputPolicy& own_policy,
                                                                      std::uint64_t size) {
  const shardinit::detail::OutputPolicy policy = with_the_inputs_of_this_host(comm, own_policy);
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  // 1. Every rank makes its directory and checks its target.
  std::unique_ptr<shardinit::detail::MadeDirectories> made;
  unsigned long long mine[2] = {size, 0};  // the file's size, the directory's filesystem (st_dev)
  run_agreed(comm, "checking the output directory on every rank", [&] {
    made = std::make_unique<shardinit::detail::MadeDirectories>(directory);
    shardinit::detail::check_replaceable(target, policy);
    struct stat st {};
    if (::stat(directory.c_str(), &st) == 0) mine[1] = static_cast<unsigned long long>(st.st_dev);
  });
  // 2. The ranks of one host that write to one filesystem need room for all their files together
  // (st_dev tells filesystems apart within a host, not across hosts).
  const std::vector<unsigned long long> all = gather_all(comm, mine, "sharing the sizes of the rank files");
  const int rank = rank_in(comm);
  const std::string host = host_of(comm, rank);
  unsigned long long total = 0;
  int sharing = 0;
  for (int r = 0; r < ranks; ++r) {
    if (host_of(comm, r) != host || all[2 * static_cast<std::size_t>(r) + 1] != mine[1]) continue;
    total += all[2 * static_cast<std::size_t>(r)];
    ++sharing;
  }
  run_agreed(comm, "checking the free space on every rank", [&] {
    shardinit::detail::check_free_space(directory, total,
                                        printable(target.string()) +
                                            (sharing > 1 ? " and the files of the " + std::to_string(sharing - 1) +
                                                               " other ranks of this host on its filesystem"
                                                         : std::string()));
  });
  return made;
}

}  // namespace shardinit::mpi::detail
