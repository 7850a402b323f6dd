#include "adopt/check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

#include "baton/fd.h"
#include "common/path_search.h"
#include "common/syscall.h"

namespace baton::adopt {
namespace {

constexpr int kMaxInterpreterDepth = 4;
constexpr const char kAdvice[] =
    " (use a dynamically linked build, or make the app take LISTEN_FDS)";

std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  return search_path(name).value_or("");
}

Result<std::string> read_head(const std::string& path, size_t size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::from_errno("open " + path);
  std::string data(size, '\0');
  size_t got = 0;
  while (got < size) {
    ssize_t n = retry_eintr(::read, fd.get(), data.data() + got, size - got);
    if (n < 0) return Error::from_errno("read " + path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

Result<std::string> read_at(const std::string& path, off_t offset, size_t size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::from_errno("open " + path);
  std::string data(size, '\0');
  ssize_t n = retry_eintr(::pread, fd.get(), data.data(), size, offset);
  if (n < 0) return Error::from_errno("read " + path);
  data.resize(static_cast<size_t>(n));
  return data;
}

Status check_elf(const std::string& path, const std::string& head) {
  if (head.size() < EI_NIDENT + 2 || head[EI_CLASS] != ELFCLASS64) {
    return Error(path +
                 " is a 32-bit program: the 64-bit libbaton_adopt.so cannot load into it, "
                 "so --adopt cannot hand it baton's sockets" +
                 kAdvice);
  }
  if (head.size() < sizeof(Elf64_Ehdr)) return Error(path + ": truncated ELF header");
  Elf64_Ehdr eh;
  std::memcpy(&eh, head.data(), sizeof(eh));
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) return Error(path + " is not an ELF program");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 4096) {
    return Error(path + ": unreadable ELF program headers");
  }
  auto table =
      read_at(path, static_cast<off_t>(eh.e_phoff), size_t{eh.e_phnum} * sizeof(Elf64_Phdr));
  if (!table) return table.error();
  if (table->size() != size_t{eh.e_phnum} * sizeof(Elf64_Phdr)) {
    return Error(path + ": truncated ELF program headers");
  }
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, table->data() + i * sizeof(Elf64_Phdr), sizeof(ph));
    if (ph.p_type == PT_INTERP) return {};
  }
  return Error(path +
               " is statically linked: LD_PRELOAD cannot load into it, so --adopt cannot "
               "hand it baton's sockets" +
               kAdvice);
}

Status check(const std::string& program, int depth) {
  std::string path = find_in_path(program);
  if (path.empty()) return Error(program + ": not found in PATH");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(path);
  if (!S_ISREG(st.st_mode)) return Error(path + " is not a regular file");
  if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) {
    return Error(path +
                 " is setuid/setgid: the loader ignores LD_PRELOAD for it, so --adopt "
                 "cannot hand it baton's sockets");
  }
  auto head = read_head(path, 256);
  if (!head) return head.error();
  if (head->starts_with("\x7f"
                        "ELF"))
    return check_elf(path, *head);
  if (head->starts_with("#!")) {
    if (depth >= kMaxInterpreterDepth) return Error(path + ": too many nested #! interpreters");
    std::string line = head->substr(
        2, head->find('\n') == std::string::npos ? std::string::npos : head->find('\n') - 2);
    std::stringstream words(line);
    std::string interpreter, argument;
    words >> interpreter >> argument;
    if (interpreter.empty()) return Error(path + ": empty #! line");
    Status s = check(interpreter, depth + 1);
    if (!s) return s;
    // `#!/usr/bin/env python3`: env (dynamic) execs python3, which is the one that must load us.
    if (interpreter.ends_with("/env") && !argument.empty() && argument[0] != '-') {
      return check(argument, depth + 1);
    }
    return {};
  }
  return Error(path + " is neither an ELF program nor a #! script");
}

}  // namespace

Status check_adoptable(const std::string& program) { return check(program, 0); }

Status check_adopt_library(const std::string& library) {
  if (::access(library.c_str(), R_OK) != 0) {
    return Error::from_errno("adoption library " + library +
                             " (install it, or point BATON_ADOPT_LIBRARY at it)");
  }
  return {};
}

}  // namespace baton::adopt
