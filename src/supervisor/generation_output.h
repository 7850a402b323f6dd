// generation_output.h: a generation's stdout and stderr, passed through to the supervisor's own
// and the last kOutputTail bytes kept for failure reports.
//
// Owns the read ends of the two pipes the spawner made (see spawner.h). The bytes go to the
// supervisor's stdout and stderr through their OutputSinks as they come, in order, never
// blocking: a reader that does not keep up costs dropped lines (counted), never a stalled
// supervisor. With a label ("[gen 3] ", `--prefix-output`), each line passed through starts with
// it (log.h's LinePrefixer; the tail stays as the app wrote it). Used from the supervisor's one
// thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "baton/fd.h"
#include "baton/result.h"
#include "supervisor/event_loop.h"
#include "supervisor/log.h"
#include "supervisor/output_sink.h"

namespace baton {

// Bytes of a generation's output kept for failure reports.
constexpr size_t kOutputTail = 4096;
// Keeps at most the last kOutputTail bytes of `tail`, starting at the beginning of a line (one
// line longer than that is cut where it must be). Pure.
void trim_tail(std::string& tail);

class GenerationOutput {
 public:
  // `out` and `err` are the nonblocking read ends of the child's stdout and stderr pipes; what
  // comes from them goes to `out_sink` and `err_sink` (which outlive this) as source `source`,
  // each line after `label` when it is not empty.
  GenerationOutput(EventLoop& loop, Fd out, Fd err, OutputSink& out_sink, OutputSink& err_sink,
                   int source, std::string label = "");
  ~GenerationOutput();  // stops watching whatever pipe is still open
  GenerationOutput(const GenerationOutput&) = delete;
  GenerationOutput& operator=(const GenerationOutput&) = delete;

  // Starts passing output through as it arrives. `after_read` runs after every read (data, EOF
  // or error) so the owner can check closed(); it may destroy this object.
  Status watch(const std::function<void()>& after_read);

  // Takes in what is already written, without waiting: call before tail() for an up-to-date one.
  void take_in();

  const std::string& tail() const { return tail_; }
  // Both pipes reached EOF (every process of the generation closed them) or failed.
  bool closed() const { return !out_ && !err_; }
  // The pipes' read ends (-1 once at EOF), to carry across an in-place upgrade.
  int out_fd() const { return out_.get(); }
  int err_fd() const { return err_.get(); }

 private:
  void read(bool is_err);

  EventLoop& loop_;
  Fd out_, err_;
  OutputSink& out_sink_;
  OutputSink& err_sink_;
  int source_;
  std::optional<LinePrefixer> out_prefix_, err_prefix_;  // with a label only
  std::string tail_;
};

}  // namespace baton
