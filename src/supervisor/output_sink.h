// output_sink.h: the supervisor's own stdout or stderr, written without ever blocking.
//
// The apps' output (and baton's own log lines) go out through one sink per stream. A reader that
// does not keep up (a pipe nobody reads, a stopped terminal, a full journal) must not stall the
// supervisor: control, signals, readiness and reloads go on. So each sink writes without
// blocking, keeps what could not be written in a queue, in arrival order, and writes it when the
// stream takes more (EPOLLOUT). Each source (a generation, or baton itself as source 0) may have
// at most kMaxQueuedPerSource bytes queued; past that its lines are dropped, whole, and counted,
// until the queue has room again at a line boundary. The first drop of an episode is reported
// through on_overflow (one log line).
//
// How a write avoids blocking without changing the stream's flags, which it shares with other
// processes (the terminal, the shell): a pipe, fifo or character device is opened anew through
// /proc/self/fd with O_NONBLOCK (a description of its own); a socket is sent to with
// MSG_DONTWAIT; a regular file is written as is (it never waits for a reader).
//
// Single-threaded: the supervisor's event loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "baton/fd.h"
#include "supervisor/event_loop.h"

namespace baton {

class OutputSink {
 public:
  static constexpr size_t kMaxQueuedPerSource = 1 << 20;

  // Writes to `fd` (STDOUT_FILENO or STDERR_FILENO), which stays open and unchanged.
  OutputSink(EventLoop& loop, int fd);
  ~OutputSink();
  OutputSink(const OutputSink&) = delete;
  OutputSink& operator=(const OutputSink&) = delete;

  // The stream is the journal's (log.h): apps' lines keep a "<N>" priority in front.
  bool journal() const { return journal_; }

  // Called with the source on the first dropped line of an overflow episode.
  void on_overflow(std::function<void(int source)> cb) { on_overflow_ = std::move(cb); }

  // Writes `data` from `source`, now or later, or drops (and counts) its lines when the source
  // has too much queued already.
  void write(int source, std::string_view data);

  std::uint64_t dropped_lines(int source) const;
  std::uint64_t dropped_lines_total() const { return dropped_total_; }
  size_t queued_bytes() const { return queued_total_; }
  // The counters of a source that will write no more (what it queued is still written).
  void forget(int source);

  // Before an in-place upgrade (upgrade_state.h): writes what is queued, waiting up to `budget`
  // for the stream to take it; what is still queued then is dropped and counted.
  void drain_before_exec(std::chrono::milliseconds budget);
  // Dropped lines counted by the supervisor this one was upgraded from.
  void carry_dropped(int source, std::uint64_t lines) { sources_[source].dropped += lines; }
  void carry_dropped_total(std::uint64_t lines) { dropped_total_ += lines; }

 private:
  struct Source {
    size_t queued = 0;
    bool dropping = false;            // discarding up to the next newline
    bool ends_line = true;            // what was queued last ends with '\n'
    bool input_at_line_start = true;  // what came in last ended with '\n'
    std::uint64_t dropped = 0;
  };
  struct Chunk {
    int source = 0;
    std::string data;
  };
  enum class Mode { kNonblockingFd, kSocket, kPlain };

  void enqueue(int source, Source& s, std::string_view data);
  // Writes as much of the queue as the stream takes now; watches EPOLLOUT for the rest.
  void flush();
  // Writes without blocking: bytes written, 0 when it would block, -1 on a broken stream.
  ssize_t write_some(std::string_view data);

  EventLoop& loop_;
  int fd_;
  Fd own_;  // the nonblocking description (kNonblockingFd)
  Mode mode_ = Mode::kPlain;
  bool watching_ = false;
  bool broken_ = false;  // the reader is gone (EPIPE): everything is dropped
  bool journal_ = false;
  std::deque<Chunk> queue_;
  std::map<int, Source> sources_;
  size_t queued_total_ = 0;
  std::uint64_t dropped_total_ = 0;
  std::function<void(int)> on_overflow_;
};

}  // namespace baton
