#include "supervisor/generation_output.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/syscall.h"

namespace baton {

void trim_tail(std::string& tail) {
  if (tail.size() <= kOutputTail) return;
  size_t cut = tail.size() - kOutputTail;
  // Whole lines: from the first line that starts inside the kept bytes, unless one line fills them.
  if (tail[cut - 1] != '\n') {
    const size_t nl = tail.find('\n', cut);
    if (nl != std::string::npos && nl + 1 < tail.size()) cut = nl + 1;
  }
  tail.erase(0, cut);
}

GenerationOutput::GenerationOutput(EventLoop& loop, Fd out, Fd err, OutputSink& out_sink,
                                   OutputSink& err_sink, int source, std::string label)
    : loop_(loop),
      out_(std::move(out)),
      err_(std::move(err)),
      out_sink_(out_sink),
      err_sink_(err_sink),
      source_(source) {
  if (!label.empty()) {
    out_prefix_.emplace(label, out_sink.journal());
    err_prefix_.emplace(std::move(label), err_sink.journal());
  }
}

GenerationOutput::~GenerationOutput() {
  if (out_) loop_.remove(out_.get());
  if (err_) loop_.remove(err_.get());
}

Status GenerationOutput::watch(const std::function<void()>& after_read) {
  for (bool is_err : {false, true}) {
    Fd& fd = is_err ? err_ : out_;
    if (!fd) continue;
    auto s = loop_.add(fd.get(), EPOLLIN, [this, is_err, after_read](uint32_t) {
      read(is_err);
      after_read();  // last: it may destroy this object
    });
    if (!s) return s;
  }
  return {};
}

void GenerationOutput::take_in() {
  if (out_) read(false);
  if (err_) read(true);
}

void GenerationOutput::read(bool is_err) {
  Fd& fd = is_err ? err_ : out_;
  if (!fd) return;
  OutputSink& sink = is_err ? err_sink_ : out_sink_;
  std::optional<LinePrefixer>& prefix = is_err ? err_prefix_ : out_prefix_;
  char buf[16384];
  for (;;) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, sizeof(buf));
    if (n > 0) {
      const std::string_view data(buf, static_cast<size_t>(n));
      if (prefix) {
        const std::string labelled = prefix->add(data);
        if (!labelled.empty()) sink.write(source_, labelled);
      } else {
        sink.write(source_, data);
      }
      tail_.append(buf, static_cast<size_t>(n));
      trim_tail(tail_);
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    if (prefix) {
      const std::string held = prefix->finish();  // "<" or "<4" the stream ended with
      if (!held.empty()) sink.write(source_, held);
    }
    loop_.remove(fd.get());  // EOF (every process of the generation closed it) or error
    fd.reset();
    return;
  }
}

}  // namespace baton
