// Unit tests of baton's log lines and the generation label on the apps' lines (log.h).
#include "supervisor/log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "baton/fd.h"

namespace baton {
namespace {

using std::chrono::system_clock;

// 2026-11-27T01:44:49.123Z
system_clock::time_point sample_time() {
  return system_clock::time_point(std::chrono::milliseconds(1795743889123LL));
}

TEST(LogFormat, OutsideTheJournalALineHasTheUtcTimeThePidAndTheLevel) {
  LogFormat format(4242, /*journal=*/false);
  EXPECT_EQ(format.line(LogLevel::kInfo, "generation 2 ready", sample_time()),
            "2026-11-27T01:44:49.123Z baton[4242]: info: generation 2 ready\n");
  EXPECT_EQ(format.line(LogLevel::kError, "reload 3 failed", sample_time()),
            "2026-11-27T01:44:49.123Z baton[4242]: error: reload 3 failed\n");
}

TEST(LogFormat, InTheJournalThePriorityTakesThePlaceOfTheTime) {
  LogFormat format(7, /*journal=*/true);
  EXPECT_EQ(format.line(LogLevel::kError, "x", sample_time()), "<3>baton[7]: error: x\n");
  EXPECT_EQ(format.line(LogLevel::kWarning, "x", sample_time()), "<4>baton[7]: warning: x\n");
  EXPECT_EQ(format.line(LogLevel::kNotice, "x", sample_time()), "<5>baton[7]: notice: x\n");
  EXPECT_EQ(format.line(LogLevel::kInfo, "x", sample_time()), "<6>baton[7]: info: x\n");
}

TEST(LogFormat, AMessageCannotSplitOrForgeALine) {
  LogFormat format(7, /*journal=*/true);
  const std::string line = format.line(
      LogLevel::kInfo, "adopted x\n<0>baton[7]: error: forged\r\x1b[2J\x7f", sample_time());
  EXPECT_EQ(line,
            "<6>baton[7]: info: adopted x\\x0a<0>baton[7]: error: forged\\x0d\\x1b[2J\\x7f\n");
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1);
}

TEST(LogFormat, UnicodeTextPassesUnchanged) {
  EXPECT_EQ(escape_controls("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
}

TEST(LogFormat, AFailureBeforeTheSupervisorRunsReadsLikeTheCommandsOtherErrors) {
  EXPECT_EQ(LogFormat(7, false).fatal_line("bind 127.0.0.1:80: Address already in use"),
            "baton: bind 127.0.0.1:80: Address already in use\n");
  EXPECT_EQ(LogFormat(7, true).fatal_line("bind: no"), "<3>baton: bind: no\n");
}

TEST(UtcTimestamp, KeepsLeadingZerosAndMilliseconds) {
  EXPECT_EQ(utc_timestamp(system_clock::time_point(std::chrono::milliseconds(5))),
            "1970-01-01T00:00:00.005Z");
  EXPECT_EQ(utc_timestamp(sample_time()), "2026-11-27T01:44:49.123Z");
}

TEST(JournalStream, MatchesOnlyTheExactDeviceAndInode) {
  EXPECT_TRUE(journal_stream_names("64769:123456", 64769, 123456));
  EXPECT_FALSE(journal_stream_names("64769:123457", 64769, 123456));
  EXPECT_FALSE(journal_stream_names("64770:123456", 64769, 123456));
  for (const char* junk :
       {"", ":", "64769", "64769:", ":123456", "64769:123456 ", " 64769:123456", "64769:123456:1",
        "-1:123456", "64769:0x1e240", "99999999999999999999999:123456"}) {
    EXPECT_FALSE(journal_stream_names(junk, 64769, 123456)) << junk;
  }
}

TEST(JournalStream, IsJournalComparesTheVariableWithTheDescriptor) {
  char path[] = "/tmp/baton-log-test-XXXXXX";
  Fd fd(::mkstemp(path));
  ASSERT_TRUE(fd);
  ::unlink(path);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  const char* saved = std::getenv("JOURNAL_STREAM");
  const std::string before = saved != nullptr ? saved : "";
  ::setenv("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino).c_str(), 1);
  EXPECT_TRUE(is_journal(fd.get()));
  EXPECT_FALSE(is_journal(STDIN_FILENO)) << "another stream, though the variable is set";
  ::setenv("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino + 1).c_str(), 1);
  EXPECT_FALSE(is_journal(fd.get()));
  ::unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(is_journal(fd.get()));
  if (saved != nullptr) ::setenv("JOURNAL_STREAM", before.c_str(), 1);
}

TEST(LinePrefixer, LabelsEveryLineWhateverThePieces) {
  const std::string text = "one\ntwo\n\nthree";
  const std::string want = "[gen 3] one\n[gen 3] two\n[gen 3] \n[gen 3] three";
  // Every way of cutting the text in two gives the same result.
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    LinePrefixer p(generation_label(3), /*priority_first=*/false);
    std::string out = p.add(text.substr(0, cut));
    out += p.add(text.substr(cut));
    out += p.finish();
    EXPECT_EQ(out, want) << "cut at " << cut;
  }
}

TEST(LinePrefixer, AnEmptyPieceAddsNothing) {
  LinePrefixer p("[gen 1] ", false);
  EXPECT_EQ(p.add(""), "");
  EXPECT_EQ(p.add("a\n"), "[gen 1] a\n");
  EXPECT_EQ(p.add(""), "");
  EXPECT_EQ(p.finish(), "");
}

TEST(LinePrefixer, ForTheJournalAPriorityStaysInFrontOfTheLabel) {
  const std::string text = "<4>warn\n<12>fac\nplain <3> mid\n<x>not\n<1234>long\n<>empty\n<7>";
  const std::string want =
      "<4>[gen 2] warn\n<12>[gen 2] fac\n[gen 2] plain <3> mid\n[gen 2] <x>not\n"
      "[gen 2] <1234>long\n[gen 2] <>empty\n<7>[gen 2] ";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    LinePrefixer p(generation_label(2), /*priority_first=*/true);
    std::string out = p.add(text.substr(0, cut));
    out += p.add(text.substr(cut));
    out += p.finish();
    EXPECT_EQ(out, want) << "cut at " << cut;
  }
  // Byte by byte too.
  LinePrefixer p(generation_label(2), true);
  std::string out;
  for (char c : text) out += p.add(std::string(1, c));
  out += p.finish();
  EXPECT_EQ(out, want);
}

TEST(LinePrefixer, WithoutTheJournalAPriorityIsText) {
  LinePrefixer p("[gen 2] ", /*priority_first=*/false);
  EXPECT_EQ(p.add("<4>warn\n"), "[gen 2] <4>warn\n");
}

TEST(LinePrefixer, WhatTheStreamEndsWithWhileHeldIsTextWithItsLabel) {
  for (const char* tail : {"<", "<4", "<123"}) {
    LinePrefixer p("[gen 5] ", /*priority_first=*/true);
    EXPECT_EQ(p.add(std::string("a\n") + tail), "[gen 5] a\n") << tail;
    EXPECT_EQ(p.finish(), std::string("[gen 5] ") + tail);
    EXPECT_EQ(p.finish(), "");
  }
}

}  // namespace
}  // namespace baton
