#include "supervisor/generation_output.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "common/syscall.h"

namespace baton {

GenerationOutput::GenerationOutput(EventLoop& loop, Fd out, Fd err, OutputSink& out_sink,
                                   OutputSink& err_sink, int source)
    : loop_(loop),
      out_(std::move(out)),
      err_(std::move(err)),
      out_sink_(out_sink),
      err_sink_(err_sink),
      source_(source) {}

GenerationOutput::~GenerationOutput() {
  if (out_) loop_.remove(out_.get());
  if (err_) loop_.remove(err_.get());
}

Status GenerationOutput::watch(std::function<void()> after_read) {
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
  char buf[16384];
  for (;;) {
    ssize_t n = retry_eintr(::read, fd.get(), buf, sizeof(buf));
    if (n > 0) {
      (is_err ? err_sink_ : out_sink_)
          .write(source_, std::string_view(buf, static_cast<size_t>(n)));
      tail_.append(buf, static_cast<size_t>(n));
      if (tail_.size() > kOutputTail) tail_.erase(0, tail_.size() - kOutputTail);
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    loop_.remove(fd.get());  // EOF (every process of the generation closed it) or error
    fd.reset();
    return;
  }
}

}  // namespace baton
