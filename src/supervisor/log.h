// log.h: how baton's own lines look, and the generation label on the apps' lines.
//
// Each line baton writes of its own is one line, whatever the message holds:
//   2026-11-27T01:44:49.123Z baton[4242]: info: generation 2 (pid 4250) ready after 0.21s
// the time in UTC (RFC 3339, milliseconds), then the supervisor's pid, then the level. When the
// stream is the journal, the time gives way to the syslog priority:
//   <6>baton[4242]: info: generation 2 (pid 4250) ready after 0.21s
// which journald takes as the line's priority (SyslogLevelPrefix=, on by default) and strips;
// it stamps the time itself. Control characters in a message (a newline from an app's notify
// datagram, say) are written as \xNN escapes, so no message can forge or split a line.
//
// Which stream is the journal: systemd sets JOURNAL_STREAM=DEV:INODE (decimal) for the stream it
// connected the service's stderr (else stdout) to. A descriptor is the journal when fstat gives
// that device and inode; a stream redirected since (the variable inherited by a shell script
// that writes to a file) does not match, so the variable alone is not believed.
//
// LinePrefixer puts a label ("[gen 3] ") in front of every line of a stream that arrives in
// pieces (an app's output, read from a pipe), for `--prefix-output`.
//
// Pure but for is_journal() and LogFormat::for_fd() (fstat, getenv, getpid); not thread-safe,
// like the supervisor that uses it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

namespace baton {

// The syslog priorities baton uses (sd-daemon's SD_ERR... and journald's numbers).
enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6 };

// "error", "warning", "notice", "info".
std::string_view level_name(LogLevel level);

// True when `journal_stream` (the value of JOURNAL_STREAM, "DEV:INODE") names `dev` and `ino`.
// Anything else ("", junk, trailing bytes, an overflowing number) is false.
bool journal_stream_names(std::string_view journal_stream, dev_t dev, ino_t ino);

// True when `fd` is the journal's stream, by $JOURNAL_STREAM and fstat.
bool is_journal(int fd);

// "2026-11-27T01:44:49.123Z": `t` in UTC, to the millisecond.
std::string utc_timestamp(std::chrono::system_clock::time_point t);

// The look of one stream's lines: baton's pid, and whether that stream is the journal.
class LogFormat {
 public:
  LogFormat(pid_t pid, bool journal) : pid_(pid), journal_(journal) {}
  // For baton's `fd` (STDERR_FILENO) in this process.
  static LogFormat for_fd(int fd);

  bool journal() const { return journal_; }

  // `message` as one line ending in '\n', with the head described above, stamped `now` (unused
  // for the journal).
  std::string line(LogLevel level, std::string_view message,
                   std::chrono::system_clock::time_point now) const;

  // The line of a failure before the supervisor runs, like the CLI's others ("baton: ..."), with
  // the error priority in front for the journal. No time: it is the answer to the command.
  std::string fatal_line(std::string_view message) const;

 private:
  pid_t pid_;
  bool journal_;
};

// `text` with every control character (below 0x20, and 0x7f) written as \xNN.
std::string escape_controls(std::string_view text);

// The label of generation `id` in front of its lines: "[gen 3] ".
std::string generation_label(int id);

// Inserts a label at the start of every line of a stream given in pieces of any size.
class LinePrefixer {
 public:
  // `priority_first`: for a stream that is the journal, a line that begins with a syslog
  // priority ("<4>", as an app under systemd writes it) keeps it in front of the label, or
  // journald would no longer see it.
  LinePrefixer(std::string label, bool priority_first)
      : label_(std::move(label)), priority_first_(priority_first) {}

  // `piece` with the label in front of each line that starts in it. With `priority_first`, up
  // to 2 bytes at a line start that may begin a priority ("<", "<4") are held until the next
  // piece shows whether they do.
  std::string add(std::string_view piece);
  // What is held, at the end of the stream ("" when nothing).
  std::string finish();

 private:
  std::string label_;
  bool priority_first_;
  bool at_line_start_ = true;
  std::string held_;  // the first bytes of a line that may begin "<N>"
};

}  // namespace baton
