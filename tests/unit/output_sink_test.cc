// OutputSink over a real pipe: never blocks, keeps order, drops whole lines past its limit.
#include "supervisor/output_sink.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "supervisor/generation_output.h"

namespace baton {
namespace {

class OutputSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // as in the supervisor, which blocks it: EPIPE instead
    auto l = EventLoop::create();
    ASSERT_TRUE(l.ok());
    loop_.emplace(std::move(l).value());
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    read_end_.reset(p[0]);
    write_end_.reset(p[1]);
    ::fcntl(read_end_.get(), F_SETFL, O_NONBLOCK);
  }
  // Everything the pipe holds now.
  std::string drain() {
    std::string out;
    char buf[65536];
    for (ssize_t n; (n = ::read(read_end_.get(), buf, sizeof(buf))) > 0;) out.append(buf, n);
    return out;
  }
  std::optional<EventLoop> loop_;
  Fd read_end_, write_end_;
};

TEST_F(OutputSinkTest, WritesThroughInOrderWhenTheReaderKeepsUp) {
  OutputSink sink(*loop_, write_end_.get());
  sink.write(1, "one\n");
  sink.write(2, "two\n");
  sink.write(1, "three\n");
  EXPECT_EQ(drain(), "one\ntwo\nthree\n");
  EXPECT_EQ(sink.dropped_lines_total(), 0u);
  EXPECT_EQ(sink.queued_bytes(), 0u);
}

TEST_F(OutputSinkTest, AReaderThatStopsMakesItQueueThenDropWholeLinesNeverBlock) {
  OutputSink sink(*loop_, write_end_.get());
  int overflows = 0;
  sink.on_overflow([&](int source) {
    EXPECT_EQ(source, 7);
    ++overflows;
  });
  const std::string line = std::string(1023, 'x') + "\n";  // 1 KiB lines
  const int lines = 3 * 1024;                              // 3 MiB: more than pipe + queue
  for (int i = 0; i < lines; ++i) sink.write(7, line);     // returns: nobody reads yet
  EXPECT_GT(sink.dropped_lines(7), 0u);
  EXPECT_EQ(sink.dropped_lines(7), sink.dropped_lines_total());
  EXPECT_EQ(overflows, 1) << "one report per overflow episode";
  EXPECT_LE(sink.queued_bytes(), OutputSink::kMaxQueuedPerSource + 1);

  // The reader comes back: the queue drains (each write also flushes), and only whole lines came.
  std::string got;
  for (int i = 0; i < 1000 && (sink.queued_bytes() > 0 || i == 0); ++i) {
    got += drain();
    sink.write(7, "");
  }
  got += drain();
  EXPECT_EQ(sink.queued_bytes(), 0u);
  ASSERT_EQ(got.size() % line.size(), 0u);
  for (size_t at = 0; at < got.size(); at += line.size()) {
    ASSERT_EQ(got.compare(at, line.size(), line), 0) << "line at byte " << at << " is cut";
  }
  EXPECT_EQ(got.size() / line.size() + sink.dropped_lines(7), static_cast<size_t>(lines));

  // Room again: lines pass once more.
  sink.write(7, "back\n");
  EXPECT_EQ(drain(), "back\n");
}

TEST_F(OutputSinkTest, OneSourceOverflowingLeavesAnotherWritten) {
  OutputSink sink(*loop_, write_end_.get());
  const std::string line = std::string(4095, 'y') + "\n";
  for (int i = 0; i < 1024; ++i) sink.write(1, line);  // 4 MiB from source 1
  sink.write(2, "from two\n");
  EXPECT_GT(sink.dropped_lines(1), 0u);
  EXPECT_EQ(sink.dropped_lines(2), 0u);
}

TEST_F(OutputSinkTest, AGoneReaderDropsEverythingAndCounts) {
  OutputSink sink(*loop_, write_end_.get());
  read_end_.reset();
  sink.write(3, "a\nb\n");
  EXPECT_EQ(sink.dropped_lines(3), 2u);
}

TEST(GenerationOutputTail, KeepsTheLastBytesFromTheStartOfALine) {
  std::string tail = "first line, cut\n" + std::string(kOutputTail - 10, 'x') + "\nlast\n";
  trim_tail(tail);
  EXPECT_EQ(tail, std::string(kOutputTail - 10, 'x') + "\nlast\n") << "not the cut line's end";
  std::string whole = std::string(100, 'a') + "\n";
  trim_tail(whole);
  EXPECT_EQ(whole, std::string(100, 'a') + "\n") << "short: kept as it is";
  std::string cut_at_newline = std::string(10, 'a') + "\n" + std::string(kOutputTail, 'b');
  trim_tail(cut_at_newline);
  EXPECT_EQ(cut_at_newline, std::string(kOutputTail, 'b')) << "one line fills the tail";
  std::string lines;
  for (int i = 0; lines.size() < 2 * kOutputTail; ++i) lines += "line " + std::to_string(i) + "\n";
  trim_tail(lines);
  EXPECT_LE(lines.size(), kOutputTail);
  EXPECT_TRUE(lines.starts_with("line ")) << lines.substr(0, 20);
  EXPECT_TRUE(lines.ends_with("\n"));
}

}  // namespace
}  // namespace baton
