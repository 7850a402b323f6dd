#include "supervisor/output_sink.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "common/syscall.h"
#include "supervisor/log.h"

namespace baton {

OutputSink::OutputSink(EventLoop& loop, int fd) : loop_(loop), fd_(fd), journal_(is_journal(fd)) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISREG(st.st_mode)) {
    mode_ = Mode::kPlain;
  } else if (S_ISSOCK(st.st_mode)) {
    mode_ = Mode::kSocket;
  } else {
    const std::string self = "/proc/self/fd/" + std::to_string(fd);
    own_.reset(::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    // Cannot reopen (no /proc): blocking writes, as before this sink existed.
    mode_ = own_ ? Mode::kNonblockingFd : Mode::kPlain;
  }
}

OutputSink::~OutputSink() {
  if (watching_) loop_.remove(mode_ == Mode::kNonblockingFd ? own_.get() : fd_);
  // What is still queued gets one last try, without waiting.
  for (const auto& c : queue_) {
    if (write_some(c.data) != static_cast<ssize_t>(c.data.size())) break;
  }
}

ssize_t OutputSink::write_some(std::string_view data) {
  ssize_t n = -1;
  switch (mode_) {
    case Mode::kNonblockingFd:
      n = retry_eintr(::write, own_.get(), data.data(), data.size());
      break;
    case Mode::kSocket:
      n = retry_eintr(::send, fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      break;
    case Mode::kPlain:
      n = retry_eintr(::write, fd_, data.data(), data.size());
      break;
  }
  if (n >= 0) return n;
  return errno == EAGAIN ? 0 : -1;
}

void OutputSink::write(int source, std::string_view data) {
  Source& s = sources_[source];
  if (broken_) {
    s.dropped += static_cast<std::uint64_t>(std::count(data.begin(), data.end(), '\n'));
    dropped_total_ += static_cast<std::uint64_t>(std::count(data.begin(), data.end(), '\n'));
    return;
  }
  const bool ends_line = !data.empty() && data.back() == '\n';
  while (!data.empty()) {
    if (s.dropping && s.input_at_line_start && s.queued < kMaxQueuedPerSource) {
      s.dropping = false;  // room again, and the input is at a line start
    }
    s.input_at_line_start = false;
    if (s.dropping) {
      const size_t nl = data.find('\n');
      if (nl == std::string_view::npos) return;  // the rest of a dropped line
      data.remove_prefix(nl + 1);
      s.dropped += 1;
      dropped_total_ += 1;
      if (s.queued < kMaxQueuedPerSource) s.dropping = false;  // room again, at a line start
      continue;
    }
    const size_t room = kMaxQueuedPerSource - std::min(s.queued, kMaxQueuedPerSource);
    if (data.size() <= room) {
      enqueue(source, s, data);
      break;
    }
    // Too much: what fits up to its last whole line is kept, the line it would cut is dropped.
    std::string_view fits = data.substr(0, room);
    const size_t last_nl = fits.rfind('\n');
    if (last_nl != std::string_view::npos) {
      enqueue(source, s, fits.substr(0, last_nl + 1));
      data.remove_prefix(last_nl + 1);
    }
    if (!s.ends_line) enqueue(source, s, "\n");  // a line already begun ends here, cut
    const bool first = !s.dropping;
    s.dropping = true;
    if (first && on_overflow_) on_overflow_(source);
  }
  if (ends_line) s.input_at_line_start = true;
  flush();
}

void OutputSink::enqueue(int source, Source& s, std::string_view data) {
  if (data.empty()) return;
  s.ends_line = data.back() == '\n';
  if (!queue_.empty() && queue_.back().source == source) {
    queue_.back().data.append(data);
  } else {
    queue_.push_back(Chunk{source, std::string(data)});
  }
  s.queued += data.size();
  queued_total_ += data.size();
}

void OutputSink::flush() {
  while (!queue_.empty()) {
    Chunk& head = queue_.front();
    ssize_t n = write_some(head.data);
    if (n < 0) {
      // The reader is gone for good: drop everything, from now on too.
      broken_ = true;
      for (auto& c : queue_) {
        auto lines = static_cast<std::uint64_t>(std::count(c.data.begin(), c.data.end(), '\n'));
        if (auto it = sources_.find(c.source); it != sources_.end()) {
          it->second.dropped += lines;
          it->second.queued = 0;
        }
        dropped_total_ += lines;
      }
      queue_.clear();
      queued_total_ = 0;
      break;
    }
    if (n == 0) break;
    const size_t written = static_cast<size_t>(n);
    if (auto it = sources_.find(head.source); it != sources_.end()) {
      it->second.queued -= std::min(it->second.queued, written);
    }
    queued_total_ -= std::min(queued_total_, written);
    if (written == head.data.size()) {
      queue_.pop_front();
    } else {
      head.data.erase(0, written);
    }
  }
  const bool want = !queue_.empty();  // (epoll refuses regular files: they never wait)
  const int fd = mode_ == Mode::kNonblockingFd ? own_.get() : fd_;
  if (want && !watching_) {
    watching_ = static_cast<bool>(loop_.add(fd, EPOLLOUT, [this](uint32_t) { flush(); }));
  } else if (!want && watching_) {
    loop_.remove(fd);
    watching_ = false;
  }
}

void OutputSink::drain_before_exec(std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  flush();
  while (!queue_.empty()) {
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{mode_ == Mode::kNonblockingFd ? own_.get() : fd_, POLLOUT, 0};
    if (retry_eintr(::poll, &p, 1, static_cast<int>(left.count())) <= 0) break;
    flush();
  }
  for (auto& c : queue_) {
    auto lines = static_cast<std::uint64_t>(std::count(c.data.begin(), c.data.end(), '\n'));
    sources_[c.source].dropped += lines;
    sources_[c.source].queued = 0;
    dropped_total_ += lines;
  }
  queue_.clear();
  queued_total_ = 0;
  if (watching_) {
    loop_.remove(mode_ == Mode::kNonblockingFd ? own_.get() : fd_);
    watching_ = false;
  }
}

std::uint64_t OutputSink::dropped_lines(int source) const {
  auto it = sources_.find(source);
  return it == sources_.end() ? 0 : it->second.dropped;
}

void OutputSink::forget(int source) {
  auto it = sources_.find(source);
  if (it != sources_.end() && it->second.queued == 0) sources_.erase(it);
}

}  // namespace baton
